"""Felt latency: what a person waits for in the browser, with headless Chromium and `streamlit run
app.py` sharing this machine's cores (as on a student's laptop). Medians of several runs:

- first visit: server start -> server answers -> page title with a progress line -> first full page
  (and anything that must never show: a raw pages/ module name, Streamlit's legacy list, an error);
- prompt edit (Ctrl+Enter) -> page settled, on every page, at ~40 and ~256 tokens;
- page switch with the capture cached -> settled (at ~256 tokens, after those edits);
- a widget change with the capture cached, at ~40 tokens (the page's first slider, one arrow step,
  else its first selectbox, another option) -> settled;
- one temperature step (arrow key on the Next-token slider) -> new numbers painted
  (bench/temperature_step.py's in-page clock);
- the capture ms the app reports (sidebar caption) beside this bench's own capture of the same text.

Run: `.venv/bin/python bench/felt.py [--quick]` (also part of `make bench`). Prints a table and
rewrites the felt-latency block of bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench/run.py: this process's own capture

from bench.report import Check, markdown_rows, table_text  # noqa: E402
from bench.temperature_step import temperature_step_ms  # noqa: E402

from first_visit import watch_first_visit  # noqa: E402
from xray_app import CHROMIUM, FLAGS, PROMPT_BOX, nav_titles, running_app, settle  # noqa: E402

README = Path(__file__).with_name("README.md")
TEXT = Path(__file__).with_name("text.txt")
START, END = "<!-- felt:start -->", "<!-- felt:end -->"
LENGTHS = (40, 256)
LESSON = ("Start here", "Embeddings", "Attention", "Attention step by step", "MLP", "Next token", "Generate")
_CAPTION_MS = re.compile(r"(\d+) tokens · (\d+) ms")

# The page's state in one cheap round trip: busy (run, spinner, progress, stale element), how many
# changes a MutationObserver has seen to the page's elements and text, the page clock, and when the
# last change happened. The observer costs the page nothing while it works; the first version of this
# bench read main.innerText every 30 ms instead, which forced a layout of the whole page each time and
# took ~0.6 s of the browser's CPU during one Logit-lens edit, on the cores the page itself needs.
_STATE_JS = """() => {
  if (!window.__xrWatch) {
    const w = window.__xrWatch = {changes: 0, last: performance.now()};
    new MutationObserver(() => { w.changes += 1; w.last = performance.now(); })
      .observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true,
                               attributeFilter: ['data-stale']});  // a faded (stale) element coming back
  }
  const w = window.__xrWatch, now = performance.now();
  const busy = !!document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
      + '[data-testid="stSpinner"], [data-testid="stProgress"], [data-stale="true"]');
  if (busy) w.last = now;  // still working: not settled, whatever the DOM did
  return [busy, w.changes, now, w.last];
}"""


@dataclass
class Felt:
    """Every measurement in seconds, grouped by row; medians are taken when printing."""

    repeats: int
    answering: list[float] = field(default_factory=list)  # server start -> health check answers
    titled: list[float] = field(default_factory=list)  # answering -> page title + progress on screen
    full: list[float] = field(default_factory=list)  # answering -> first full page
    problems: list[str] = field(default_factory=list)
    edit: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # (page, tokens) -> s
    switch: dict[str, list[float]] = field(default_factory=dict)
    widget: dict[str, list[float]] = field(default_factory=dict)  # page -> s per widget change
    widget_name: dict[str, str] = field(default_factory=dict)  # page -> which widget was changed
    temperature: list[float] = field(default_factory=list)
    app_capture: dict[int, list[tuple[str, float]]] = field(default_factory=dict)  # tokens -> (prompt, s)
    bench_capture: dict[int, list[float]] = field(default_factory=dict)  # this process, torch's default threads
    bench_capture_1: dict[int, list[float]] = field(default_factory=dict)  # the same, one thread (as the app)
    tokens: dict[int, list[int]] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, flush=True)


def _tokenizer():
    from transformers import AutoTokenizer

    from model.engine.default_model import ensure_converted

    return AutoTokenizer.from_pretrained(str(ensure_converted()))


def prompts(n_tokens: int, count: int, tokenizer) -> list[str]:
    """`count` different windows of bench/text.txt, each about `n_tokens` tokens long."""
    ids = tokenizer(TEXT.read_text())["input_ids"]
    step = max(7, (len(ids) - n_tokens) // max(count, 1))
    return [tokenizer.decode(ids[i * step:i * step + n_tokens]).strip() for i in range(count)]


def settled_after(page, began: float, changes_before: int, timeout: float = 120.0, quiet_s: float = 0.7) -> float:
    """Seconds from `began` (the page's clock, ms) until the page last changed before going quiet (no
    spinner, run, progress or stale element; no change to its elements or text for quiet_s). The page
    must first have changed since `changes_before` (the answer to the action has arrived), or have
    stayed unchanged for 3 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy, changes, now, last = page.evaluate(_STATE_JS)
        answered = changes > changes_before or now - began > 3000
        if answered and not busy and now - last >= 1000 * quiet_s:
            return max(0.0, last - began) / 1000
        time.sleep(0.05)
    raise TimeoutError(f"the page did not settle within {timeout:.0f} s")


def _act(page, action) -> float:
    """Run `action` (a click or a key press); seconds until the page settled after it."""
    _, before, began, _ = page.evaluate(_STATE_JS)
    action()
    return settled_after(page, began, before)


def click_page(page, title: str) -> float:
    """Open a page from our sidebar navigation; seconds until it settled."""
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
    link = links.nth(nav_titles(page).index(title))
    return _act(page, link.click)


def widget_changes(page, times: int) -> tuple[str, list[float]] | None:
    """Change the open page's first main-area slider (one arrow step, back and forth) or, without
    one, its first selectbox (another option each time): (which widget, seconds to settle each time);
    None when the page has neither."""
    main = page.locator('[data-testid="stMain"]')
    slider = main.locator('[data-testid="stSlider"]:visible input[type=range]').first  # not in a hidden tab
    box = main.locator('[data-testid="stSelectbox"]:visible').first
    if slider.count():
        at_end = float(slider.input_value()) >= float(slider.get_attribute("max"))
        keys = (["ArrowLeft", "ArrowRight"] if at_end else ["ArrowRight", "ArrowLeft"]) * times
        return f"slider '{slider.get_attribute('aria-label')}'", [
            _act(page, lambda key=key: (slider.focus(), slider.press(key))) for key in keys[:times]]
    if box.count():
        label = box.locator("input[role=combobox]").get_attribute("aria-label")
        times_s = [_pick_other(page, box) for _ in range(times)]
        return None if None in times_s else (f"selectbox '{label}'", times_s)
    return None


def _pick_other(page, box) -> float | None:
    """Open a selectbox and choose the first listed option that is not the current one; None when
    its list does not open or offers no other option."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    current = box.locator("input[role=combobox]").input_value().strip()
    box.scroll_into_view_if_needed()  # a list opened while the page scrolls closes again at once
    page.wait_for_timeout(300)
    box.locator("button[aria-haspopup=listbox]").click()
    options = page.locator('[role="listbox"] [role="option"]')
    try:
        options.first.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        page.keyboard.press("Escape")
        return None
    other = next((o for o in (options.nth(i) for i in range(options.count())) if o.inner_text().strip() != current),
                 None)
    if other is None:  # a single option: nothing to change to
        page.keyboard.press("Escape")
        return None
    return _act(page, other.click)


def edit_prompt(page, text: str) -> float:
    """Type a new prompt and run it (Ctrl+Enter); seconds until the page settled."""
    box = page.locator(PROMPT_BOX).first
    box.fill(text)
    return _act(page, lambda: box.press("Control+Enter"))


def reported_capture(page) -> tuple[int, float] | None:
    """(tokens, seconds) from the sidebar caption 'Ran on cpu · float32 · 41 tokens · 470 ms'."""
    found = _CAPTION_MS.search(page.locator('[data-testid="stSidebar"]').inner_text())
    return None if found is None else (int(found.group(1)), int(found.group(2)) / 1000)


def first_visits(felt: Felt, pw, env: dict[str, str]) -> None:
    for run in range(felt.repeats):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)  # open before the server starts
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        with running_app(env) as url:
            lag = time.monotonic() - url.healthy  # from the server's first answer to the browser's request
            seen = watch_first_visit(page, url)
            felt.answering.append(url.healthy - url.started)
            full = None if seen.full_page is None else seen.full_page + lag
            titled = seen.titled_progress if seen.titled_progress is not None else seen.full_page
            felt.titled.append(float("nan") if titled is None else titled + lag)
            felt.full.append(float("nan") if full is None else full)
            felt.problems += seen.problems
            log(f"  first visit {run + 1}: answering {felt.answering[-1]:.1f} s, title+progress "
                f"{felt.titled[-1]:.2f} s, full page {felt.full[-1]:.1f} s, problems {len(seen.problems)}")
        browser.close()


def session(felt: Felt, pw, env: dict[str, str], tokenizer) -> None:
    """One server, one tab: prompt edits on every page at each length, page switches, temperature."""
    with running_app(env) as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=180_000)
        settle(page, timeout=180)
        titles = nav_titles(page)
        for n in LENGTHS:
            texts = iter(prompts(n, felt.repeats * len(titles), tokenizer))
            for title in titles:
                click_page(page, title)
                for _ in range(felt.repeats):
                    text = next(texts)
                    seconds = edit_prompt(page, text)
                    felt.edit.setdefault((title, n), []).append(seconds)
                    reported = reported_capture(page)
                    if reported is not None:
                        felt.app_capture.setdefault(n, []).append((text, reported[1]))
                        felt.tokens.setdefault(n, []).append(reported[0])
                log(f"  edit at ~{n} tokens, {title:<24} " + " ".join(f"{s:.2f}" for s in felt.edit[(title, n)]))
        for _ in range(felt.repeats):
            for title in titles:
                felt.switch.setdefault(title, []).append(click_page(page, title))
        log("  page switch (cached): " + ", ".join(f"{t} {statistics.median(s):.2f}" for t, s in felt.switch.items()))
        edit_prompt(page, prompts(LENGTHS[0], 1, tokenizer)[0])  # widgets at ~40 tokens, as the issue measured
        for title in titles:
            click_page(page, title)
            changed = widget_changes(page, felt.repeats)
            if changed is not None:
                felt.widget_name[title], felt.widget[title] = changed
                log(f"  widget change, {title:<24} {changed[0]}: " + " ".join(f"{s:.2f}" for s in changed[1]))
        click_page(page, "Next token")
        felt.temperature = [ms / 1000 for ms in temperature_step_ms(page, steps=max(10, 2 * felt.repeats))]
        log("  temperature steps ms: " + " ".join(f"{1000 * s:.0f}" for s in felt.temperature))
        browser.close()


def bench_captures(felt: Felt) -> None:
    """This process's own capture of each prompt the app reported (server stopped, same token limit),
    with torch's default thread count (bench/run.py's) and with one thread (app.py's)."""
    import torch

    from model import load_model

    lm, default_threads = load_model(), torch.get_num_threads()
    for threads, out in ((default_threads, felt.bench_capture), (1, felt.bench_capture_1)):
        torch.set_num_threads(threads)
        for n, runs in felt.app_capture.items():
            for text, _ in runs:
                lm.capture(text, 512)  # warm
                out.setdefault(n, []).append(lm.capture(text, 512).seconds)
    torch.set_num_threads(default_threads)


def _med(values: list[float]) -> float | None:
    good = [v for v in values if v == v]
    return statistics.median(good) if good else None


def _s(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "n/a"
    return f"{1000 * value:.0f} ms" if unit == "ms" else f"{value:.2f} s"


def checks(felt: Felt) -> list[Check]:
    """Issue 15's targets against this run's medians."""
    out = [Check("first visit: title + progress after the server answers", _s(_med(felt.titled)), "<= 2 s",
                 None if _med(felt.titled) is None else _med(felt.titled) <= 2),
           Check("first visit: first full page after the server answers", _s(_med(felt.full)), "<= 8 s",
                 None if _med(felt.full) is None else _med(felt.full) <= 8),
           Check("first visit: module names / legacy nav / errors shown", str(len(felt.problems)), "0",
                 not felt.problems)]
    for (title, n), values in sorted(felt.edit.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        limit = 3.0 if n > 100 else 2.5 if title == "Logit lens" else 1.5 if title in LESSON else None
        if limit is not None:
            out.append(Check(f"prompt edit -> settled, {title}, ~{n} tokens", _s(_med(values)), f"<= {limit} s",
                             _med(values) <= limit))
    for n in felt.app_capture:
        app, own = _med([s for _, s in felt.app_capture[n]]), _med(felt.bench_capture.get(n, []))
        ratio = None if not (app and own) else app / own
        out.append(Check(f"capture in the app / bench's capture, ~{n} tokens",
                         "n/a" if ratio is None else f"{_s(app, 'ms')} / {_s(own, 'ms')} = {ratio:.2f}x", "<= 1.3x",
                         None if ratio is None else ratio <= 1.3))
    for title, values in felt.widget.items():
        out.append(Check(f"widget change -> settled, {title} ({felt.widget_name[title]}), ~40 tokens", _s(_med(values)),
                         "<= 1 s", _med(values) <= 1.0))
    temp = _med(felt.temperature)
    out.append(Check("temperature step -> new numbers on screen", _s(temp, "ms"), "<= 100 ms",
                     None if temp is None else temp <= 0.1))
    return out


def block(felt: Felt, stamp: str, env: dict[str, str]) -> list[str]:
    """The felt-latency section of bench/README.md."""
    titles = list(dict.fromkeys(t for t, _ in felt.edit))
    edit_rows = [[t] + [_s(_med(felt.edit.get((t, n), []))) for n in LENGTHS] + [_s(_med(felt.switch.get(t, [])))]
                 + [_s(_med(felt.widget.get(t, [])))] for t in titles]
    cap_rows = [[f"~{n}", f"{min(felt.tokens[n])}-{max(felt.tokens[n])}", _s(_med([s for _, s in runs]), "ms"),
                 _s(_med(felt.bench_capture.get(n, [])), "ms"), _s(_med(felt.bench_capture_1.get(n, [])), "ms")]
                for n, runs in felt.app_capture.items()]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    temp, problems = _med(felt.temperature), "; ".join(felt.problems[:5])
    lines = [f"## Felt latency, {stamp}", "",
             f"Headless Chromium and `streamlit run app.py` on this machine ({os.cpu_count()} cores), medians of "
             f"{felt.repeats} runs; app environment: {env or 'app.py defaults'}; load average at the end: {load}.", "",
             f"- first visit (fresh server, {len(felt.full)} runs): server start -> answering "
             f"**{_s(_med(felt.answering))}**; answering -> page title with a progress line "
             f"**{_s(_med(felt.titled))}**; answering -> first full page **{_s(_med(felt.full))}**; "
             f"things that must never show: **{len(felt.problems)}**{f' ({problems})' if problems else ''}",
             f"- one temperature step (arrow key) -> new numbers on screen: **{_s(temp, 'ms')}** median, "
             f"max {_s(max(felt.temperature, default=None), 'ms')} ({len(felt.temperature)} steps)", ""]
    lines += markdown_rows(["page", *(f"prompt edit -> settled, ~{n} tokens" for n in LENGTHS),
                            "page switch, capture cached (~256)", "widget change, capture cached (~40)"], edit_rows)
    lines += ["", "The capture as the app reports it (sidebar caption) and this bench's own capture of the same "
              "prompts (after the server stopped):", ""]
    lines += markdown_rows(["prompt", "tokens", "app reports (median)", "bench capture, default threads",
                            "bench capture, 1 thread"], cap_rows)
    lines += ["", "Targets (issue 15):", ""]
    lines += markdown_rows(["target", "measured", "limit", "verdict"],
                           [[c.name, c.measured, c.target, c.verdict] for c in checks(felt)])
    return lines + [""]


def write_readme(lines: list[str]) -> None:
    """Replace only the felt-latency block; everything else in README.md stays."""
    text = README.read_text()
    if START not in text:
        text += f"\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    README.write_text(before + START + "\n" + "\n".join(lines) + "\n" + END + rest.split(END, 1)[1])


def run(repeats: int, env: dict[str, str] | None = None, write: bool = True) -> tuple[list[str], list[Check]]:
    """Measure everything; returns the README block and the checks (bench/run.py prints them)."""
    import datetime as dt

    from playwright.sync_api import sync_playwright

    env = env or {}
    felt, stamp = Felt(repeats), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tokenizer = _tokenizer()
    with sync_playwright() as pw:
        log("Felt latency: first visits ...")
        first_visits(felt, pw, env)
        log("Felt latency: prompt edits, page switches, temperature ...")
        session(felt, pw, env, tokenizer)
    log("Felt latency: bench's own capture of the same prompts ...")
    bench_captures(felt)
    lines = block(felt, stamp, env)
    if write:
        write_readme(lines)
    return lines, checks(felt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs of each instead of 5 (a quick look)")
    parser.add_argument("--repeats", type=int, help="runs of each measurement (default 5, --quick 2)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for the app, e.g. OMP_NUM_THREADS=2 (compare settings)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/README.md alone")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    env = dict(item.split("=", 1) for item in args.env)
    lines, found = run(repeats, env, write=not args.no_write)
    log("\n" + "\n".join(lines))
    log(table_text([["target", "measured", "limit", "verdict"]] + [[c.name, c.measured, c.target, c.verdict]
                                                                   for c in found]))


if __name__ == "__main__":
    main()
