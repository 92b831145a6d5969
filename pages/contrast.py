"""The token pickers every logit page shares: token A (whose logit to explain) and, optionally, a
token B, so that every figure reports logit(A) − logit(B) ("why A and not B?"). The choices are
the model's top tokens at the position; both persist across pages, clamped to each new position.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from model import Capture, LanguageModel
from model.sampling import probabilities, top_tokens
from model.tokens import readable_tokens

N_CHOICES = 10
TOKEN_A, TOKEN_B = "attr_token", "contrast_token"  # session keys shared by the pages that explain a logit
_TYPED, _NOTE = "_contrast_typed", "_contrast_note"  # token ids typed in as B; why a typed text was refused


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


def _typed(tokenizer) -> None:
    """A B typed into the box (not among the offered tokens) becomes that token, when it is one."""
    value = st.session_state.get(TOKEN_B)
    if not isinstance(value, str):
        return
    token = single_token(tokenizer, value)
    if token is None:
        st.session_state[_NOTE] = f"“{value}” is more than one token for this model: type a single token."
    else:
        st.session_state[_TYPED] = [token] + [t for t in st.session_state.get(_TYPED, []) if t != token][:4]
    st.session_state[TOKEN_B] = token


def contrast_token(lm: LanguageModel, cap: Capture, pos: int, *, where=st, label_a: str = "Token A (whose logit)",
                   ) -> Contrast:
    """Two selectors side by side: A from the top tokens at `pos` (default: the top one), then B from
    the others, a token typed in, or none (default: none)."""
    p = probabilities(cap.logits[pos], 1.0)
    ids = [int(i) for i in top_tokens(p, N_CHOICES)]
    names = dict(zip(ids, readable_tokens(lm.tokenizer, ids)))
    if st.session_state.get(TOKEN_A) not in ids:
        st.session_state[TOKEN_A] = ids[0]
    cols = where.columns(2)
    a = cols[0].selectbox(label_a, ids, key=TOKEN_A, persist_state="session",
                          format_func=lambda i: f"{names[i]}  ({p[i]:.1%})")
    typed = [t for t in st.session_state.get(_TYPED, []) if t not in ids and t < len(p)]
    names.update(zip(typed, readable_tokens(lm.tokenizer, typed)))
    others = [None] + [i for i in ids + typed if i != a]
    if st.session_state.get(TOKEN_B) not in others:
        st.session_state[TOKEN_B] = None
    b = cols[1].selectbox("…and not token B (contrast)", others, key=TOKEN_B, persist_state="session",
                          format_func=lambda i: _label(i, names, p), accept_new_options=True,
                          on_change=_typed, args=(lm.tokenizer,),
                          help="Pick a rival token, or type one: every figure then shows logit(A) − logit(B), the "
                               "standard question of interpretability work: why this token and not that one?")
    if note := st.session_state.pop(_NOTE, None):
        cols[1].caption(note)
    b = b if isinstance(b, int) else None  # a typed text is resolved by the callback on the next run
    return Contrast(a, names[a], b, names[b] if b is not None else "")


def _label(token, names: dict[int, str], p) -> str:
    if token is None:
        return "none: A's logit alone"
    if isinstance(token, str):  # typed, not resolved yet
        return token
    return f"{names[token]}  ({p[token]:.1%})"
