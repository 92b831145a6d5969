"""What this server offers: the operator's settings, read once per process."""
from __future__ import annotations

import streamlit as st

from model.core.settings import Settings, load_settings


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    """The operator's limits (token limit, cache size, allowed models), read once per process."""
    return load_settings()

