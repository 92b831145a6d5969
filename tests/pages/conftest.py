"""The one way page tests open the app: `open_page(page, **link)` starts a fresh session as a shared
link would (query params), runs the shell once, then switches to the page."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_app_page(page: str | None = None, *, timeout: float = 300, **params: str) -> AppTest:
    """A fresh session on `page` (a path such as "pages/lesson.py"; None: the start page). AppTest cannot
    open a page before app.py has run once in the session (it would run the page file bare)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


@pytest.fixture
def open_page() -> Callable[..., AppTest]:
    return open_app_page
