"""The one way page tests open the app: `open_page(page, **link)` starts a fresh session as a shared
link would (query params), runs the shell once, then switches to the page. Every run goes through
app.py, as on a server: AppTest would otherwise run a page file bare after a switch (below)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from apptest_session import open_app_page
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

_INIT = PagesManager.__init__


def _served_init(self, *args, **kwargs) -> None:
    """AppTest resets Streamlit's legacy pages/ mode before every run, so a switched-to page ran without
    the shell (no sidebar, no links, no shared keys). On a server st.navigation switches that mode off
    for the life of the process; here it stays off, as there."""
    _INIT(self, *args, **kwargs)
    PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True, scope="session")
def served() -> Iterator[None]:
    """For every page test, module-scoped sessions included (set up before them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PagesManager, "__init__", _served_init)
        yield


@pytest.fixture
def open_page() -> Callable[..., AppTest]:
    return open_app_page


@pytest.fixture
def files(monkeypatch) -> dict[str, str]:
    """Every file a page hands to a download button during the test: file name -> text."""
    kept: dict[str, str] = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def keep(self, data, mimetype, kind, filename=None):
        if filename and isinstance(data, bytes):
            kept[filename] = data.decode("utf-8")
        return real(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return kept
