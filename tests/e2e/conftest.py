"""The browser tests' shared session: one server and one Chromium per test module (`app`)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from xray_app import CHROMIUM, FLAGS, running_app


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[str, object]]:
    """(the app's URL, a launched browser); each test opens its own tabs (xray_app.open_tab)."""
    from playwright.sync_api import sync_playwright

    with running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield url, browser
        browser.close()
