"""Row 8: cold start. A fresh `streamlit run app.py` (default model already converted) until a
headless Chromium sees the first chart or the token strip; wall time counted from process start.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIRST_VIEW = ".js-plotly-plot, .xr-strip"  # a plotly chart or the shared token strip


@dataclass
class ColdStart:
    seconds: float | None  # process start -> first chart/strip visible
    health_seconds: float | None  # process start -> server answers /_stcore/health
    url: str = ""
    error: str = ""
    cpu_seconds: float | None = None  # CPU the server process used until then (user + system)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_health(port: int, start: float, limit: float) -> float:
    while time.perf_counter() - start < limit:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"no health answer after {limit:.0f} s")


def _first_view(page, base: str, start: float, limit: float) -> tuple[float, str]:
    """Open the start page; if it shows no chart or strip, the Attention page's chart."""
    for url in (base + "/", base + "/attention"):
        try:
            page.goto(url, timeout=limit * 1000)
            page.wait_for_selector(FIRST_VIEW, timeout=limit * 1000)
            return time.perf_counter() - start, url
        except Exception:
            continue
    raise TimeoutError("neither the start page nor /attention showed a chart or the token strip")


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure(limit: float = 180) -> ColdStart:
    """Browser launched first (not counted), then the server; the clock starts with the process."""
    if not Path(CHROMIUM).exists():
        return ColdStart(None, None, error=f"{CHROMIUM} not found (make chromium)")
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, BROWSER="none")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        start = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            health = _wait_health(port, start, limit)
            seconds, url = _first_view(page, f"http://127.0.0.1:{port}", start, limit)
            cpu = _cpu_seconds(server.pid)
            return ColdStart(seconds, health, url.removeprefix(f"http://127.0.0.1:{port}"), cpu_seconds=cpu)
        except Exception as exc:
            return ColdStart(None, None, error=f"{type(exc).__name__}: {exc}"[:200])
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            browser.close()


if __name__ == "__main__":
    print(measure())
