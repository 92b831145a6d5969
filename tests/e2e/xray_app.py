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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NAV_LINKS = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'  # app.py's own navigation
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
            time.sleep(0.1)
    raise TimeoutError(f"streamlit was not healthy at {url} within {timeout:.0f} s")


class AppUrl(str):
    """The app's URL, carrying the server's process id (bench/load.py samples its memory) and when
    the server was started and first answered its health check (time.monotonic())."""

    pid: int
    started: float
    healthy: float


@contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[AppUrl]:
    """The app served on a free loopback port; yields its URL and always stops the server."""
    port = free_port()
    streamlit = str(Path(sys.executable).with_name("streamlit"))
    cmd = [streamlit, "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]  # other people edit files while tests run
    log = open(os.environ.get("XRAY_E2E_LOG", os.devnull), "w")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = AppUrl(f"http://127.0.0.1:{port}")
    url.pid, url.started = proc.pid, started
    try:
        _wait_healthy(url, proc)
        url.healthy = time.monotonic()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_BUSY_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app ? app.getAttribute('data-test-script-state') : null;
  const busy = state === 'running' || state === 'rerunRequested' || !!document.querySelector(
      '[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-testid="stSpinner"]');
  return [busy, main.querySelectorAll('*').length];
}"""

# Runs started in this tab so far: Streamlit marks its root with the script's state at once
# (data-test-script-state), while its status widget shows only after a delay: a short run (a third of a
# second: the Lesson's Next) was never seen busy, and wait_busy() waited its full 5 s. Counted from the
# first call on (it installs the count).
_RUNS_JS = """() => {
  if (window.__xrayRuns === undefined) {
    window.__xrayRuns = 0;
    new MutationObserver((changes) => {
      for (const c of changes) {
        if (c.target.getAttribute('data-test-script-state') === 'running') window.__xrayRuns++;
      }
    }).observe(document.documentElement, {attributes: true, subtree: true, attributeFilter: ['data-test-script-state']});
  }
  return window.__xrayRuns;
}"""


def settle(page, timeout: float = 120.0, quiet_s: float = 0.7) -> None:
    """Wait until the app has drawn its sidebar, no run is in progress and the page stopped growing."""
    page.wait_for_selector(PROMPT_BOX, timeout=timeout * 1000)
    deadline, last, still_since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        busy, size = page.evaluate(_BUSY_JS)
        if busy or size != last:
            last, still_since = size, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the app was still running after {timeout:.0f} s")


def type_prompt(page, text: str) -> None:
    """Type a prompt into the sidebar box and run it (Ctrl+Enter), then wait for the answer."""
    box = page.locator(PROMPT_BOX).first
    box.fill(text)
    rerun(page, lambda: box.press("Control+Enter"))


def rerun(page, action) -> None:
    """Do something that reruns the app (a click, a key), then wait until that run has finished."""
    since = runs(page)
    action()
    wait_busy(page, since=since)
    settle(page)


def runs(page) -> int:
    """How many runs this tab has seen start (from the first call on)."""
    return page.evaluate(_RUNS_JS)


def wait_busy(page, timeout: float = 5.0, since: int | None = None) -> bool:
    """Wait for a rerun to start (it may not show before settle() would see a quiet page); with `since`
    (runs() before the action), a run that has started and already finished counts too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(_BUSY_JS)[0] or (since is not None and runs(page) > since):
            return True
        time.sleep(0.05)
    return False


def nav_titles(page) -> list[str]:
    """Page titles in the sidebar nav (the material icon's name comes first in the text)."""
    links = page.locator(NAV_LINKS)
    return [links.nth(i).inner_text().strip().splitlines()[-1].strip() for i in range(links.count())]


def open_page(page, title: str) -> None:
    """Click the nav link whose title is exactly `title` and wait for the page."""
    links = page.locator(NAV_LINKS)
    links.nth(nav_titles(page).index(title)).click()
    settle(page)


def exception_texts(page) -> list[str]:
    boxes = page.locator(EXCEPTION)
    return [boxes.nth(i).inner_text()[:2000] for i in range(boxes.count())]


# Our chart element draws a figure only once it comes near the window (pages/kit/plotly_chart/chart.js):
# bring each one into sight in turn and wait for its plot (or its error text), then scroll back up. A chart
# that cannot come into sight (inside a closed expander, such as Start here's weights, or a hidden tab) is
# skipped: it was never drawn nor counted, only waited for (the full 20 s, on every page tour).
_DRAW_EVERY_CHART_JS = """async () => {
  for (const div of document.querySelectorAll('.xray-chart')) {
    if (!div.getClientRects().length || div.closest('details:not([open])')) continue;  // a hidden tab, a closed expander
    div.scrollIntoView({block: 'center'});
    const since = performance.now();
    while (!div.classList.contains('js-plotly-plot') && !div.textContent && performance.now() - since < 20000) {
      await new Promise((done) => setTimeout(done, 50));
    }
  }
  const first = document.querySelector('[data-testid="stMain"] h1');
  if (first) first.scrollIntoView();
}"""


def draw_every_chart(page) -> None:
    """Scroll every chart on the page into sight once, so that each is drawn."""
    page.evaluate(_DRAW_EVERY_CHART_JS)


def chart_count(page) -> int:
    """Charts drawn on the page once each has been in sight: plotly figures, images, and the
    browser-drawn next-token bars (pages/temperature_bars, inside a shadow root that playwright's
    CSS locators pierce)."""
    draw_every_chart(page)
    return page.locator(".js-plotly-plot, [data-testid='stImage'] img, [data-testid='stMain'] img, .xr-bars").count()


def open_tab(browser, address: str):
    """A new tab (a new Streamlit session) on `address`, settled."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(address, timeout=180_000)
    settle(page, timeout=180)
    return page
