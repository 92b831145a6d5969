"""Load test: several browser sessions at once against the real server on loopback, each typing its
own ~40-token prompts for a bounded time. Reports answers, prompt -> settled per answer (median, p95),
sessions still connected at the end, the server's peak memory, and the server's CPU seconds per
answer beside one capture's own CPU time at that length: the browsers share this box, but the
server's CPU per answer carries over to a classroom whose browsers run on the students' laptops.
Not part of `make test` (it takes a minute+).

    .venv/bin/python bench/load.py [--sessions 6] [--seconds 60]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
from xray_app import CHROMIUM, FLAGS, PROMPT_BOX, AppUrl, running_app  # noqa: E402

CHIPS_JS = """(want) => [...document.querySelectorAll('.xr-chip')]
  .map(c => c.firstChild ? c.firstChild.textContent : '').join('') === want"""
SETTLED_JS = """() => !document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-stale="true"]')"""
# A timer, not Playwright's default requestAnimationFrame: with many windows in one headless browser,
# the ones not in front get no animation frames, and a rAF-polled wait there never re-checks (the
# 10-session run hung for 500 s this way while every page had long settled).
POLL_MS = 100
WORDS = ["river", "castle", "orbit", "violin", "desert", "harbor", "maple", "signal", "copper", "lantern"]


def prompt_for(session: int, round_: int) -> str:
    """A different prompt per session and round, so every answer needs its own forward pass."""
    words = " ".join(WORDS[(session * 3 + round_ + k) % len(WORDS)] for k in range(4))
    return (f"Visitor {session} asks round {round_}: {words}. The teacher wrote a short story about a "
            "lighthouse keeper who counted the ships every night, and then the")


async def session(browser, url: AppUrl, n: int, seconds: float, ready: asyncio.Barrier, marks: dict,
                  latencies: list[float], errors: list[str]) -> bool:
    """One visitor: open the app, wait until every visitor has, then type, wait for the page to
    settle on the new prompt, and repeat for `seconds` (start-up is not counted in the CPU figure)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(url, timeout=600_000)
    await page.wait_for_selector(PROMPT_BOX, timeout=600_000)
    await page.wait_for_function(SETTLED_JS, timeout=600_000, polling=POLL_MS)
    if await ready.wait() == 0:  # the last visitor in: answers start now
        marks["cpu"], marks["start"] = server_cpu_seconds(url.pid), time.monotonic()
    await ready.wait()
    stop_at = marks["start"] + seconds
    round_ = 0
    while time.monotonic() < stop_at:
        text = prompt_for(n, round_)
        box = page.locator(PROMPT_BOX).first
        start = time.monotonic()
        try:  # under load the box can stay busy past playwright's default 30 s: count it, keep going
            await box.fill(text, timeout=120_000)
            await box.press("Control+Enter", timeout=120_000)
            await page.wait_for_function(CHIPS_JS, arg=text.replace(" ", "·"), timeout=120_000, polling=POLL_MS)
            await page.wait_for_function(SETTLED_JS, timeout=120_000, polling=POLL_MS)
            latencies.append(time.monotonic() - start)
        except Exception as exc:  # report, keep going: a load test counts failures
            errors.append(f"session {n} round {round_}: {type(exc).__name__}")
        if await page.locator('[data-testid="stException"]').count():
            errors.append(f"session {n} round {round_}: exception box")
        round_ += 1
    alive = await page.locator(PROMPT_BOX).count() > 0 and await page.evaluate("() => document.readyState") == "complete"
    await context.close()
    return alive


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the server process and its children so far."""
    proc = psutil.Process(pid)
    times = [proc.cpu_times()] + [c.cpu_times() for c in proc.children(recursive=True)]
    return sum(t.user + t.system for t in times)


def capture_cpu_seconds(text: str, repeats: int = 5) -> tuple[int, float]:
    """Tokens of `text` and the median CPU seconds of one capture of it, with the app's thread settings."""
    from model.engine.threads import configure

    configure()
    from model import load_model

    lm = load_model()
    lm.capture(text)  # warm-up
    spent = []
    for _ in range(repeats):
        start = time.process_time()
        cap = lm.capture(text)
        spent.append(time.process_time() - start)
    return cap.n_tokens, statistics.median(spent)


def sample_memory(pid: int, stop: threading.Event, peak: list[int]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            return
        peak[0] = max(peak[0], rss)
        stop.wait(0.5)


async def drive(url: AppUrl, sessions: int, seconds: float) -> tuple[list[float], list[str], int, float, float]:
    """Latencies, errors, sessions alive at the end, seconds of answering, server CPU seconds spent answering."""
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        ready, marks = asyncio.Barrier(sessions), {}
        alive = await asyncio.gather(*(session(browser, url, n, seconds, ready, marks, latencies, errors)
                                       for n in range(sessions)))
        elapsed, cpu = time.monotonic() - marks["start"], server_cpu_seconds(url.pid) - marks["cpu"]
        await browser.close()
    return latencies, errors, sum(alive), elapsed, cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    with running_app() as url:
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(target=sample_memory, args=(url.pid, stop, peak), daemon=True)
        sampler.start()
        latencies, errors, alive, elapsed, server_cpu = asyncio.run(drive(url, args.sessions, args.seconds))
        stop.set()
    n_tokens, capture_cpu = capture_cpu_seconds(prompt_for(0, 0))
    print(f"sessions: {args.sessions} started, {alive} still connected after {elapsed:.0f} s")
    if latencies:
        print(f"answers: {len(latencies)} ({len(latencies) / elapsed:.2f}/s); time per answer: "
              f"median {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
              f"max {max(latencies):.2f} s")
    print(f"server peak memory (RSS): {peak[0] / 2**20:.0f} MiB")
    if latencies:
        per_answer = server_cpu / len(latencies)
        print(f"server CPU per answer: {per_answer:.2f} s; one capture of {n_tokens} tokens: {capture_cpu:.2f} s CPU "
              f"({per_answer / capture_cpu:.2f}x)")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:20]))
    return 1 if errors or alive < args.sessions else 0


if __name__ == "__main__":
    sys.exit(main())
