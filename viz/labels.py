"""Token labels for axes and hovers: unique, short, readable (split characters rebuilt) and safe to
show as text; plus the one tick style every token axis uses."""
from __future__ import annotations

import html
import re
import unicodedata
from typing import TYPE_CHECKING

from model.core.tokens import character_labels

if TYPE_CHECKING:
    import plotly.graph_objects as go

INK = "#111827"  # near black: the light theme's #808495 grey washes out on a projector
TICK_SIZE = 12  # px, the smallest text a figure draws: readable from the back of a room at 1280 x 720
TICK_FONT = dict(size=TICK_SIZE, color=INK, family="ui-monospace, monospace")  # token axes
TICK_CHAR_PX = 7.3  # TICK_FONT's monospace advance (0.6 em of 12 px, rounded up)
PX_PER_LABEL = 13  # a label needs about this many pixels across the axis to stay apart from the next


_BYTE = re.compile(r"<0x[0-9A-F]{2}>")
BYTE_NOTE = ("byte token: the tokenizer has no piece for this character, so it spells the character's "
             "UTF-8 bytes, one or a few to a token (<0xF0> is the byte F0 in hexadecimal)")


def is_byte_token(token: str) -> bool:
    """A readable token (model/core/tokens.py) that holds raw bytes such as <0xF0>: part of a character the
    vocabulary has no piece for (an emoji, say)."""
    return bool(_BYTE.search(token))


def readable(fig: go.Figure) -> go.Figure:
    """Every axis's tick labels and title, colour bars, legends and notes in INK, ticks at least TICK_SIZE:
    the one text style of every figure (the browser's light theme would draw them pale grey)."""
    fig.update_layout(font_color=INK, legend_font_color=INK)
    scenes = [axis for scene in fig.select_scenes() for axis in (scene.xaxis, scene.yaxis, scene.zaxis)]
    for axis in (*fig.select_xaxes(), *fig.select_yaxes(), *scenes):
        axis.tickfont.color = INK
        axis.tickfont.size = max(axis.tickfont.size or TICK_SIZE, TICK_SIZE)
        axis.title.font.color = INK
    for trace in fig.data:
        bars = [trace.colorbar] if "colorbar" in trace else []
        if "marker" in trace and "colorbar" in trace.marker and trace.marker.showscale:
            bars.append(trace.marker.colorbar)
        for bar in bars:
            bar.tickfont.color = INK
            bar.tickfont.size = max(bar.tickfont.size or TICK_SIZE, TICK_SIZE)
    return fig


def points(change: float, digits: int = 1) -> str:
    """A difference of two probabilities in percentage points, '-5.0 pp': 50% -> 45% is -5 points,
    not -5% (which would read as a tenth of 50%)."""
    return f"{100 * change:+.{digits}f} pp"


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


_MARKDOWN = re.compile(r"([\\`*_\[\]<>$:~#|])")  # emphasis, code, links, HTML, LaTeX, Streamlit's :codes:, headings
_LIST = re.compile(r"^(\s*)([-+]|\d+(?=[.)]))", re.MULTILINE)  # a line that would start a list
# What GitHub-flavoured markdown turns into a link by itself, escaped or not (https://, www., a@b.c):
# a zero-width space after it leaves the text as it reads.
_AUTOLINK = re.compile(r"(?i)(?<![a-z0-9])(https?|ftp|www)(?=\\?[:.])|@")


def literal(text: str) -> str:
    """Text shown literally inside markdown (no bold, links, LaTeX or emoji codes from user input); the
    punctuation of plain sentences stays as it is. Addresses stay text: a zero-width space follows the
    scheme, 'www' and '@'."""
    escaped = _AUTOLINK.sub(lambda m: m[0] + "\u200b", _MARKDOWN.sub(r"\\\1", text))
    return _LIST.sub(lambda m: m[1] + ("\\" + m[2] if m[2] in "-+" else m[2] + "\\"), escaped)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 prompt', '1,204 prompts': a number and its noun, singular for one."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


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


def blocks_top_down(fig: go.Figure, span: tuple[float, float] | None = None, **axis) -> go.Figure:
    """The one block order of every figure whose rows are blocks (or residual streams): the embedding
    and block 0 on top, deeper blocks below, read downward like the lesson's "embedding, block 0,
    block 1…". Plotly draws a y axis upward (first category at the bottom), so it is reversed: a
    category axis by autorange; a numeric one, whose rows run from span[0] (block 0) to span[1], by a
    range from span[1] at the bottom to span[0] at the top. Figures with blocks as columns keep them
    left to right, plotly's own order. `axis`: more y-axis settings."""
    if span is None:
        fig.update_yaxes(autorange="reversed", **axis)
    else:
        fig.update_yaxes(range=[span[1], span[0]], autorange=False, **axis)
    return fig


def percent(p: float) -> str:
    """A probability as text: '12.3%', '<0.1%' for tiny but non-zero (never a false '0.0%'), '0%' for
    exactly zero (a token filtered out)."""
    return f"{p:.1%}" if p >= 0.0005 else ("<0.1%" if p > 0 else "0%")
