"""Every page on one long prompt (issue 30, "views that scale to thousands of tokens"): in headless
Chromium against `streamlit run app.py`, one prompt edit of ~N tokens (default 3,500) on Start here,
then each page of our navigation opened in turn with that capture cached (seconds until settled),
the page's first widget changed twice (bench.felt's widget step), any exception box counted, and the
server's peak memory while the page opened and changed, above what it held before (Linux: the peak is
reset through /proc/<pid>/clear_refs). No targets: a page that takes more than a few seconds or
hundreds of MB here says where long prompts still cost.
`python -m bench.pages_long [--tokens 3500]`.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench.felt import click_page, edit_prompt, log, reported_capture, widget_changes  # noqa: F401  (sets sys.path)
from bench.felt_long import long_prompts

from xray_app import CHROMIUM, FLAGS, exception_texts, nav_titles, running_app, settle  # noqa: E402


def _status_mb(pid: int, field: str) -> float:
    """A /proc/<pid>/status memory field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _peak_from_now(pid: int) -> float:
    """Reset the server's peak resident memory to what it holds now; returns that (MB)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_mb(pid, "VmRSS")


def tour(text: str) -> None:
    """Edit the prompt once, then open every page and change its first widget; one line per page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, running_app({}) as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=180_000)
        settle(page, timeout=180)
        titles = nav_titles(page)
        click_page(page, "Start here")
        log(f"prompt edit on Start here: settled in {edit_prompt(page, text):.1f} s (sidebar: {reported_capture(page)})")
        log(f"  {'page':<24} {'open':>6}  {'widget change (median of 2)':<40} exceptions  peak above before")
        for title in titles:
            before = _peak_from_now(url.pid)
            opened = click_page(page, title)
            changed = widget_changes(page, 2)
            widget = "-" if changed is None else f"{statistics.median(changed[1]):.2f} s  {changed[0][:28]}"
            peak = _status_mb(url.pid, "VmHWM") - before
            log(f"  {title:<24} {opened:5.1f}s  {widget:<40} {len(exception_texts(page)):>10}  {peak:8,.0f} MB")
        browser.close()


def main(n_tokens: int) -> None:
    from model import load_model

    tokenizer = load_model().tokenizer
    (ids,) = long_prompts(tokenizer, n_tokens, 1)
    log(f"every page at {n_tokens:,} tokens…")
    tour(tokenizer.decode(ids, skip_special_tokens=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=3500)
    main(parser.parse_args().tokens)
