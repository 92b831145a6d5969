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


def contrast_token(lm: LanguageModel, cap: Capture, pos: int, *, where=st, label_a: str = "Token A (whose logit)",
                   ) -> Contrast:
    """Two selectors side by side: A from the top tokens at `pos` (default: the top one), then B from
    the others or none (default: none)."""
    p = probabilities(cap.logits[pos], 1.0)
    ids = [int(i) for i in top_tokens(p, N_CHOICES)]
    names = dict(zip(ids, readable_tokens(lm.tokenizer, ids)))
    if st.session_state.get(TOKEN_A) not in ids:
        st.session_state[TOKEN_A] = ids[0]
    cols = where.columns(2)
    a = cols[0].selectbox(label_a, ids, key=TOKEN_A, persist_state="session",
                          format_func=lambda i: f"{names[i]}  ({p[i]:.1%})")
    others = [None] + [i for i in ids if i != a]
    if st.session_state.get(TOKEN_B) not in others:
        st.session_state[TOKEN_B] = None
    b = cols[1].selectbox("…and not token B (contrast)", others, key=TOKEN_B, persist_state="session",
                          format_func=lambda i: "none: A's logit alone" if i is None else f"{names[i]}  ({p[i]:.1%})",
                          help="Pick a rival token: every figure then shows logit(A) − logit(B), the standard "
                               "question of interpretability work: why this token and not that one?")
    return Contrast(a, names[a], b, names[b] if b is not None else "")
