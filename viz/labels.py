"""Token labels for axes and hovers: unique, short, and safe to show as text."""
from __future__ import annotations

import html


def escape(text: str) -> str:
    """Escape text for plotly labels/hovers, which render a subset of HTML. Quotes stay as they are:
    plotly shows `&quot;` literally, and outside attributes a quote is harmless."""
    return html.escape(text, quote=False)


def short(token: str, width: int = 12) -> str:
    """Trim a token for a tick label."""
    return token if len(token) <= width else token[: width - 1] + "…"


def axis_labels(tokens: list[str], width: int = 12) -> list[str]:
    """One unique, escaped tick label per position: 'token (pos)' keeps repeated tokens apart."""
    return [f"{escape(short(t, width))} ({i})" for i, t in enumerate(tokens)]


def tick_step(n: int, max_ticks: int = 64) -> int:
    """Show every k-th tick so at most max_ticks labels crowd an axis."""
    return max(1, -(-n // max_ticks))
