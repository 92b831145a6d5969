"""Watch a fresh server's first visit from its first response until the page settles: when the
page's title and a progress indicator first show, when the full page shows, and every moment a raw
pages/ module name, Streamlit's own (legacy) navigation or an import error was on screen.

Shared by tests/e2e/test_first_visit.py and bench/felt.py.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from xray_app import ROOT

# What Streamlit's legacy pages/ mode would list: every module in pages/, as file names and labels.
MODULE_NAMES = sorted({p.stem for p in (ROOT / "pages").glob("*.py") if p.stem != "__init__"} | {"app"})
_LABELS = sorted(set(MODULE_NAMES) | {n.replace("_", " ") for n in MODULE_NAMES})
_ERROR_WORDS = ("ImportError", "ModuleNotFoundError", "Traceback", "cannot import name")

# Installed before the document's own scripts (page.add_init_script): a MutationObserver checks the page
# after every burst of changes, so no state that reaches the screen can fall between two polls, and
# waiting costs the page nothing. (Polling body.innerText every 50 ms forced a layout of the whole page
# each time, on the same two cores that were starting the server and the model.) Times are the page's
# clock: milliseconds since the navigation started.
_WATCH_JS = """(() => {
  const labels = new Set(%s);
  const errorWords = %s;
  const w = window.__xrFirst = {titled: null, title: '', problems: [], last: 0, pending: false};
  const seen = new Set();
  const note = (what) => { if (!seen.has(what)) { seen.add(what);
      w.problems.push((performance.now() / 1000).toFixed(2) + ' s: ' + what); } };
  const check = () => {
    w.pending = false;
    const sidebar = document.querySelector('[data-testid="stSidebar"]');
    const main = document.querySelector('[data-testid="stMain"]');
    const h1 = main ? main.querySelector('h1') : null;
    const progress = !!document.querySelector(
        '[data-testid="stProgress"], [data-testid="stSpinner"], [data-testid="stStatusWidget"]');
    if (w.titled === null && h1 && h1.textContent.trim() && progress) {
      w.titled = performance.now(); w.title = h1.textContent.trim();
    }
    if (h1) w.title = h1.textContent.trim();
    if (sidebar) for (const e of sidebar.querySelectorAll('a, span, p, li, div')) {
      const text = e.children.length === 0 ? e.textContent.trim() : '';
      if (labels.has(text)) note('raw module name in the sidebar: ' + JSON.stringify(text));
    }
    if (document.querySelector('[data-testid="stSidebarNav"]'))
      note("Streamlit's own sidebar navigation (legacy pages/ list) is on screen");
    for (const e of document.querySelectorAll('[data-testid="stException"]'))
      note('exception on screen: ' + e.textContent.slice(0, 500));
    const text = document.body ? document.body.textContent : '';
    for (const word of errorWords) if (text.includes(word)) note('error text on screen: ' + word);
  };
  new MutationObserver(() => {
    w.last = performance.now();
    if (!w.pending) { w.pending = true; setTimeout(check, 0); }
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                        attributeFilter: ['data-stale']});
})();"""

_STATE_JS = """() => {
  const w = window.__xrFirst;
  if (!w) return null;
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const busy = !!document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
      + '[data-testid="stSpinner"], [data-testid="stProgress"], [data-stale="true"]');
  if (busy) w.last = performance.now();  // still working: not settled, whatever the DOM did
  return {
    titled: w.titled, title: w.title, problems: w.problems, last: w.last, now: performance.now(), busy,
    links: sidebar ? sidebar.querySelectorAll('[data-testid="stPageLink-NavLink"]').length : 0,
    prompt: !!(sidebar && sidebar.querySelector('textarea')),
  };
}"""


@dataclass
class FirstVisit:
    """Seconds from the browser's request (goto) to each moment; None when it never happened."""

    titled_progress: float | None = None  # the page's h1 and a progress indicator both on screen
    full_page: float | None = None  # settled: sidebar prompt, no spinner/progress/stale, main text stable
    title: str = ""
    problems: list[str] = field(default_factory=list)  # every distinct thing that must never show


def watch_first_visit(page, address: str, timeout: float = 180.0, quiet_s: float = 0.7,
                      poll_s: float = 0.1) -> FirstVisit:
    """Open `address`; the page's own observer records every moment until the page has settled.
    Seconds are counted from the start of the navigation (the browser's request)."""
    result = FirstVisit()
    page.add_init_script(_WATCH_JS % (json.dumps(_LABELS), json.dumps(list(_ERROR_WORDS))))
    began = time.monotonic()
    page.goto(address, wait_until="commit", timeout=timeout * 1000)
    while time.monotonic() - began < timeout:
        try:
            state = page.evaluate(_STATE_JS)
        except Exception:  # the document is still being replaced right after the response
            state = None
        if state is not None:
            result.problems, result.title = list(state["problems"]), state["title"]
            if state["titled"] is not None:
                result.titled_progress = state["titled"] / 1000
            quiet = state["prompt"] and state["links"] and not state["busy"] and state["title"]
            if quiet and state["now"] - state["last"] >= 1000 * quiet_s:
                result.full_page = state["last"] / 1000
                return result
        time.sleep(poll_s)
    return result
