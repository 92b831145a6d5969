"""Watch a fresh server's first visit from its first response until the page settles: when the
page's title and a progress indicator first show, when the full page shows, and every moment a raw
pages/ module name, Streamlit's own (legacy) navigation or an import error was on screen.

Shared by tests/e2e/test_first_visit.py and bench/felt.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from xray_app import ROOT

# What Streamlit's legacy pages/ mode would list: every module in pages/, as file names and labels.
MODULE_NAMES = sorted({p.stem for p in (ROOT / "pages").glob("*.py") if p.stem != "__init__"} | {"app"})
_LABELS = sorted(set(MODULE_NAMES) | {n.replace("_", " ") for n in MODULE_NAMES})
_ERROR_WORDS = ("ImportError", "ModuleNotFoundError", "Traceback", "cannot import name")

_STATE_JS = """(labels) => {
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const main = document.querySelector('[data-testid="stMain"]');
  const h1 = main ? main.querySelector('h1') : null;
  const words = sidebar ? [...sidebar.querySelectorAll('a, span, p, li, div')]
      .filter(e => e.children.length === 0).map(e => e.textContent.trim()) : [];
  return {
    title: h1 ? h1.innerText.trim() : '',
    progress: !!document.querySelector(
        '[data-testid="stProgress"], [data-testid="stSpinner"], [data-testid="stStatusWidget"]'),
    busy: !!document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
        + '[data-testid="stSpinner"], [data-testid="stProgress"], [data-stale="true"]'),
    legacyNav: !!document.querySelector('[data-testid="stSidebarNav"]'),
    moduleNames: words.filter(w => labels.includes(w)),
    links: sidebar ? sidebar.querySelectorAll('[data-testid="stPageLink-NavLink"]').length : 0,
    prompt: !!(sidebar && sidebar.querySelector('textarea')),
    exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText.slice(0, 500)),
    text: document.body ? document.body.innerText : '',
    size: main ? main.querySelectorAll('*').length : 0,
  };
}"""


@dataclass
class FirstVisit:
    """Seconds from the browser's request (goto) to each moment; None when it never happened."""

    titled_progress: float | None = None  # the page's h1 and a progress indicator both on screen
    full_page: float | None = None  # settled: sidebar prompt, no spinner/progress/stale, main text stable
    title: str = ""
    problems: list[str] = field(default_factory=list)  # every distinct thing that must never show


def _problems(state: dict) -> list[str]:
    found = [f"raw module name in the sidebar: {name!r}" for name in state["moduleNames"]]
    if state["legacyNav"]:
        found.append("Streamlit's own sidebar navigation (legacy pages/ list) is on screen")
    found += [f"exception on screen: {text}" for text in state["exceptions"]]
    found += [f"error text on screen: {word}" for word in _ERROR_WORDS if word in state["text"]]
    return found


def watch_first_visit(page, address: str, timeout: float = 180.0, quiet_s: float = 0.7,
                      poll_s: float = 0.05) -> FirstVisit:
    """Open `address` and poll the DOM from the first response until the page has settled."""
    result, seen = FirstVisit(), set()
    began = time.monotonic()
    page.goto(address, wait_until="commit", timeout=timeout * 1000)
    last_size, still_since = None, time.monotonic()
    while time.monotonic() - began < timeout:
        now = time.monotonic()
        try:
            state = page.evaluate(_STATE_JS, _LABELS)
        except Exception:  # the document is still being replaced right after the response
            time.sleep(poll_s)
            continue
        for problem in _problems(state):
            if problem not in seen:
                seen.add(problem)
                result.problems.append(f"{now - began:.2f} s: {problem}")
        if result.titled_progress is None and state["title"] and state["progress"]:
            result.titled_progress, result.title = now - began, state["title"]
        quiet = state["prompt"] and state["links"] and not state["busy"] and state["title"]
        if not quiet or state["size"] != last_size:
            last_size, still_since = state["size"], now
        elif now - still_since >= quiet_s:
            result.full_page, result.title = still_since - began, state["title"]
            return result
        time.sleep(poll_s)
    return result
