"""Transformer X-ray: the shell. Navigation, the shared sidebar, then the chosen page runs."""
from __future__ import annotations

import logging
import os

import streamlit as st

logging.basicConfig(level=logging.INFO)


def _secrets_to_env() -> None:
    """Operator settings may live in .streamlit/secrets.toml; environment variables win."""
    try:
        items = dict(st.secrets)
    except Exception:  # no secrets file: nothing to copy
        return
    for key, value in items.items():
        if key.startswith("XRAY_"):
            os.environ.setdefault(key, str(value))


_secrets_to_env()  # before pages.common reads the settings

from pages import common, sidebar  # noqa: E402

PAGES = [
    st.Page("pages/overview.py", title="Start here", icon="🧭", default=True),
    st.Page("pages/attention.py", title="Attention", icon="👀", url_path="attention"),
    st.Page("pages/embeddings.py", title="Embeddings", icon="🧲", url_path="embeddings"),
    st.Page("pages/next_token.py", title="Next token", icon="🎲", url_path="next_token"),
]

st.set_page_config(page_title="Transformer X-ray", page_icon="🩻", layout="wide")
page = st.navigation(PAGES)
common.keep_state()
sidebar.render()
page.run()
