"""Captures for the app: one byte-bounded cache per process, shared by every session, keyed by plain
strings (model, token limit, chat template or not, text) so two sessions with the same prompt share one
forward pass. The sidebar's prompt is wrapped in the model's chat template when the switch is on; a
page's own texts (Meaning's contexts, Patching's pair) run as typed."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.generation import ids_key
from model.core.keys import cache_key, model_key
from model.core.settings import settings
from model.engine.capture_cache import CaptureCache
from model.engine.language_model import Hooks
from pages.kit import models, session
from viz.labels import literal


@st.cache_resource(show_spinner=False)
def capture_cache() -> CaptureCache:
    """One capture cache per process, shared by every session, bounded by bytes."""
    return CaptureCache(settings().cache_mb * 2**20)


def chat_on(lm: LanguageModel) -> bool:
    """Whether the sidebar's prompt is wrapped: the switch is on and the model has a chat template."""
    return session.chat_template() and lm.has_chat_template


def text_key(lm: LanguageModel, text: str, limit: int, chat: bool = False) -> str:
    """The key of a text on a model at a token limit, as typed or wrapped in the chat template."""
    return cache_key(model_key(lm), limit, "chat" if chat else "plain", text)


def current_key(lm: LanguageModel) -> str:
    """The key of the sidebar's prompt on the sidebar's model at the sidebar's token limit and template."""
    return text_key(lm, session.prompt(), session.token_limit(), chat_on(lm))


def capture_text(lm: LanguageModel, text: str, also: Hooks | None = None, *, chat: bool = False) -> Capture:
    """Any text on the sidebar's model, through the shared cache (raises XrayError when refused), in the
    chat template with `chat`. A text that extends a cached one (Append, typing at the end) runs only its
    new tokens; `also` rides along a whole capture's pass."""
    limit = session.token_limit()
    key = text_key(lm, text, limit, chat)
    return capture_cache().get_or_extend(key, lm, prompt=text, max_tokens=limit, also=also, chat=chat)


def capture_ids(lm: LanguageModel, ids: list[int]) -> Capture:
    """Token ids (e.g. a generated text as it was at one step), through the shared cache."""
    return capture_cache().get_or_extend(ids_key(model_key(lm), ids), lm, ids=list(ids))


def last_capture(lm: LanguageModel) -> Capture | None:
    """The sidebar prompt's capture if a page already made it; never runs the model."""
    return capture_cache().get(current_key(lm))


def current_capture(also: Hooks | None = None) -> Capture | None:
    """The capture of the sidebar's prompt on the sidebar's model (cached), or None after a message.
    `also`: a page's own recording hooks, run on the capture's pass when it has to run whole."""
    lm = models.current_model()
    if lm is None:
        return None
    try:
        with st.spinner("Running the model…"):
            return capture_text(lm, session.prompt(), also, chat=chat_on(lm))
    except XrayError as exc:
        st.warning(literal(str(exc)))
        return None
