"""Loading models for the app: once per process, at most XRAY_MAX_MODELS kept, with a progress bar
on the very first start and a message (never a traceback) when a model cannot be loaded."""
from __future__ import annotations

import streamlit as st

from model import LanguageModel, XrayError, load_model
from model.core.settings import DEFAULT_MODEL, settings
from model.engine import default_model
from pages.kit import session
from viz.labels import literal

OTHER_MODEL = "Other (hub id or local folder)…"  # the sidebar's choice for a typed hub id or folder


@st.cache_resource(show_spinner=False, max_entries=settings().max_models)
def _load(name: str) -> LanguageModel:
    """Load a model once per process; at most XRAY_MAX_MODELS stay loaded (spread over devices when the
    operator set XRAY_DEVICE_MAP)."""
    cfg = settings()
    return load_model(None if name == DEFAULT_MODEL else name, trust_remote_code=cfg.trust_remote_code,
                      device_map=cfg.device_map, max_memory=cfg.max_memory, offload_folder=cfg.offload_dir)


def _prepare_default_with_progress() -> None:
    """First start (or a broken converted copy): convert the embedded GGUF with a progress bar that
    says what is happening, instead of a blank page."""
    if default_model.is_converted():
        return
    bar = st.progress(0.0, text="Preparing the embedded model (first start only)…")
    default_model.ensure_converted(lambda message, fraction: bar.progress(fraction, text=message))
    bar.empty()


def get_model(name: str) -> LanguageModel | None:
    """The loaded model, or None after showing why it could not be loaded."""
    try:
        if name == DEFAULT_MODEL:
            _prepare_default_with_progress()
        with st.spinner(f"Loading {name if name != DEFAULT_MODEL else 'the embedded model'}…"):
            return _load(name)
    except XrayError as exc:
        st.error(literal(str(exc)))
    except Exception as exc:  # an unexpected loader failure still gets a message, not a traceback
        st.error(literal(f"Could not load '{name}': {type(exc).__name__}: {exc}"))
    return None


def current_model() -> LanguageModel | None:
    """The sidebar's model, loaded (or None after a message)."""
    return get_model(session.model_name())
