"""The page kit: what every page needs, in one import. The current model and capture, the capture
key, derived-result caching, and the shared selectors (layer, head, position, temperature), each
clamped to the capture and kept in step with the other pages and the URL.

Depth has one vocabulary: "embedding" is the stream before block 0, "block l" (0-based) is the l-th
block, "after block l" is the stream that leaves it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, NoReturn

import streamlit as st

from model import Capture, LanguageModel
from model.core import keys
from pages.kit import (
    captures,
    common,  # noqa: F401  (importing it leaves Streamlit's legacy pages/ mode)
    contrast,
    links,
    long,
    models,
    pickers,
    results,
    session,
    shared_keys,
    sidebar,
)
from pages.kit.shared_keys import TEMPERATURE_RANGE, TEMPERATURE_STEP
from viz.labels import short, stream_name  # noqa: F401  (stream_name: the one layer vocabulary, for pages)
from viz.token_strip import token_strip_html

current_model = models.current_model
current_capture = captures.current_capture
current_key = captures.current_key  # the plain-string key of the sidebar's prompt, model and limit
cache_key = keys.cache_key  # the one way to join a key's parts (model/core/keys.py)
model_key = keys.model_key  # the one way a key names a model: name, device, dtype
capture_text = captures.capture_text
chat_on = captures.chat_on  # whether the sidebar's prompt runs in the model's chat template
capture_ids = captures.capture_ids
prompt = session.prompt
token_limit = session.token_limit
derived = results.derived  # derived(kind, key, compute): one bounded cache for every page's results
forget = shared_keys.forget
switch_page = shared_keys.switch_page  # keeps the sidebar's prompt and model across the switch
bind = pickers.bind  # a picker's value re-bound before it is drawn (sliders, multiselects)
picker = pickers.picker  # a selectbox or radio whose labels are never read back
is_long = long.is_long  # past viz.attention.LONG tokens views read heads blockwise, in windows
head_stats = long.stats  # per-head numbers, cached per capture (a long prompt's over its start)
contrast_token = contrast.contrast_token  # token A and optional rival B: figures show logit(A) − logit(B)
# A table column of probabilities or weights: three significant digits, so a small non-zero one never reads
# 0.0000 (sprintf's %g: 0.923, 0.0000123; exactly 0 reads 0.00).
PROBABILITY = "%.3g"
PROMPT_SHOWN = 400  # characters of a long prompt shown before a continuation, so the continuation is in view


class Page(NamedTuple):
    """What a page starts with: the sidebar's model and its prompt's capture, each None when it could not
    be had (a message says why)."""

    lm: LanguageModel | None
    cap: Capture | None


def page(title: str, *, capture: bool = True, where=st) -> Page:
    """How every page starts: its title (in `where`, e.g. a column), then the sidebar's model and, unless
    capture=False (a page that needs no capture, or makes its own with recording hooks), its prompt's capture."""
    where.title(title)
    lm = current_model()
    return Page(lm, current_capture() if capture and lm is not None else None)


def stop() -> NoReturn:
    """End the page here with the sidebar's footer drawn and its link written: after st.stop() the shell's
    own are lost (Streamlit stops the run again at its first message), so a reload would bring back an older
    prompt, and the footer's share note would be missing."""
    sidebar.render_footer()
    links.write_url()
    st.stop()


def position_label(cap: Capture, pos: int) -> str:
    """A position as every selector shows it: the token, then its index."""
    return f"{short(cap.tokens[pos], 16)} ({pos})" + (" · last" if pos == cap.n_tokens - 1 else "")


def _clamp(key: str, options: Sequence[int], default: int) -> int:
    """Keep a shared selection valid for this model and prompt before its widget is drawn."""
    return int(pickers.bind(key, options, default))  # type: ignore[arg-type]


def position_of(cap: Capture, options: Sequence[int] | None = None) -> int:
    """The shared position, clamped (default: the last of the options), without drawing a widget:
    for the token strip above the selector."""
    options = list(range(cap.n_tokens)) if options is None else list(options)
    return _clamp("position", options, options[-1])


def select_position(cap: Capture, label: str, options: Sequence[int] | None = None, *, where=st) -> int:
    """The shared position selector (default: the last token). It rewrites the URL on change: inside a
    fragment (Attention's "From one token") the shell, which writes it otherwise, does not run."""
    options = list(range(cap.n_tokens)) if options is None else list(options)
    labels = {p: position_label(cap, p) for p in options}
    return int(pickers.picker(label, labels, key="position", default=options[-1], where=where,  # type: ignore[arg-type]
                              persist_state="session", on_change=links.write_url))


def select_layer(cap: Capture, label: str = "Block", *, slider: bool = False, where=st) -> int:
    """The shared block selector, 0-based (a slider or a selectbox)."""
    n = cap.summary.n_layers
    _clamp("layer", range(n), 0)
    if slider:
        return int(where.slider(label, 0, n - 1, key="layer", persist_state="session", on_change=links.write_url))
    return int(where.selectbox(label, list(range(n)), key="layer", persist_state="session", on_change=links.write_url))


def select_head(cap: Capture, label: str = "Head", *, where=st) -> int:
    """The shared head selector; under grouped-query attention each head names the key/value head it shares."""
    cfg = cap.summary
    shared = cfg.n_kv_heads < cfg.n_heads
    labels = {h: f"head {h} (key/value head {h // cfg.group_size})" if shared else f"head {h}"
              for h in range(cfg.n_heads)}
    return int(pickers.picker(label, labels, key="head", default=0, where=where,  # type: ignore[arg-type]
                              persist_state="session", on_change=links.write_url))


def temperature_slider(label: str = "Temperature", *, key: str = "temperature", where=st,
                       help: str | None = None) -> float:
    """A temperature slider over the one range the app and its links accept. The shared key also
    rewrites the URL on change (a fragment rerun skips the shell, which writes it otherwise);
    other keys (e.g. inside a form, where callbacks are not allowed) keep their own value."""
    low, high = TEMPERATURE_RANGE
    st.session_state.setdefault(key, shared_keys.DEFAULT_TEMPERATURE)
    callback = links.write_url if key == "temperature" else None
    return float(where.slider(label, low, high, step=TEMPERATURE_STEP, key=key, persist_state="session",
                              on_change=callback, help=help))


def token_strip(cap: Capture, highlight: int | None = None, *, where=st, window: tuple[int, int] | None = None,
                key: str = "strip_start") -> None:
    """The shared token strip (escaped HTML: tags in a prompt show as characters); a long prompt's is a
    window moved by a slider (kit/long.py) under `key` (one per strip on a page that draws several), or
    the page's own `window` (start, stop) when it has one."""
    start, stop = window if window is not None else long.strip_window(cap, highlight, where=where, key=key)
    where.html(token_strip_html(cap.tokens[start:stop], cap.token_ids[start:stop], highlight=highlight, start=start))


def continuation_box(lm: LanguageModel, ids: Sequence[int], continuation: str, *, where=st) -> None:
    """A prompt and its continuation as text: the sidebar's prompt, or in the chat template the conversation
    as the model read it; a long one's last PROMPT_SHOWN characters only, and a line saying so."""
    start = lm.tokenizer.decode(list(ids)) if chat_on(lm) else prompt()
    where.code(("…" + start[-PROMPT_SHOWN:] if len(start) > PROMPT_SHOWN else start) + continuation,
               language=None, wrap_lines=True)  # user and model text: shown as text
    if len(start) > PROMPT_SHOWN:
        where.caption(f"The prompt's last {PROMPT_SHOWN} of its {len(start):,} characters, then the continuation.")


def set_defaults(defaults: dict[str, object]) -> None:
    """Give a page's widgets their first values (persist_state keeps them across page switches)."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def explain(title: str, body: str) -> None:
    """A page's short explanation, collapsed by default. Body is our own markdown text."""
    with st.expander(title, expanded=False):
        st.markdown(body)
