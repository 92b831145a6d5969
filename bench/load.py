"""Load test: several browser sessions at once against the real server on loopback, each typing its
own prompts for a bounded time. Reports answers, time per answer (median, p95), sessions still
connected at the end, and the server's peak memory. Not part of `make test` (it takes a minute+).

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from xray_app import CHROMIUM, FLAGS, PROMPT_BOX, running_app  # noqa: E402

CHIPS_JS = """(want) => [...document.querySelectorAll('.xr-chip')]
  .map(c => c.firstChild ? c.firstChild.textContent : '').join('') === want"""
WORDS = ["river", "castle", "orbit", "violin", "desert", "harbor", "maple", "signal", "copper", "lantern"]


def prompt_for(session: int, round_: int) -> str:
    """A different prompt per session and round, so every answer needs its own forward pass."""
    words = " ".join(WORDS[(session * 3 + round_ + k) % len(WORDS)] for k in range(4))
    return f"Visitor {session} asks round {round_}: {words} and then the"


async def session(browser, url: str, n: int, stop_at: float, latencies: list[float], errors: list[str]) -> bool:
    """One visitor: type, wait for the token strip to show the new prompt, repeat until stop_at."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(url, timeout=180_000)
    await page.wait_for_selector(PROMPT_BOX, timeout=180_000)
    round_ = 0
    while time.monotonic() < stop_at:
        text = prompt_for(n, round_)
        box = page.locator(PROMPT_BOX).first
        start = time.monotonic()
        await box.fill(text)
        await box.press("Control+Enter")
        try:
            await page.wait_for_function(CHIPS_JS, arg=text.replace(" ", "·"), timeout=120_000)
            latencies.append(time.monotonic() - start)
        except Exception as exc:  # report, keep going: a load test counts failures
            errors.append(f"session {n} round {round_}: {type(exc).__name__}")
        if await page.locator('[data-testid="stException"]').count():
            errors.append(f"session {n} round {round_}: exception box")
        round_ += 1
    alive = await page.locator(PROMPT_BOX).count() > 0 and await page.evaluate("() => document.readyState") == "complete"
    await context.close()
    return alive


def sample_memory(pid: int, stop: threading.Event, peak: list[int]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            return
        peak[0] = max(peak[0], rss)
        stop.wait(0.5)


async def drive(url: str, sessions: int, seconds: float) -> tuple[list[float], list[str], int, float]:
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        start = time.monotonic()
        alive = await asyncio.gather(*(session(browser, url, n, start + seconds, latencies, errors) for n in range(sessions)))
        elapsed = time.monotonic() - start
        await browser.close()
    return latencies, errors, sum(alive), elapsed


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
        latencies, errors, alive, elapsed = asyncio.run(drive(url, args.sessions, args.seconds))
        stop.set()
    print(f"sessions: {args.sessions} started, {alive} still connected after {elapsed:.0f} s")
    if latencies:
        print(f"answers: {len(latencies)} ({len(latencies) / elapsed:.2f}/s); time per answer: "
              f"median {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
              f"max {max(latencies):.2f} s")
    print(f"server peak memory (RSS): {peak[0] / 2**20:.0f} MiB")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:20]))
    return 1 if errors or alive < args.sessions else 0


if __name__ == "__main__":
    sys.exit(main())
