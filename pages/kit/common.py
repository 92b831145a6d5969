"""Streamlit's legacy pages/ mode, switched off on first import (the page kit imports this module,
so a page run bare as a legacy script reruns through app.py)."""
from __future__ import annotations

import streamlit as st


def _leave_legacy_multipage_mode() -> None:
    """Streamlit runs pages/*.py as bare scripts (its old multipage mode) until st.navigation has run
    once in the process, so a shared link opened first after a restart would skip app.py (no sidebar,
    no navigation). Every page imports this module: switch the mode off and rerun through app.py."""
    from streamlit.runtime.pages_manager import PagesManager  # pinned streamlit: internal flag

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_legacy_multipage_mode()
