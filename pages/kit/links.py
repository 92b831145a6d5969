"""Shareable links: the prompt, model, chat template, layer, head, position, temperature and tokens A and
B live in the URL query string, so a copied link opens the same view; a page adds its own values (the
lesson's step, the patching pair). Bad or stale values fall back to defaults with a notice.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from model.core.description import ModelSummary
from model.core.settings import DEFAULT_MODEL, settings
from pages.kit import contrast, models, session, shared_keys
from pages.kit.shared_keys import TEMPERATURE_RANGE
from viz.labels import literal, short

MAX_URL_PROMPT = 4000  # characters; longer prompts are left out of links
_PENDING = "_url_pending"
_PAGE_PARAMS = "_url_page_params"  # a page's own values for its link (the lesson's step)
_CHECKED = {"layer": "layer", "head": "head", "position": "position", "a": "token A", "b": "token B"}  # URL -> words


def quoted(raw: str, width: int = 20) -> str:
    """A link's value inside a notice: shortened, and literal (notices are markdown; a link is anyone's text)."""
    return literal(short(raw, width))


@dataclass(frozen=True)
class Linked:
    """One of a page's own values in its link: the session key it sets, how its text reads (a ValueError
    when it does not), which values are accepted, and what to say is expected."""

    key: str
    read: Callable[[str], Any]
    accepted: Callable[[Any], bool]
    expected: str


def read_linked(linked: dict[str, Linked]) -> None:
    """Each of a page's values present in the link into the session state; a notice names each one
    ignored and what was expected (the page calls it on the session's first visit)."""
    for name, spec in linked.items():
        raw = st.query_params.get(name)
        if raw is None:
            continue
        try:
            value = spec.read(raw)
        except ValueError:
            value = None
        if value is not None and spec.accepted(value):
            st.session_state[spec.key] = value
        else:
            st.warning(f"Ignored {name} '{quoted(raw)}' from the link: expected {spec.expected}.")


def share_note(prompt: str) -> str:
    """What copying the address bar shares (a prompt too long for a link is said, never dropped silently)."""
    if len(prompt) <= MAX_URL_PROMPT:
        return "Copy the address bar to share this exact view."
    return (f"This prompt has {len(prompt):,} characters, more than a link carries ({MAX_URL_PROMPT:,}): a copied "
            "link keeps the view's settings but opens the default prompt. Send the text along with it.")


def _parse(kind: type, raw: str):
    try:
        return kind(raw)
    except (TypeError, ValueError):
        return None


def _read_model(raw: str, notices: list[str]) -> None:
    """The link's model: one the server offers; with no list of offered models, a hub id, never a folder
    or file of the server's (a link is anyone's: it must not load or probe the server's disk)."""
    allowed = settings().allowed_models
    if raw == DEFAULT_MODEL:
        return
    if not allowed and _local(raw):
        notices.append(f"The link asks for the server's folder or file '{quoted(raw, 60)}': a link may name a hub "
                       "model only; using the default. Type a folder into the sidebar's model box to load it.")
    elif allowed and raw not in allowed:
        notices.append(f"The link asks for model '{quoted(raw, 60)}', which this server does not offer; using the default.")
    elif allowed:
        st.session_state["model_choice"] = raw
    else:
        st.session_state["model_choice"] = models.OTHER_MODEL
        st.session_state["model_custom"] = raw


def _local(name: str) -> bool:
    """Whether a model name is a path on the server: reads as one (absolute, relative, home, a drive), or is
    one (a relative folder that looks like a hub id)."""
    looks = name.startswith(("/", ".", "~", "\\")) or (len(name) > 1 and name[1] == ":") or name.count("/") > 1
    return looks or Path(name).expanduser().exists()


def _read_temperature(raw: str, notices: list[str]) -> None:
    value = _parse(float, raw)
    low, high = TEMPERATURE_RANGE
    if value is None or not low <= value <= high:
        notices.append(f"Ignored temperature '{quoted(raw)}' from the link (expected a number from {low} to {high}).")
    else:
        st.session_state["temperature"] = round(value, 2)


def _read_limit(raw: str, notices: list[str]) -> None:
    """A token limit from the link (the sidebar brings one above what the model allows here down to it)."""
    value = _parse(int, raw)
    if value is None or value < 1:
        notices.append(f"Ignored limit '{quoted(raw)}' from the link (expected a whole number of tokens from 1).")
    else:
        st.session_state["token_limit"] = value


def _read_chat(raw: str, notices: list[str]) -> None:
    if raw in ("0", "1"):
        st.session_state[session.CHAT_TEMPLATE] = raw == "1"
    else:
        notices.append(f"Ignored chat '{quoted(raw)}' from the link (expected 1 for the chat template, 0 for none).")


def read_url_once() -> list[str]:
    """On a session's first run, copy valid URL values into session state; return notices."""
    if st.session_state.get("_url_read"):
        return []
    st.session_state["_url_read"] = True
    params, notices = st.query_params, []
    if "prompt" in params:
        text = params["prompt"]
        if 0 < len(text) <= MAX_URL_PROMPT:
            st.session_state["prompt"] = text
        else:
            notices.append("The prompt in the link was empty or too long; using the default prompt.")
    if "model" in params:
        _read_model(params["model"], notices)
    if "temperature" in params:
        _read_temperature(params["temperature"], notices)
    if "chat" in params:
        _read_chat(params["chat"], notices)
    if "limit" in params:
        _read_limit(params["limit"], notices)
    st.session_state[_PENDING] = {k: params[k] for k in _CHECKED if k in params}
    if "position" in params:  # the link's position belongs to the link's prompt: a new prompt moves it
        shared_keys.follow_prompt(session.prompt())
    return notices


def apply_geometry(summary: ModelSummary) -> list[str]:
    """Layer, head, position and tokens A and B from the link, checked against the loaded model's shape
    (a position past the prompt's end falls back to its last token where the selector is drawn)."""
    pending, notices = st.session_state.pop(_PENDING, {}), []
    limits = {"layer": summary.n_layers, "head": summary.n_heads, "a": summary.vocab_size,
              "b": summary.vocab_size, "position": None}
    for name, raw in pending.items():
        value, limit = _parse(int, raw), limits[name]
        if value is None or value < 0 or (limit is not None and value >= limit):
            notices.append(f"Ignored {_CHECKED[name]} '{quoted(raw)}' from the link" +
                           (f" (this model has {limit:,}: 0-{limit - 1:,})." if limit is not None else "."))
        elif name in ("a", "b"):
            contrast.offer(value, contrast.TOKEN_A if name == "a" else contrast.TOKEN_B)
        else:
            st.session_state[name] = value
    return notices


def page_params(**params: str) -> None:
    """The running page's own values for its link (e.g. the lesson's ?step=); kept until another page runs."""
    st.session_state[_PAGE_PARAMS] = dict(params)


def clear_page_params() -> None:
    """The shell, before each page runs: one page's values never follow the learner to another page."""
    st.session_state.pop(_PAGE_PARAMS, None)


def write_url() -> None:
    """Mirror the current view's state into the URL so copying it shares the view. The shell calls
    it after every full run; shared widgets call it on change, since a fragment rerun skips the shell."""
    state = st.session_state
    wanted = {"model": session.model_name()}
    text = session.prompt()
    if len(text) <= MAX_URL_PROMPT:
        wanted["prompt"] = text
    if session.chat_template():
        wanted["chat"] = "1"
    limit, most = state.get("token_limit"), state.get(session.LIMIT_MOST)
    if limit is not None and most is not None and limit < most:
        wanted["limit"] = str(limit)  # a lower limit refuses prompts: the link must say so
    for key in ("layer", "head", "position", "temperature"):
        if key in state and state[key] is not None:
            wanted[key] = str(state[key])
    wanted.update({name: str(token) for name, token in contrast.linked().items()})
    wanted.update(state.get(_PAGE_PARAMS, {}))
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)
