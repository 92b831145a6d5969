"""The token strip: every token as a chip, with position and id on hover (on a byte token, also what
its <0xNN> means). Built as escaped HTML: a prompt containing tags or markdown shows those characters
and never renders them. Tokens that only together spell a character (Chinese, emoji) sit in one group
labelled with that character.
A long prompt starts as one scrollable line; a toggle wraps it onto as many lines as it needs.
"""
from __future__ import annotations

import html

from model.core.tokens import TokenView, token_views
from viz.labels import BYTE_NOTE, is_byte_token

ONE_LINE_AFTER = 40  # tokens: above this the strip starts as one scrollable line

_STYLE = (
    "<style>.xr-strip{display:flex;flex-wrap:wrap;gap:4px;font-family:ui-monospace,monospace;"
    "font-size:0.85rem;line-height:1.2;align-items:flex-end}"
    ".xr-strip.xr-line{flex-wrap:nowrap;overflow-x:auto;padding-bottom:6px}"
    "details.xr-wrap[open]+.xr-strip.xr-line{flex-wrap:wrap;overflow-x:visible}"
    "details.xr-wrap summary{font-size:0.8rem;color:#4a5260;cursor:pointer}"
    ".xr-chip{border:1px solid #c9ced6;border-radius:6px;padding:2px 6px;background:#f5f7fa;white-space:pre;"
    "flex:none}.xr-chip sub{color:#5b6472;font-size:0.7rem;margin-left:3px}"
    ".xr-chip.xr-hi{background:#ffe7a3;border-color:#e0a800}"
    ".xr-group{display:inline-flex;flex-direction:column;align-items:center;flex:none;border:1px dashed #9aa5b5;"
    "border-radius:8px;padding:1px 3px 3px}.xr-glyph{font-size:1.1rem;white-space:pre}"
    ".xr-group .xr-parts{display:flex;gap:2px}.xr-group .xr-chip{font-size:0.7rem;padding:1px 4px}</style>"
)


def _chip(pos: int, view: TokenView, tid: int, highlight: int | None, text: str) -> str:
    """One token's chip; the hover keeps the byte view (the token alone) and the id."""
    cls = "xr-chip xr-hi" if pos == highlight else "xr-chip"
    alone = "" if view.raw == view.label else f" · alone: {view.raw}"
    note = f" · {BYTE_NOTE}" if is_byte_token(view.raw) else ""
    title = html.escape(f"position {pos} · id {tid} · {view.label}{alone}{note}", quote=True)
    return f'<span class="{cls}" title="{title}">{html.escape(text)}<sub>{pos}</sub></span>'


def _group(views: list[TokenView], ids: list[int], highlight: int | None, start: int = 0) -> str:
    """Tokens that spell characters only together: the characters on top, each token's id below."""
    first = views[0]
    data = bytes.hex(first.spelled.encode("utf-8"), " ").upper()
    title = html.escape(f"{first.spelled} · UTF-8 bytes {data} · split over {len(views)} tokens: the tokenizer "
                        "has no piece for this character, so it spells its bytes", quote=True)
    chips = "".join(_chip(start + first.start + k, v, ids[k], highlight, f"id {ids[k]}") for k, v in enumerate(views))
    return (f'<span class="xr-group" title="{title}"><span class="xr-glyph">{html.escape(first.spelled)}</span>'
            f'<span class="xr-parts">{chips}</span></span>')


def token_strip_html(tokens: list[str], token_ids, highlight: int | None = None, max_chips: int = 1024,
                     one_line_after: int = ONE_LINE_AFTER, start: int = 0) -> str:
    """HTML for the chips; every token text and tooltip is escaped. `start`: the prompt position of
    tokens[0] when the strip shows a window of a long prompt (chips keep their own positions)."""
    views = token_views(list(tokens[:max_chips]))
    ids = [int(t) for t in token_ids[:max_chips]]
    parts, pos = [], 0
    while pos < len(views):
        v = views[pos]
        end = min(v.end, len(views))
        if end - pos > 1:
            parts.append(_group(views[pos:end], ids[pos:end], highlight, start))
        else:
            parts.append(_chip(start + pos, v, ids[pos], highlight, v.label))
        pos = end
    more = len(tokens) - max_chips
    if more > 0:
        parts.append(f'<span class="xr-chip">… {more} more</span>')
    if len(tokens) <= one_line_after:
        return _STYLE + '<div class="xr-strip">' + "".join(parts) + "</div>"
    toggle = f'<details class="xr-wrap"><summary>{len(tokens)} tokens on one line: show them all</summary></details>'
    return _STYLE + toggle + '<div class="xr-strip xr-line">' + "".join(parts) + "</div>"
