"""The surprisal strip: every prompt token as a chip coloured by how surprised the model was to see it
there (bits, from model.analyses.surprisal), with its probability, rank and what the model expected on
hover. Escaped HTML like the token strip: a token such as <script> shows as those characters. A long
prompt is shown a window at a time (the page passes `start`), under an overview of the whole prompt in
at most OVERVIEW_CELLS cells; the summary covers the whole prompt.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from model.analyses.surprisal import Surprisal
from model.core.tokens import character_labels

OVERVIEW_CELLS = 128  # a long prompt's overview: one cell per run of positions
SCALE_BITS = 16.0  # the colour is darkest from here on (about log2 of a 49,152-token vocabulary)
_LOW, _MID, _HIGH = (247, 247, 247), (253, 174, 97), (165, 0, 38)  # predictable -> surprising

_STYLE = (
    "<style>.xr-sup{display:flex;flex-wrap:wrap;gap:3px;font-family:ui-monospace,monospace;font-size:0.85rem;"
    "line-height:1.2}.xr-sup span{border-radius:4px;padding:2px 5px;white-space:pre;border:1px solid #d4d8de}"
    ".xr-none{background:repeating-linear-gradient(45deg,#eee,#eee 3px,#fff 3px,#fff 6px);color:#666;"
    "border-style:dashed}.xr-sup-key{font-size:0.8rem;color:#4a5260;margin:4px 0}"
    ".xr-sup-key i{display:inline-block;width:120px;height:10px;vertical-align:middle;margin:0 6px;"
    "background:linear-gradient(90deg,rgb(247,247,247),rgb(253,174,97),rgb(165,0,38))}"
    ".xr-sup-all{display:flex;height:16px;border:1px solid #d4d8de;margin-bottom:6px}.xr-sup-all span{flex:1}</style>"
)


def colour(bits: float) -> tuple[str, str]:
    """(background, text colour) for a surprisal: light for the expected, dark red for a surprise."""
    x = min(max(bits / SCALE_BITS, 0.0), 1.0)
    a, b, f = (_LOW, _MID, x * 2) if x < 0.5 else (_MID, _HIGH, x * 2 - 1)
    rgb = tuple(round(u + (v - u) * f) for u, v in zip(a, b))
    return f"rgb{rgb}".replace(" ", ""), "#fff" if x > 0.7 else "#111"


def probability_text(p: float) -> str:
    """A probability readable at any size: 31.2%, 0.42%, 3.1e-06."""
    return f"{p:.1%}" if p >= 0.001 else f"{p:.2g}"


def _guess(rank: int) -> str:
    return "its top guess" if rank == 1 else f"its guess number {rank:,}"


def _title(pos: int, label: str, s: Surprisal, expected: Sequence[str]) -> str:
    """A chip's hover: the surprisal, probability and rank, and the tokens the model expected there."""
    if np.isnan(s.bits[pos]):
        return (f"position {pos} · {label}\nno prediction: nothing comes before the first token, "
                "so the model had nothing to predict it from")
    alternatives = ", ".join(f"'{t}' {probability_text(float(p))}" for t, p in zip(expected, s.top_probability[pos]))
    return (f"position {pos} · {label}\n{s.bits[pos]:.2f} bits · p = {probability_text(float(s.probability[pos]))} "
            f"· {_guess(int(s.rank[pos]))}\nexpected: {alternatives}")


def _chip(pos: int, label: str, s: Surprisal, expected: Sequence[str]) -> str:
    title = html.escape(_title(pos, label, s, expected), quote=True)
    if np.isnan(s.bits[pos]):
        return f'<span class="xr-none" title="{title}">{html.escape(label)}</span>'
    back, ink = colour(float(s.bits[pos]))
    return f'<span style="background:{back};color:{ink}" title="{title}">{html.escape(label)}</span>'


def summary(tokens: Sequence[str], s: Surprisal, expected_first: str) -> str:
    """A few sentences from this prompt's own numbers (plain text): the most surprising token, what the
    model expected there (`expected_first`: its top guess at s.most_surprising), and the average."""
    worst = s.most_surprising
    if worst is None:
        return "A single token: nothing comes before it, so the model has predicted nothing yet."
    labels = character_labels(list(tokens))
    top1 = int(np.count_nonzero(s.rank[1:] == 1))
    return (f"Most surprising: '{labels[worst]}' at position {worst}, {s.bits[worst]:.1f} bits "
            f"(p = {probability_text(float(s.probability[worst]))}); the model expected '{expected_first}'. "
            f"On average {np.nanmean(s.bits):.1f} bits per token; the next token was the model's top guess at "
            f"{top1} of {s.n_tokens - 1} positions.")


def surprisal_strip_html(tokens: Sequence[str], s: Surprisal, expected: Sequence[Sequence[str]], start: int = 0,
                         note: str = "", whole: Sequence[str] | None = None) -> str:
    """Escaped HTML: the colour key, `note` (plain text, e.g. summary()), the overview of the whole prompt
    when `whole` (every prompt token) is given, then one chip per token of `tokens` (the prompt's positions
    start, start + 1, ...); `expected[k]`: the labels of s.top_ids[start + k]."""
    labels = character_labels(list(tokens))
    chips = "".join(_chip(start + k, label, s, expected[k]) for k, label in enumerate(labels))
    key = (f'<div class="xr-sup-key">expected (0 bits)<i></i>surprising ({SCALE_BITS:.0f}+ bits) · '
           '<span class="xr-none" style="padding:0 4px">hatched</span> no prediction (the first token) · '
           'point at a token for its numbers</div>')
    text = f'<div class="xr-sup-key">{html.escape(note)}</div>' if note else ""
    overview = overview_html(whole, s) if whole is not None else ""
    return _STYLE + key + text + overview + f'<div class="xr-sup">{chips}</div>'


def _cell(s: Surprisal, tokens: Sequence[str], run: np.ndarray) -> str:
    """One overview cell: a run of positions coloured by its mean surprisal, its peak on hover."""
    bits = s.bits[run]
    peak = int(run[int(np.argmax(bits))])
    title = (f"positions {run[0]}–{run[-1]} · on average {bits.mean():.1f} bits\nmost surprising: "
             f"'{tokens[peak]}' at position {peak}, {s.bits[peak]:.1f} bits")
    return f'<span style="background:{colour(float(bits.mean()))[0]}" title="{html.escape(title, quote=True)}"></span>'


def overview_html(tokens: Sequence[str], s: Surprisal, cells: int = OVERVIEW_CELLS) -> str:
    """Escaped HTML (styled by surprisal_strip_html): the whole prompt's surprisal in at most `cells` cells
    (the first token, which has no prediction, left out), so a text of thousands of tokens shows where it was
    predictable at a glance."""
    if s.n_tokens < 2:
        return ""
    runs = np.array_split(np.arange(1, s.n_tokens), min(cells, s.n_tokens - 1))
    size = max(run.size for run in runs)
    caption = (f"The whole prompt: {s.n_tokens - 1:,} predicted tokens in {len(runs)} cells of up to {size} "
               "(point at one for its numbers); the tokens below are one window of it.")
    return (f'<div class="xr-sup-key">{html.escape(caption)}</div>'
            + '<div class="xr-sup-all">' + "".join(_cell(s, tokens, run) for run in runs) + "</div>")
