"""Before / after a head ablation: the next-token probabilities side by side over the same tokens,
the tokens whose probability moved most, and how far the whole distribution moved (KL, in bits).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.analyses.sampling import probabilities, top_tokens

from .labels import TICK_FONT, escape, points, readable
from .next_token import unique_labels

_BEFORE, _AFTER = "#9aa5b5", "#d8573b"
_UP, _DOWN = "#3d6fd6", "#d8573b"  # a metric pushed up (blue) or down (red), as on the Attribution page


@dataclass(frozen=True, eq=False)
class Comparison:
    """Probabilities of some tokens before and after switching heads off (full-vocabulary softmax)."""

    ids: np.ndarray  # (M,) token ids
    before: np.ndarray  # (M,) probability with every head on
    after: np.ndarray  # (M,) probability with the chosen heads off
    kl_bits: float  # KL(before || after) over the whole vocabulary

    @property
    def change(self) -> np.ndarray:
        """(M,) after - before."""
        return self.after - self.before


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in bits; q > 0 wherever p > 0 since both are softmaxes at T > 0."""
    mask = p > 0
    return float(np.sum(p[mask] * (np.log2(p[mask]) - np.log2(np.maximum(q[mask], 1e-300)))))


def _pair(before_row: np.ndarray, after_row: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    if before_row.shape != after_row.shape:
        raise ValueError(f"logits rows differ in shape: {before_row.shape} vs {after_row.shape}")
    return probabilities(before_row, temperature), probabilities(after_row, temperature)  # (V,), (V,)


def top_tokens_compared(before_row: np.ndarray, after_row: np.ndarray, n: int = 10, temperature: float = 1.0) -> Comparison:
    """The top n tokens before, then any new entries of the top n after, in that order."""
    p, q = _pair(before_row, after_row, temperature)
    first = top_tokens(before_row, n).tolist()
    ids = np.array(first + [i for i in top_tokens(after_row, n).tolist() if i not in first], dtype=np.int64)
    return Comparison(ids=ids, before=p[ids], after=q[ids], kl_bits=_kl_bits(p, q))


def biggest_changes(before_row: np.ndarray, after_row: np.ndarray, n: int = 10, temperature: float = 1.0) -> Comparison:
    """The n tokens whose probability moved most (either way), largest move first."""
    p, q = _pair(before_row, after_row, temperature)
    moved = np.abs(q - p)  # (V,)
    ids = top_tokens(moved, max(1, n))  # (n,)
    return Comparison(ids=ids, before=p[ids], after=q[ids], kl_bits=_kl_bits(p, q))


def comparison_figure(comp: Comparison, labels: list[str], title: str = "",
                      names: tuple[str, str] = ("all heads on", "chosen heads off")) -> go.Figure:
    """Grouped horizontal bars, before (grey) and after (red) for each token; the change in percentage
    points at each red bar and in the hover.
    `names` label the two passes (heads by default; the MLP page switches neurons off)."""
    if len(labels) != len(comp.ids):
        raise ValueError(f"{len(labels)} labels for {len(comp.ids)} tokens")
    y = unique_labels(labels, comp.ids)
    custom = np.stack([comp.ids.astype(str), [points(c, 2) for c in comp.change]], axis=-1)  # (M, 2)
    hover = "%{y}<br>id %{customdata[0]}<br>p = %{x:.4f}<br>change %{customdata[1]}<extra>%{fullData.name}</extra>"
    fig = go.Figure([
        go.Bar(x=comp.before, y=y, orientation="h", name=names[0], marker_color=_BEFORE,
               customdata=custom, hovertemplate=hover),
        go.Bar(x=comp.after, y=y, orientation="h", name=names[1], marker_color=_AFTER,
               customdata=custom, hovertemplate=hover, text=[points(c) for c in comp.change],
               textposition="outside", cliponaxis=False),
    ])
    top = float(max(comp.before.max(), comp.after.max()))
    fig.update_layout(
        barmode="group", title=title or None, height=140 + 34 * len(y), bargap=0.25,
        margin=dict(l=10, r=50, t=40 if title else 10, b=10), legend=dict(orientation="h", y=1.02, yanchor="bottom"),
        xaxis=dict(title="probability", range=[0, min(1.25, top * 1.2 + 0.03)]),
        yaxis=dict(autorange="reversed", type="category", tickfont=TICK_FONT),
    )
    return readable(fig)


def change_rows(comp: Comparison, labels: list[str]) -> list[dict]:
    """A table row per token: before, after and the change, in the comparison's order."""
    return [
        {"token": t, "id": int(i), "before": float(b), "after": float(a), "change": float(a - b)}
        for t, i, b, a in zip(labels, comp.ids, comp.before, comp.after)
    ]


def head_label(layer: int, head: int) -> str:
    """How the page names a head: 'L3 H5'."""
    return f"L{layer} H{head}"


def head_effects(before_row: np.ndarray, after_rows: list[np.ndarray], temperature: float = 1.0) -> np.ndarray:
    """(H,) KL(before || after) in bits for each single-head ablation's logits row (V,)."""
    p = probabilities(before_row, temperature)  # (V,)
    return np.array([_kl_bits(p, probabilities(row, temperature)) for row in after_rows])


def scan_figure(effects: np.ndarray, layer: int, measure: str = "KL divergence (bits)") -> go.Figure:
    """One bar per head of a layer: how far switching that head off alone moves the prediction
    (`measure` names the values: KL by default, or the change of a logit difference; plain text)."""
    names = [head_label(layer, h) for h in range(len(effects))]
    what = escape(measure)
    fig = go.Figure(go.Bar(x=names, y=effects, marker_color=_AFTER, text=[f"{e:.3f}" for e in effects],
                           textposition="outside", cliponaxis=False,
                           hovertemplate=f"%{{x}}<br>{what} = %{{y:.4f}}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(type="category"),
                      yaxis=dict(title=what, rangemode="tozero"),
                      title=f"Block {layer}: each head switched off on its own")
    return readable(fig)


def metric_changes(before_row: np.ndarray, after_rows: list[np.ndarray], a: int, b: int | None) -> np.ndarray:
    """(H,) how each ablation moved the contrast metric: logit(a) − logit(b) after minus before
    (logit(a) alone when b is None). Logit differences, not probabilities: the metric patching uses."""
    def metric(row: np.ndarray) -> float:
        return float(row[a]) - (float(row[b]) if b is not None else 0.0)

    return np.array([metric(row) - metric(before_row) for row in after_rows], dtype=np.float64)


def scan_rows(layer: int, kl: np.ndarray, moved: np.ndarray, metric: str) -> list[dict]:
    """One table row per head of the scanned block: its KL and the change of the metric (plain text)."""
    return [{"head": head_label(layer, h), "block": layer, "head index": h, "KL (bits)": float(k),
             f"change of {metric}": float(m)} for h, (k, m) in enumerate(zip(kl, moved))]


def scan_pair_figure(kl: np.ndarray, moved: np.ndarray, layer: int, metric: str) -> go.Figure:
    """The block scan as two rows of bars over the same heads: KL (how far the whole prediction moved)
    above, the change of the metric (which way the answer moved) below. `metric` is plain text."""
    names = [head_label(layer, h) for h in range(len(kl))]
    what = escape(f"change of {metric}")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=["KL divergence (bits)", what])
    fig.add_trace(go.Bar(x=names, y=kl, marker_color=_AFTER, text=[f"{e:.3f}" for e in kl], textposition="outside",
                         cliponaxis=False, hovertemplate="%{x}<br>KL = %{y:.4f} bits<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=moved, marker_color=[_UP if m >= 0 else _DOWN for m in moved],
                         text=[f"{m:+.3f}" for m in moved], textposition="outside", cliponaxis=False,
                         hovertemplate=f"%{{x}}<br>{what} = %{{y:+.4f}}<extra></extra>"), row=2, col=1)
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=60, b=10), showlegend=False,
                      title=f"Block {layer}: each head switched off on its own")
    fig.update_xaxes(type="category")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    return readable(fig)
