"""Opening the app in AppTest as a person opens a link: `open_app_page(page, **params)`. Tests take it
through the `open_page` fixture (conftest.py), which also keeps every run going through app.py."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_app_page(page: str | None = None, *, timeout: float = 300, state: Mapping[str, Any] | None = None,
                  **params: str) -> AppTest:
    """A fresh session on `page` (a path such as "pages/lesson.py"; None: the start page), opened as a
    link with `params` would open it; `state`: sidebar choices made before the first run (a model)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.query_params.update(params)  # the page reads its own values (?step=, ?clean=) from the same link
        at.switch_page(page).run()
    return at


def link_of(at: AppTest) -> dict[str, str]:
    """The address a person would copy now: the session's query parameters, one value each."""
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
