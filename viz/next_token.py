"""Next-token bars: the top N tokens of the distribution over the FULL vocabulary at a chosen
temperature / top-k / top-p, the rest as one bar, and the model's own (T = 1) bars as a ghost.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from model.analyses.sampling import entropy_bits, probabilities, rank_of, top_tokens

from .labels import INK, TICK_FONT, escape, is_byte_token, percent, readable

REST_LABEL = "all other tokens"
_COLOR, _GHOST, _REST, _CHOSEN = "#3b6fd8", "rgba(120,120,120,0.9)", "#b8c0cc", "#e8890c"


@dataclass(frozen=True, eq=False)
class NextTokenBars:
    """What the bars show; every number is computed over the whole vocabulary."""

    ids: np.ndarray  # (N,) the top N token ids by the model's own ranking
    probs: np.ndarray  # (N,) probability at the chosen settings
    ghost: np.ndarray  # (N,) probability at T = 1 with no top-k/top-p (the model's own)
    rest: float  # mass of every other token at the chosen settings
    ghost_rest: float
    entropy: float  # bits, chosen settings
    ghost_entropy: float  # bits, T = 1
    temperature: float


def next_token_bars(
    logits_row: np.ndarray, n: int = 20, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
    also: int | None = None,
) -> NextTokenBars:
    """Full-vocabulary probabilities (V,) at the settings and at T = 1, cut down to N bars + the rest.
    `also` (a token id) gets a bar after them when it is not among the top N (a sampled token far down)."""
    ids = top_tokens(logits_row, max(1, n))  # (N,) the model's own ranking
    if also is not None and also not in ids:
        ids = np.append(ids, also)
    p = probabilities(logits_row, temperature, top_k, top_p)  # (V,)
    p1 = p if (temperature == 1 and not top_k and top_p in (None, 1)) else probabilities(logits_row, 1.0)
    return NextTokenBars(
        ids=ids, probs=p[ids], ghost=p1[ids],
        rest=max(0.0, 1.0 - float(p[ids].sum())), ghost_rest=max(0.0, 1.0 - float(p1[ids].sum())),
        entropy=entropy_bits(p), ghost_entropy=entropy_bits(p1), temperature=float(temperature),
    )



_PURE_BYTES = re.compile(r"·?(?:<0x[0-9A-F]{2}>)+")  # safe to quote in markdown: no other characters


def byte_token_note(labels: list[str]) -> str | None:
    """A caption (markdown) for bars that hold a byte token such as <0xF0><0x9F>, None when none does:
    the first one by rank, named only when it is bytes alone (token text never goes into markdown)."""
    rank = next((r for r, label in enumerate(labels) if is_byte_token(label)), None)
    if rank is None:
        return None
    token = labels[rank]
    named = f"`{token}` (#{rank + 1})" if _PURE_BYTES.fullmatch(token) else f"The token at #{rank + 1}"
    return (f"{named} is a byte token: the tokenizer has no piece for many characters (most emoji), so it "
            "spells their UTF-8 bytes, and the model writes such a character a few bytes at a time "
            "(`<0xF0>` is the byte F0 in hexadecimal; it starts a four-byte character).")


def distinct_labels(labels: list[str], ids: np.ndarray) -> list[str]:
    """Bar labels as plain text; two tokens that look the same get their ids so no bar is merged."""
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [t if seen[t] == 1 else f"{t} #{int(i)}" for t, i in zip(labels, ids)]


def unique_labels(labels: list[str], ids: np.ndarray) -> list[str]:
    """distinct_labels escaped for plotly, which reads a few HTML tags in its text."""
    return [escape(t) for t in distinct_labels(labels, ids)]


def _settings_name(temperature: float) -> str:
    """Legend name of the bars at the chosen settings ("T = 1 (your settings)" beside the T = 1 ghost)."""
    return f"T = {temperature:g}" + (" (your settings)" if temperature == 1 else "")


def bars_figure(
    bars: NextTokenBars, labels: list[str], title: str = "", height: int | None = None, chosen: int | None = None
) -> go.Figure:
    """Horizontal bars, most likely on top; labels are the visible token texts (escaped here).
    `chosen` (a token id) is drawn in its own colour, e.g. the token a generation step picked."""
    if len(labels) != len(bars.ids):
        raise ValueError(f"{len(labels)} labels for {len(bars.ids)} tokens")
    y = unique_labels(labels, bars.ids) + [REST_LABEL]
    probs = np.append(bars.probs, bars.rest)  # (N+1,)
    ghost = np.append(bars.ghost, bars.ghost_rest)  # (N+1,)
    ids = [str(int(i)) for i in bars.ids] + ["—"]
    custom = np.stack([ids, [f"{g:.3g}" for g in ghost]], axis=-1)  # (N+1, 2)
    colors = [_CHOSEN if chosen is not None and int(i) == chosen else _COLOR for i in bars.ids] + [_REST]
    data = [  # plain dicts: one validation pass in go.Figure, several times faster than Bar + update_layout
        dict(type="bar", x=probs, y=y, orientation="h", name=_settings_name(bars.temperature), opacity=0.85,
             marker=dict(color=colors), customdata=custom, text=[percent(v) for v in probs], textposition="outside",
             textfont=dict(color=[c if c == _CHOSEN else INK for c in colors]),  # a chosen hairline bar: its number
             cliponaxis=False,
             hovertemplate="%{y}<br>id %{customdata[0]}<br>p = %{x:.3g}<br>at T = 1: %{customdata[1]}<extra></extra>"),
        dict(type="bar", x=ghost, y=y, orientation="h", name="T = 1 (the model's own)", hoverinfo="skip",
             showlegend=not np.array_equal(probs, ghost),  # at the model's own settings one legend entry
             marker=dict(color="rgba(0,0,0,0)", line=dict(color=_GHOST, width=1.5))),
    ]
    layout = dict(
        barmode="overlay", title=dict(text=title) if title else None, height=height or 120 + 24 * len(y),
        margin=dict(l=10, r=40, t=40 if title else 10, b=10), legend=dict(orientation="h", y=1.02, yanchor="bottom"),
        xaxis=dict(title=dict(text="probability"), range=[0, min(1.2, max(probs.max(), ghost.max()) * 1.15 + 0.02)]),
        yaxis=dict(autorange="reversed", type="category", tickfont=TICK_FONT),
    )
    return readable(go.Figure(data=data, layout=layout))


def next_token_figure(
    logits_row: np.ndarray, label: Callable[[list[int]], list[str]], n: int = 20, temperature: float = 1.0,
    top_k: int | None = None, top_p: float | None = None, chosen: int | None = None, title: str = "",
) -> tuple[go.Figure, NextTokenBars]:
    """Logits row (V,) + options -> the bars figure; `label` names token ids (their visible text). A chosen
    token outside the top N gets a bar of its own after them, its rank beside its name."""
    bars = next_token_bars(logits_row, n, temperature, top_k, top_p, also=chosen)
    labels = label([int(i) for i in bars.ids])
    if chosen is not None and len(bars.ids) > max(1, n):
        labels[-1] += f" (#{rank_of(logits_row, chosen):,})"
    return bars_figure(bars, labels, title=title, chosen=chosen), bars


def table_rows(bars: NextTokenBars, labels: list[str]) -> list[dict]:
    """One row per bar (rank, token, id, probability, at T = 1), then the rest of the vocabulary."""
    rows = [
        {"rank": r + 1, "token": t, "id": int(i), "probability": float(p), "probability at T=1": float(g)}
        for r, (t, i, p, g) in enumerate(zip(labels, bars.ids, bars.probs, bars.ghost))
    ]
    rows.append({"rank": None, "token": REST_LABEL, "id": None, "probability": bars.rest,
                 "probability at T=1": bars.ghost_rest})
    return rows


def table_csv(bars: NextTokenBars, labels: list[str]) -> str:
    """The next-token table as CSV text: rank, token, id, probability."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "token", "id", "probability"])
    for row in table_rows(bars, labels):
        token_id = "" if row["id"] is None else row["id"]
        writer.writerow([row["rank"] or "", _cell(row["token"]), token_id, f"{row['probability']:.8f}"])
    return out.getvalue()


def _cell(text: str) -> str:
    """Keep a spreadsheet from reading a token like '=1+2' as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def csv_filename(prompt: str, position: int | None = None) -> str:
    """A safe file name made from the prompt's first words, e.g. next_token_the_capital_of.csv."""
    words = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:40].strip("_") or "prompt"
    suffix = "" if position is None else f"_pos{position}"
    return f"next_token_{words}{suffix}.csv"
