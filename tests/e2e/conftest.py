"""The browser tests' shared session: one server for every module that takes `app` (it loads the
model once, on its first visit), and one Chromium per test module."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from xray_app import CHROMIUM, FLAGS, AppUrl, running_app


class _SharedServer:
    """The app's server, started on first use and stopped by the last module that uses it (not at the
    end of the session: the rest of the suite runs without it)."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._url: AppUrl | None = None

    def url(self) -> AppUrl:
        if self._url is None:
            self._stack = ExitStack()
            self._url = self._stack.enter_context(running_app())
        return self._url

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._url = None


@pytest.fixture(scope="session")
def _server() -> Iterator[_SharedServer]:
    server = _SharedServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(request, _server) -> Iterator[tuple[str, object]]:
    """(the app's URL, a launched browser); each test opens its own tabs (xray_app.open_tab), each a
    fresh Streamlit session on the shared server."""
    from playwright.sync_api import sync_playwright

    url = _server.url()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield url, browser
        browser.close()
    users = [item for item in request.session.items if "app" in item.fixturenames]
    if users and users[-1].module is request.module:
        _server.stop()
