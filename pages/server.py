"""What this server offers: the operator's settings, read once per process, and its memory habits."""
from __future__ import annotations

import gc

import streamlit as st

from model.settings import Settings, load_settings


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    """The operator's limits (token limit, cache size, allowed models), read once per process."""
    return load_settings()


def freeze_library_objects() -> None:
    """Once the first model has loaded, move every object alive so far (torch, transformers, plotly,
    the model's modules: ~500k) out of the garbage collector's reach. They live as long as the process,
    and each full collection walked them all: ~0.3 s of a 2-core server's CPU, several times a minute
    under load. Memory is still freed by reference counting as before."""
    gc.freeze()
