"""AppTest with the one habit of the real browser that AppTest leaves out: a selectbox or radio keeps the
label it shows until the server sends a new value. AppTest re-serializes every widget from its value
with this run's labels, so a label that changed under a kept value (a probability after a prompt edit,
a ✓ after a passed task) could never come back stale, as it does in Chromium (issue 26's crash and
stale pickers). Here it does: the next run receives the label the browser would show."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import InitialValue, Radio, Selectbox

PICKERS = (Selectbox, Radio)


class BrowserLike:
    """An AppTest session whose pickers send back what the browser shows (`shown`, by widget id)."""

    def __init__(self, at: AppTest) -> None:
        self.at = at
        self.shown: dict[str, str | None] = {}

    def pickers(self) -> Iterator[Any]:
        for block in (self.at.main, self.at.sidebar):
            for node in block:
                if isinstance(node, PICKERS):
                    yield node

    def pick(self, widget: Any, label: str | None) -> None:
        """The person picks the option drawn as `label`, or types a new one: the browser sends that text."""
        self.shown[widget.id] = label

    @property
    def prompt(self) -> str:
        return self.at.text_area(key="prompt").value

    @prompt.setter
    def prompt(self, text: str) -> None:
        """The person edits the sidebar's prompt."""
        self.at.text_area(key="prompt").input(text)

    def run(self) -> AppTest:
        """One rerun, sending what the browser shows."""
        with _sending(self.shown):
            self.at.run()
        self._after_run()
        return self.at

    def _after_run(self) -> None:
        """What the browser shows after this run: the server's value where it sent one, else what it
        showed before; a picker not drawn this run is unmounted and forgotten."""
        shown: dict[str, str | None] = {}
        for widget in self.pickers():
            proto = widget.proto
            if proto.set_value:
                shown[widget.id] = proto.raw_value if proto.HasField("raw_value") else None
            elif widget.id in self.shown:
                shown[widget.id] = self.shown[widget.id]
            else:  # first drawn: the browser shows the option the server's state names
                shown[widget.id] = None if widget.index is None else widget.options[widget.index]
        self.shown = shown


@contextmanager
def _sending(shown: dict[str, str | None]) -> Iterator[None]:
    """During one run, pickers the test did not set send the label the browser shows."""
    originals = {cls: cls._widget_state for cls in PICKERS}

    def state(self) -> WidgetState:
        if not isinstance(self._value, InitialValue) or self.id not in shown:
            return originals[type(self)].fget(self)
        ws = WidgetState()
        ws.id = self.id
        if shown[self.id] is not None:
            ws.string_value = shown[self.id]
        return ws

    for cls in PICKERS:
        cls._widget_state = property(state)
    try:
        yield
    finally:
        for cls, prop in originals.items():
            cls._widget_state = prop
