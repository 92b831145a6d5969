"""The token strip: every token as a chip, with position and id on hover. Built as escaped HTML:
a prompt containing tags or markdown shows those characters and never renders them.
"""
from __future__ import annotations

import html

_STYLE = (
    "<style>.xr-strip{display:flex;flex-wrap:wrap;gap:4px;font-family:ui-monospace,monospace;"
    "font-size:0.85rem;line-height:1.2}.xr-chip{border:1px solid #c9ced6;border-radius:6px;"
    "padding:2px 6px;background:#f5f7fa;white-space:pre}.xr-chip sub{color:#8a93a0;font-size:0.65rem;"
    "margin-left:3px}.xr-chip.xr-hi{background:#ffe7a3;border-color:#e0a800}</style>"
)


def token_strip_html(tokens: list[str], token_ids, highlight: int | None = None, max_chips: int = 1024) -> str:
    """HTML for the chips; every token text and tooltip is escaped."""
    chips = []
    for pos, (tok, tid) in enumerate(zip(tokens[:max_chips], token_ids[:max_chips])):
        cls = "xr-chip xr-hi" if pos == highlight else "xr-chip"
        title = html.escape(f"position {pos} · id {int(tid)} · {tok}", quote=True)
        chips.append(f'<span class="{cls}" title="{title}">{html.escape(tok)}<sub>{pos}</sub></span>')
    more = len(tokens) - max_chips
    if more > 0:
        chips.append(f'<span class="xr-chip">… {more} more</span>')
    return _STYLE + '<div class="xr-strip">' + "".join(chips) + "</div>"
