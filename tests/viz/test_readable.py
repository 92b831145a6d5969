"""Projector readability: every figure viz/ draws passes through labels.readable, which makes each axis,
colour bar and legend dark and at least 12 px (the light theme would draw them pale grey)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz import attention, labels

VIZ = Path(__file__).resolve().parents[2] / "viz"


def _figure_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.returns is not None
            and ast.unparse(f.returns) == "go.Figure"]


def _returns_readable(value: ast.expr, figure_functions: set[str]) -> bool:
    """`return readable(...)`, or a figure function of the same module (which itself returns readable)."""
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and (
        value.func.id == "readable" or value.func.id in figure_functions)


def test_every_figure_function_returns_a_readable_figure() -> None:
    missing = []
    for path in sorted(p for p in VIZ.glob("*.py") if p.name != "labels.py"):
        tree = ast.parse(path.read_text())
        functions = _figure_functions(tree)
        names = {f.name for f in functions}
        for function in functions:
            returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
            missing += [f"{path.name}:{r.lineno} {function.name}" for r in returns if not _returns_readable(r.value, names)]
    assert not missing, missing


def _axes(fig: go.Figure) -> list:
    scenes = [a for s in fig.select_scenes() for a in (s.xaxis, s.yaxis, s.zaxis)]
    return [*fig.select_xaxes(), *fig.select_yaxes(), *scenes]


def test_readable_darkens_and_enlarges_every_axis_and_colour_bar() -> None:
    fig = make_subplots(rows=1, cols=2)
    fig.add_trace(go.Heatmap(z=[[0, 1]]), 1, 1)
    fig.add_trace(go.Scatter(y=[1, 2], marker=dict(color=[0, 1], showscale=True)), 1, 2)
    fig.update_xaxes(tickfont_size=10)
    labels.readable(fig)
    for axis in _axes(fig):
        assert axis.tickfont.size >= 12 and axis.tickfont.color == labels.INK and axis.title.font.color == labels.INK
    assert fig.data[0].colorbar.tickfont.color == labels.INK and fig.data[1].marker.colorbar.tickfont.size >= 12
    assert fig.layout.font.color == labels.INK


def test_a_token_heatmap_draws_dark_12_px_labels(synthetic_capture) -> None:
    fig = attention.head_heatmap(synthetic_capture, 0, 0)
    assert all(a.tickfont.size >= 12 and a.tickfont.color == labels.INK for a in _axes(fig))
    assert labels.TICK_FONT["size"] >= 12 and labels.TICK_CHAR_PX >= 0.6 * labels.TICK_FONT["size"]
    assert np.isclose(labels.tick_label_px(["abcd"]), int(4 * labels.TICK_CHAR_PX) + 1)


def test_literal_text_renders_as_typed_in_markdown():
    """Markdown (as Streamlit renders it) shows literal()'s output as the text typed: every construct is
    escaped, plain sentences keep their punctuation."""
    import markdown_it

    from viz.labels import literal

    md = markdown_it.MarkdownIt("commonmark").enable("strikethrough").enable("table")
    for text in ["[x](http://e.co) **b** _i_ `c` $x^2$ <b>t</b> ~~s~~ :red[r] :material/home:",
                 "# Title\n- item\n+ item\n1. first\n2) second\n> quote", "a | b\n--|--\n1 | 2"]:
        html = md.render(literal(text))
        assert not any(tag in html for tag in ("<a", "<strong", "<em", "<code", "<b>", "<s>", "<del", "<h1", "<li",
                                                "<table")), html
    plain = "The prompt is 35 tokens long; the limit is 20 (the sidebar's). Shorten it - or not!"
    assert literal(plain) == plain
    # GitHub-flavoured markdown links a bare address by itself (checked in Chromium): those are broken up
    bare = literal("https://evil.example www.evil.com a@b.com").replace("\\", "")
    assert "https://" not in bare and "www." not in bare and "@b" not in bare
    assert bare.replace("\u200b", "") == "https://evil.example www.evil.com a@b.com"
