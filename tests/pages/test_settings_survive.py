"""Every page's own settings come back after a visit to another page: a person who set a number, a
picker or a text on a page and looks at another page meanwhile finds them as they left them (the
results a page keeps must not sit under controls that went back to their defaults)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from test_interaction_walk import _page_paths

PROMPT = "When Mary and John went to the store, John gave a drink to"
# Pickers last: choosing one may hide the others (a source, a view).
KINDS = ("number_input", "slider", "text_input", "text_area", "toggle", "checkbox", "selectbox", "radio")
LOADERS = {"meaning_example"}  # fills the expression, which is kept; shows its placeholder again
ELSEWHERE = "pages/overview.py"


def _settings(at: AppTest) -> list:
    return [w for kind in KINDS for w in at.main.get(kind)
            if getattr(w, "key", None) and w.key not in LOADERS and not w.disabled]


def _changed(widget) -> bool:
    """Set `widget` to another value than it has (False where it offers none)."""
    kind, value = widget.type, widget.value
    if kind == "selectbox" and len(widget.options) > 1:
        widget.select_index((widget.index or 0) + 1 if (widget.index or 0) + 1 < len(widget.options) else 0)
    elif kind == "radio" and len(widget.options) > 1:
        widget.set_value(next(o for o in widget.options if o != value))
    elif kind == "slider" and not isinstance(value, (tuple, list)) and widget.max > widget.min:
        widget.set_value(widget.max if value != widget.max else widget.min)
    elif kind == "number_input":
        step = widget.step or 1
        bigger = value + step if value is not None else (widget.min or 0) + step
        widget.set_value(bigger if widget.max is None or bigger <= widget.max else (widget.min or 0))
    elif kind in ("text_input", "text_area"):
        widget.input((value or "") + " again")
    elif kind in ("toggle", "checkbox"):
        widget.set_value(not value)
    else:
        return False
    return True


def _shown(at: AppTest) -> dict[str, object]:
    return {w.key: w.value for w in _settings(at)}


@pytest.mark.parametrize("page", [p for p in _page_paths() if p != ELSEWHERE])
def test_a_pages_settings_survive_a_visit_to_another_page(open_page, page: str) -> None:
    at = open_page(page, prompt=PROMPT)
    done: set[str] = set()
    changed: list[str] = []
    while widget := next((w for w in _settings(at) if w.key not in done), None):  # fresh after every run
        done.add(widget.key)
        try:
            if not _changed(widget):
                continue
        except (ValueError, StopIteration, TypeError):  # a value this widget refuses: the next one
            continue
        changed.append(widget.key)
        at.run()
        assert not at.exception, f"{page}: changing {widget.key}: {[e.value for e in at.exception]}"
    assert changed, f"{page}: no setting was changed: the test would prove nothing"
    before = _shown(at)
    at.switch_page(ELSEWHERE).run()
    at.switch_page(page).run()
    assert not at.exception
    after = _shown(at)
    lost = {k: (v, after[k]) for k, v in before.items() if k in after and after[k] != v}
    assert not lost, f"{page}: settings back at other values after a visit to {ELSEWHERE}: {lost}"
