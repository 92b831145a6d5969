"""Start the real app on loopback and drive it in Debian's headless Chromium (no browser download).

Shared by the browser tests and bench/load.py: a free port, a health check, and a settle() that
waits until the page has connected and stopped running.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NAV_LINKS = '[data-testid="stSidebarNav"] a'
EXCEPTION = '[data-testid="stException"]'
RUNNING = '[data-testid="stStatusWidget"]'
PROMPT_BOX = '[data-testid="stSidebar"] textarea'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before it was healthy")
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit was not healthy at {url} within {timeout:.0f} s")


@contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[str]:
    """The app served on a free loopback port; yields its URL and always stops the server."""
    port = free_port()
    streamlit = str(Path(sys.executable).with_name("streamlit"))
    cmd = [streamlit, "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    log = open(os.environ.get("XRAY_E2E_LOG", os.devnull), "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def settle(page, timeout: float = 120.0) -> None:
    """Wait until the app has drawn its sidebar and no run is in progress."""
    page.wait_for_selector(PROMPT_BOX, timeout=timeout * 1000)
    time.sleep(0.4)  # a rerun may take a moment to show its status widget
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if page.locator(RUNNING).count() == 0 else 0
        if quiet >= 3:
            return
        time.sleep(0.15)
    raise TimeoutError("the app was still running after %.0f s" % timeout)


def type_prompt(page, text: str) -> None:
    """Type a prompt into the sidebar box and run it (Ctrl+Enter), then wait for the answer."""
    box = page.locator(PROMPT_BOX).first
    box.fill(text)
    box.press("Control+Enter")
    settle(page)


def nav_titles(page) -> list[str]:
    links = page.locator(NAV_LINKS)
    return [links.nth(i).inner_text().strip() for i in range(links.count())]


def open_page(page, title: str) -> None:
    page.locator(NAV_LINKS).filter(has_text=title).first.click()
    settle(page)
