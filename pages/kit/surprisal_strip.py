"""The surprisal strip on a page (Start here, the lesson's logits step): computed once per capture,
its HTML kept per window, so a rerun costs a cache look-up. A long prompt shows the token strip's window
under an overview of the whole prompt."""
from __future__ import annotations

import numpy as np
import streamlit as st

from model import Capture, LanguageModel
from model.analyses.surprisal import Surprisal, surprisal
from model.core.keys import cache_key
from model.core.tokens import readable_tokens
from pages.kit import captures, results
from viz.surprisal import summary, surprisal_strip_html

EXPLAINED = ("**Surprisal** is −log₂ p, in **bits**: how unlikely the model found each token of your prompt, "
             "predicted from the tokens before it. 1 bit is a coin toss's worth of surprise; each extra bit "
             "halves the probability (10 bits: about 1 in 1,000).")


def _names(lm: LanguageModel, ids: np.ndarray) -> dict[int, str]:
    """Readable text of each distinct id (the -1 that fills the first position left out)."""
    distinct = np.unique(ids[ids >= 0])
    return dict(zip(distinct.tolist(), readable_tokens(lm.tokenizer, distinct)))


def _html(lm: LanguageModel, cap: Capture, result: Surprisal, start: int, stop: int) -> str:
    rows = result.top_ids[start:stop]  # (n, top)
    worst = result.most_surprising
    extra = result.top_ids[worst, :1] if worst is not None else np.zeros(0, dtype=np.int64)
    names = _names(lm, np.concatenate([rows.ravel(), extra]))
    expected = [[names[i] for i in row if i >= 0] for row in rows.tolist()]
    note = summary(cap.tokens, result, names[int(result.top_ids[worst, 0])] if worst is not None else "")
    whole = cap.tokens if stop - start < cap.n_tokens else None
    return surprisal_strip_html(cap.tokens[start:stop], result, expected, start=start, note=note, whole=whole)


def strip(lm: LanguageModel, cap: Capture, window: tuple[int, int] | None = None, *, where=st) -> None:
    """The strip for positions `window` (start, stop) of the sidebar's capture (default: all), with its
    one-line explanation."""
    start, stop = window if window is not None else (0, cap.n_tokens)
    key = captures.current_key(lm)
    result = results.derived("surprisal", key, lambda: surprisal(cap, stats=lm.logit_stats(cap)))
    where.caption(EXPLAINED)
    where.html(results.derived("surprisal_html", cache_key(start, stop, key),
                               lambda: _html(lm, cap, result, start, stop)))
