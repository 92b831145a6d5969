"""The sidebar every page shares: model, prompt, examples, token limit, chat template and the last run's facts."""
from __future__ import annotations

import streamlit as st

from model import LanguageModel
from model.analyses.export import capture_npz
from model.core.settings import DEFAULT_MODEL, settings
from pages.kit import captures, links, models, session, shared_keys
from viz import model_text
from viz.export import file_name
from viz.labels import literal

DEFAULT_LABEL = "SmolLM2-135M-Instruct (embedded)"


def _model_options() -> list[str]:
    cfg = settings()
    if cfg.allowed_models:
        return [DEFAULT_LABEL if m == DEFAULT_MODEL else m for m in cfg.allowed_models]
    return [DEFAULT_LABEL, models.OTHER_MODEL]


def _requested_model() -> str:
    choice = st.selectbox("Model", _model_options(), key="model_choice")
    if choice == models.OTHER_MODEL:
        typed = st.text_input(
            "Hub id or local folder", key="model_custom", placeholder="e.g. gpt2 or /path/to/model",
            help="Any Hugging Face causal LM: a hub id (needs network or the HF cache), a folder with "
            "safetensors, or a .gguf file.",
        ).strip()
        return typed or session.model_name()
    return DEFAULT_MODEL if choice == DEFAULT_LABEL else choice


def _switch_model(requested: str) -> None:
    """Make `requested` the active model if it loads; otherwise keep the one that works."""
    if requested == session.model_name():
        return
    if models.get_model(requested) is not None:
        st.session_state["active_model"] = requested
    else:
        name = session.model_name()
        st.caption(f"Still using: {DEFAULT_LABEL if name == DEFAULT_MODEL else literal(name)}")


def _load_example() -> None:
    """Load the chosen example, then empty the box: it loads, it does not name the prompt (which may be
    edited next), and choosing the same example again loads it again."""
    chosen = st.session_state.get("example")
    if chosen in session.EXAMPLES:
        st.session_state["prompt"] = session.EXAMPLES[chosen]
    st.session_state["example"] = None


def render() -> None:
    with st.sidebar:
        st.session_state.setdefault("prompt", session.DEFAULT_PROMPT)
        _switch_model(_requested_model())
        st.text_area("Prompt (Ctrl+Enter to run)", key="prompt", height=120)
        st.selectbox(
            "Examples", list(session.EXAMPLES), index=None, key="example", on_change=_load_example,
            placeholder="Load an example prompt…",
        )


def render_limit(lm: LanguageModel | None) -> None:
    """The token limit, bounded by what the loaded model allows here (drawn once the model has loaded);
    a value above it, from a larger model, comes down to it."""
    limit = lm.token_limit if lm is not None else None
    most = limit.tokens if limit is not None else session.token_limit()
    if st.session_state.setdefault("token_limit", most) > most:
        st.session_state["token_limit"] = most
    st.session_state[session.LIMIT_MOST] = most
    why = f": {limit.reason}" if limit is not None else ""
    st.session_state[session.LIMIT_SHOWN] = st.sidebar.number_input(
        "Token limit", min_value=1, max_value=most, step=16, key="token_limit",
        help=f"Longer prompts are refused, never cut. At most {most:,} tokens{why}.")


def render_chat(lm: LanguageModel | None) -> None:
    """The chat template switch. On a model without a template it says so and the prompt runs as typed;
    the switch keeps the person's choice for the next model that has one. Switching moves the shared
    position to the last token, as a new prompt does: the same index is another token in the other ids."""
    st.sidebar.toggle(
        "Chat template", key=session.CHAT_TEMPLATE, on_change=shared_keys.forget, args=("position",),
        help="Wrap the prompt as a user's message in the model's own chat template (its special tokens "
        "shown as tokens), so the next token is the assistant's first. Every page runs on the wrapped tokens.")
    if session.chat_template() and lm is not None and not lm.has_chat_template:
        st.sidebar.warning(f"{lm.name} has no chat template, so the prompt runs as typed.")


_FOOTER = "_sidebar_footer"  # the shell's model for this run's footer, until it is drawn


def footer_for(lm: LanguageModel | None) -> None:
    """Before the page runs: the model the footer describes (the shell's; None when it could not load)."""
    st.session_state[_FOOTER] = (lm,)


def render_footer() -> None:
    """After the page ran, or where it stops early (kit.stop): the facts of the pass it used on the shell's
    model, the capture download, and what a link shares; drawn once per run."""
    if _FOOTER not in st.session_state:
        return
    (lm,) = st.session_state.pop(_FOOTER)
    cap = captures.last_capture(lm) if lm is not None else None
    if cap is None:
        st.sidebar.caption(links.share_note(session.prompt()))
        return
    with st.sidebar:
        st.caption(
            f"Ran on **{cap.device}** · {cap.dtype} · {cap.n_tokens} tokens · {cap.seconds * 1000:.0f} ms"
        )
        st.caption(model_text.placement(lm.block_devices))
        st.download_button(
            "Download capture (.npz)", data=lambda: capture_npz(cap, lm.logit_stats(cap)),
            file_name=file_name(cap.prompt, "capture", "npz"),
            mime="application/octet-stream", on_click="ignore", key="download_capture",
            help="Every array of this pass (attention, residual stream, logits...) for numpy.",
        )
        st.caption(links.share_note(cap.prompt))
