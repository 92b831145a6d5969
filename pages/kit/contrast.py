"""The token pickers every logit page shares: token A (whose logit to explain) and, optionally, a
token B, so that every figure reports logit(A) − logit(B) ("why A and not B?"). The choices are
the model's top tokens at the position, or any token typed in; both persist across pages, clamped to
each new position.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from model import Capture, LanguageModel
from model.analyses.sampling import probabilities, top_tokens
from model.core.tokens import readable_tokens
from pages.kit import pickers
from viz.labels import literal, percent, short

N_CHOICES = 10
TOKEN_A, TOKEN_B = "attr_token", "contrast_token"  # session keys shared by the pages that explain a logit
NO_B = -1  # B's "none" option: an int like the others (a None value would show as an empty box)
_TYPED, _NOTE = "_contrast_typed", "_contrast_note"  # tokens typed in or linked, offered to A and B; why a text was refused
_SHOWN = "_contrast_shown"  # A and B as last drawn: what a refused text leaves in place
_A_PICKED = "_contrast_a_picked"  # A was picked, typed or linked; until then it follows the top token


@dataclass(frozen=True)
class Contrast:
    """Token A, and token B when the user asked "why A and not B?"."""

    a: int
    a_name: str
    b: int | None = None
    b_name: str = ""

    @property
    def metric(self) -> str:
        """What every figure measures: 'logit(·Mary) − logit(·John)' or 'logit(·Mary)'. Plain text."""
        return f"logit({self.a_name})" + (f" − logit({self.b_name})" if self.b is not None else "")

    def of(self, logits_row) -> float:
        """The metric read from a (V,) logits row."""
        return float(logits_row[self.a]) - (float(logits_row[self.b]) if self.b is not None else 0.0)


def single_token(tokenizer, text: str) -> int | None:
    """The one token a typed text stands for: a typed word is read as a word inside a sentence (with
    its leading space, "Rome" -> "·Rome") when that is one token, else as typed; None when neither is."""
    for candidate in (" " + text, text) if text[:1].isalnum() else (text,):
        ids = tokenizer(candidate, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return int(ids[0])
    return None


def _changed(tokenizer, key: str) -> None:
    """A's or B's box changed by the user. A token typed in (not among the offered ones) becomes that
    token, when it is one; A, once picked, stays where a new prompt or position would move its default."""
    value = st.session_state.get(key)
    if not isinstance(value, str):
        if key == TOKEN_A:
            st.session_state[_A_PICKED] = value is not None
        return
    token = single_token(tokenizer, value)
    if token is None:
        st.session_state[_NOTE] = (key, f"“{literal(short(value, 40))}” is more than one token for this model: type a "
                                        "single token.")  # quoted short: a pasted paragraph is not echoed whole
        st.session_state[key] = st.session_state.get(_SHOWN, {}).get(key)  # the choice before the text stays
    else:
        offer(token, key)


def offer(token: int, key: str) -> None:
    """Choose `token` for A or B (e.g. from a link), offering it beside the top tokens."""
    st.session_state[_TYPED] = [token] + [t for t in st.session_state.get(_TYPED, []) if t != token][:4]
    st.session_state[key] = token
    if key == TOKEN_A:
        st.session_state[_A_PICKED] = True


def linked() -> dict[str, int]:
    """Tokens A and B as a link carries them: A only when picked (its default, the top token, follows
    each new prompt: a linked A is kept as if typed, so a reload would pin it), B unless none."""
    state, out = st.session_state, {}
    a, b = state.get(TOKEN_A), state.get(TOKEN_B)
    if isinstance(a, int) and state.get(_A_PICKED):
        out["a"] = a
    if isinstance(b, int) and b != NO_B:
        out["b"] = b
    return out


def _note(key: str, where) -> None:
    """Why a text typed into this box was refused (shown once, under that box)."""
    note = st.session_state.get(_NOTE)
    if note and note[0] == key:
        del st.session_state[_NOTE]
        where.caption(note[1])


def contrast_token(lm: LanguageModel, cap: Capture, pos: int, *, where=st, label_a: str = "Token A (whose logit)",
                   ) -> Contrast:
    """Two pickers side by side: A from the top tokens at `pos` (default: the top one, which follows each
    new prompt and position until A is picked) or typed in, then B from the others, typed in, or none
    (default: none). Labels carry this capture's probabilities, drawn fresh every run (pages/kit/pickers.py)."""
    p = probabilities(lm.logits_at(cap, pos), 1.0)
    ids = [int(i) for i in top_tokens(p, N_CHOICES)]
    if not st.session_state.get(_A_PICKED):
        st.session_state[TOKEN_A] = ids[0]
    typed = [t for t in st.session_state.get(_TYPED, []) if t not in ids and t < len(p)]
    names = dict(zip(ids + typed, readable_tokens(lm.tokenizer, ids + typed)))
    labels: dict[int, str] = {i: f"{names[i]}  ({percent(p[i])})" for i in ids + typed}
    cols = where.columns(2)
    a = pickers.picker(label_a, labels, key=TOKEN_A, default=ids[0], where=cols[0], persist_state="session",
                       accept_new_options=True, on_change=_changed, args=(lm.tokenizer, TOKEN_A),
                       help="Pick one of the likeliest tokens here, or type any token.")
    _note(TOKEN_A, cols[0])
    a = a if isinstance(a, int) else ids[0]  # a typed text is resolved by the callback on the next run
    if a == ids[0]:  # the default again (picked, or a pick no longer offered): it follows the next prompt
        st.session_state[_A_PICKED] = False
    others = {NO_B: "none: A's logit alone"} | {i: label for i, label in labels.items() if i != a}
    b = pickers.picker("…and not token B (contrast)", others, key=TOKEN_B, default=NO_B, where=cols[1],
                       persist_state="session", accept_new_options=True, on_change=_changed,
                       args=(lm.tokenizer, TOKEN_B),
                       help="Pick a rival token, or type one: every figure then shows logit(A) − logit(B), the "
                            "standard question of interpretability work: why this token and not that one?")
    _note(TOKEN_B, cols[1])
    st.session_state[_SHOWN] = {TOKEN_A: a, TOKEN_B: b if isinstance(b, int) else NO_B}
    b = b if isinstance(b, int) and b != NO_B else None
    return Contrast(a, names[a], b, names[b] if b is not None else "")
