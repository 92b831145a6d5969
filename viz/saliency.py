"""Input saliency drawn: each input token's share of the target as the prompt's chips coloured by value
(blue raised it, red lowered it; every text escaped) and as bars, plus the reading in words, made from
the numbers of this prompt. Plain data in, escaped HTML or a plotly figure out."""
from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.attribution import DOWN, UP
from viz.labels import axis_labels, escape, readable

METHOD_NAMES = {"gradient": "Gradient × input", "integrated": "Integrated gradients",
                "replace": "Occlusion: replace the token", "remove": "Occlusion: remove the token"}
_STYLE = ("<style>.xr-sal{display:flex;flex-wrap:wrap;gap:4px;font-family:ui-monospace,monospace;font-size:0.9rem;"
          "line-height:1.2}.xr-sal span{border:1px solid #c9ced6;border-radius:6px;padding:3px 6px;white-space:pre}"
          ".xr-sal sub{color:inherit;opacity:0.75;font-size:0.7rem;margin-left:3px}.xr-sal .xr-target{border:2px solid #e0a800}"
          "</style>")
CHIPS = 256  # a longer reading shows its chips this many at a time (a window the page moves)


def _background(value: float, scale: float) -> str:
    """A colour from white (0) to full blue (+scale) or red (−scale)."""
    strength = min(1.0, abs(value) / scale) if scale > 0 else 0.0
    rgb = (0x21, 0x66, 0xAC) if value >= 0 else (0xB2, 0x18, 0x2B)
    mixed = (round(255 + (c - 255) * strength * 0.85) for c in rgb)
    return "#" + "".join(f"{c:02x}" for c in mixed)


def chips_html(tokens: Sequence[str], values: np.ndarray, window: tuple[int, int] | None = None) -> str:
    """The tokens up to the target's position as chips whose background shows each one's share (the
    colour scale is the largest share in either direction, over all of them); hovering shows the number.
    The last chip, where the prediction is made, is outlined. `window` (start, stop) draws only those
    positions (a long prompt)."""
    scale = float(np.max(np.abs(values))) if len(values) else 0.0
    start, stop = window if window is not None else (0, len(tokens))
    chips = []
    for pos in range(start, stop):
        token, value = tokens[pos], values[pos]
        ink = "#ffffff" if scale and abs(value) / scale > 0.6 else "#111111"
        outline = ' class="xr-target"' if pos == len(tokens) - 1 else ""
        title = html.escape(f"position {pos} · {token} · {value:+.3f}", quote=True)
        chips.append(f'<span{outline} style="background:{_background(float(value), scale)};color:{ink}" '
                     f'title="{title}">{html.escape(token)}<sub>{pos}</sub></span>')
    return _STYLE + '<div class="xr-sal">' + "".join(chips) + "</div>"


def bars_figure(tokens: Sequence[str], values: np.ndarray, method: str, metric: str, *, height: int = 380
                ) -> go.Figure:
    """One bar per token up to the target's position (blue raised the target, red lowered it);
    `metric` is plain text such as 'logit(·Paris)', escaped here."""
    fig = go.Figure(go.Bar(
        x=axis_labels(list(tokens)), y=values, marker_color=[UP if v >= 0 else DOWN for v in values],
        customdata=[escape(t) for t in tokens],
        hovertemplate="%{customdata}: %{y:+.3f}<extra></extra>"))
    fig.add_hline(y=0, line_color="#666", line_width=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), yaxis_title="share of the target",
                      title=f"{escape(METHOD_NAMES[method])}: each token's share of {escape(metric)}",
                      xaxis=dict(type="category", title="input token (position)"))
    return readable(fig)


def _quoted(token: str, value: float) -> str:
    return f"<b>{html.escape(token)}</b> ({value:+.2f})"


def reading_html(tokens: Sequence[str], values: np.ndarray, method: str, metric: str, target: float, *,
                 reference: float | None = None, delta: float | None = None, steps: int = 0,
                 neutral: str = "") -> str:
    """The reading in words, from these numbers: which token raised the target most and which lowered
    it, and how the shares add up (for integrated gradients, against the change along the path)."""
    order = np.argsort(values)
    top, bottom = int(order[-1]), int(order[0])
    text = [f"On this prompt {html.escape(metric)} is <b>{target:+.2f}</b>. "
            f"{html.escape(METHOD_NAMES[method])} says {_quoted(tokens[top], float(values[top]))} at position "
            f"{top} raised it most"]
    if values[bottom] < 0:
        text.append(f", and {_quoted(tokens[bottom], float(values[bottom]))} at position {bottom} "
                    "lowered it most")
    text.append(". ")
    total = float(values.sum())
    if method == "integrated" and reference is not None and delta is not None:
        text.append(f"Walking every token's vector after the first from {html.escape(neutral)} to its own in {steps} "
                    "steps moved "
                    f"the target from {reference:+.2f} to {target:+.2f}, a change of {target - reference:+.2f}; "
                    f"the shares add up to {total:+.2f}, off by {delta:+.3f} (the convergence delta: the error of "
                    "summing the path in steps; more steps shrink it).")
    elif method == "gradient":
        text.append(f"The shares add up to {total:+.2f}: a first-order guess from the slope at the prompt itself, "
                    "so they need not add up to the target.")
    else:
        what = f"replaced by {html.escape(neutral)}" if method == "replace" else "removed"
        text.append(f"Each share is how much the target fell when that token alone was {what} and the prompt run "
                    f"again; tokens act together, so the shares add up to {total:+.2f}, not to the target.")
    return "<p>" + "".join(text) + "</p>"
