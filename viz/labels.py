"""Token labels for axes and hovers: unique, short, readable (split characters rebuilt) and safe to
show as text; plus the one tick style every token axis uses."""
from __future__ import annotations

import html
import unicodedata

from model.tokens import character_labels

TICK_FONT = dict(size=11, color="#1f2430", family="ui-monospace, monospace")  # dark, not plotly's pale grey
TICK_CHAR_PX = 6.7  # TICK_FONT's monospace advance (0.6 em of 11 px, rounded up)
PX_PER_LABEL = 13  # a label needs about this many pixels across the axis to stay apart from the next


def stream_name(index: int) -> str:
    """The one vocabulary for the residual stream: index 0 is "embedding" (before block 0), index
    i is "after block i-1" (blocks count from 0). Every axis, hover, table and file uses it."""
    return "embedding" if index == 0 else f"after block {index - 1}"


def stream_names(n: int) -> list[str]:
    """Names of the n residual streams: embedding, after block 0, ..., after block n-2."""
    return [stream_name(i) for i in range(n)]


def escape(text: str) -> str:
    """Escape text for plotly labels/hovers, which render a subset of HTML. Quotes stay as they are:
    plotly shows `&quot;` literally, and outside attributes a quote is harmless."""
    return html.escape(text, quote=False)


def short(token: str, width: int = 12) -> str:
    """Trim a token for a tick label."""
    return token if len(token) <= width else token[: width - 1] + "…"


def axis_labels(tokens: list[str], width: int = 12) -> list[str]:
    """One unique, escaped tick label per position: 'token (pos)' keeps repeated tokens apart; a
    character split over byte tokens shows in each of them (我…, …我) instead of <0xE6><0x88>."""
    return [f"{escape(short(t, width))} ({i})" for i, t in enumerate(character_labels(tokens))]


def tick_step(n: int, max_ticks: int = 64) -> int:
    """Show every k-th tick so at most max_ticks labels crowd an axis."""
    return max(1, -(-n // max_ticks))


def fit_ticks(n: int, axis_px: int) -> int:
    """Every k-th token labelled so the labels along axis_px pixels never overlap (k = 1 when they fit)."""
    return tick_step(n, max(1, axis_px // PX_PER_LABEL))


def text_width(text: str) -> int:
    """Width in narrow-character units: Chinese, Japanese, Korean and emoji count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def tick_label_px(labels: list[str]) -> int:
    """Pixels the longest of these TICK_FONT labels takes along its own direction (an escaped entity
    such as &lt; counts its every character: the estimate only errs wide)."""
    return int(TICK_CHAR_PX * max((text_width(label) for label in labels), default=0)) + 1


def cell_text(token: str, cell_px: float, px_per_char: float = 7.0) -> str:
    """A token cut to the width of its cell, escaped, never spilling into the next: whole if it fits,
    else its start and '…', else '' (one bare character of a longer token would mislead)."""
    room = int(cell_px // px_per_char)
    if text_width(token) <= room:
        return escape(token)
    cut = token
    while cut and text_width(cut) + 1 > room:
        cut = cut[:-1]
    return escape(cut + "…") if cut else ""
