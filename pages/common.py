"""What every page shares: the loaded model (once per process), the bounded capture cache, the
sidebar (model, prompt, examples, token limit) and the token strip. All Streamlit caching lives here.
"""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError, load_model
from model import default_model
from model.capture_cache import CaptureCache
from model.settings import DEFAULT_MODEL, Settings, load_settings
from viz.token_strip import token_strip_html

EXAMPLES = {
    "A fact to recall": "The capital of France is",
    "One word, two meanings": "The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the",
    "A repeated sequence to copy": "The cat sat on the mat and the dog ran to the park. The cat sat on the mat and the dog ran to the",
    "A line of code": "def add(a, b):\n    return a + b\n\nprint(add(2,",
}
DEFAULT_PROMPT = EXAMPLES["A fact to recall"]
OTHER_MODEL = "Other (hub id or local folder)…"


def _leave_legacy_multipage_mode() -> None:
    """Streamlit runs pages/*.py as bare scripts (its old multipage mode) until st.navigation has run
    once in the process, so a shared link opened first after a restart would skip app.py (no sidebar,
    no navigation). Every page imports this module: switch the mode off and rerun through app.py."""
    from streamlit.runtime.pages_manager import PagesManager  # pinned streamlit: internal flag

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_legacy_multipage_mode()


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def capture_cache() -> CaptureCache:
    """One capture cache per process, shared by every session, bounded by bytes."""
    return CaptureCache(settings().cache_mb * 2**20)


@st.cache_resource(show_spinner=False, max_entries=load_settings().max_models)
def _load(name: str) -> LanguageModel:
    """Load a model once per process; at most XRAY_MAX_MODELS stay loaded."""
    return load_model(None if name == DEFAULT_MODEL else name, trust_remote_code=settings().trust_remote_code)


def _prepare_default_with_progress() -> None:
    """First start only: convert the embedded GGUF with a progress bar instead of a blank page."""
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
        st.error(str(exc))
    except Exception as exc:  # an unexpected loader failure still gets a message, not a traceback
        st.error(f"Could not load '{name}': {type(exc).__name__}: {exc}")
    return None


def model_name() -> str:
    """The model the sidebar asks for; falls back to the last model that loaded."""
    return st.session_state.get("active_model", DEFAULT_MODEL)


def token_limit() -> int:
    return int(st.session_state.get("token_limit", settings().token_limit))


def prompt() -> str:
    return st.session_state.get("prompt", DEFAULT_PROMPT)


def capture_key(model: str, text: str, limit: int) -> str:
    return f"{model}\x1f{limit}\x1f{text}"


def current_model() -> LanguageModel | None:
    return get_model(model_name())


def current_capture() -> Capture | None:
    """The capture of the sidebar's prompt on the sidebar's model (cached), or None after a message."""
    lm = current_model()
    if lm is None:
        return None
    text, limit = prompt(), token_limit()
    try:
        with st.spinner("Running the model…"):
            cap = capture_cache().get_or_compute(capture_key(model_name(), text, limit), lambda: lm.capture(text, limit))
    except XrayError as exc:
        st.warning(str(exc))
        return None
    return cap


def show_token_strip(cap: Capture, highlight: int | None = None) -> None:
    """The shared token strip (escaped HTML: tags in a prompt show as characters)."""
    st.html(token_strip_html(cap.tokens, cap.token_ids, highlight=highlight))


SHARED_KEYS = ("layer", "head", "position", "temperature")  # one selection, many pages (and the URL)


def carry_shared() -> None:
    """Carry the layer/head/position/temperature chosen on one page to the widgets of the next.
    A value re-assigned by code binds to whichever widget uses the key next; plain mirrors bring
    back keys Streamlit dropped with the previous page's widgets."""
    for key in SHARED_KEYS:
        mirror = f"_shared_{key}"
        if key in st.session_state:
            st.session_state[key] = st.session_state[mirror] = st.session_state[key]
        elif mirror in st.session_state:
            st.session_state[key] = st.session_state[mirror]


def set_defaults(defaults: dict[str, object]) -> None:
    """Give a page's widgets their first values (persist_state keeps them across page switches)."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def explain(title: str, body: str) -> None:
    """A page's short explanation, collapsed by default. Body is our own markdown text."""
    with st.expander(title, expanded=False):
        st.markdown(body)
