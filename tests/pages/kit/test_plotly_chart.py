"""Our plotly element (pages/plotly_chart): the figure the browser gets is the figure viz/ built,
minus Streamlit's placeholder template, and the browser can load plotly.js and the light theme."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import streamlit  # noqa: F401  (registers Streamlit's template as plotly's default, as in the app)

from pages.kit import plotly_chart as chart


def _figure() -> go.Figure:
    fig = go.Figure(go.Heatmap(z=np.arange(12, dtype=np.float32).reshape(3, 4), x=list("abcd"), y=list("xyz")))
    return fig.update_layout(title="who reads whom", height=300)


def test_figure_json_is_the_figure_without_its_template():
    fig = _figure()
    sent = json.loads(chart.figure_json(fig))
    full = json.loads(pio.to_json(fig, validate=False))
    assert "template" in full["layout"] and "template" not in sent["layout"]
    full["layout"].pop("template")
    assert sent == full  # every trace and layout value, arrays included, travels unchanged


def test_the_browser_gets_plotly_js_and_the_light_theme():
    assert (chart._LIBRARY_DIR / "plotly.min.js").stat().st_size > 1_000_000
    theme = json.loads((chart._HERE / "light_template.json").read_text())
    # The look st.plotly_chart gave: axes that make room for long token labels, the app's font.
    assert theme["layout"]["xaxis"]["automargin"] and theme["layout"]["yaxis"]["automargin"]
    assert "Source Sans" in theme["layout"]["font"]["family"]
    assert chart._JS.startswith("const THEME = {") and "export default function plotlyChart" in chart._JS


def _preload_app() -> None:
    from pages.kit import plotly_chart

    plotly_chart.preload()


def test_preload_asks_the_browser_for_plotly_js_and_draws_nothing():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_preload_app).run()
    (element,) = at.get("bidi_component")
    data = json.loads(element.proto.json)
    assert data["figure"] is None and data["library"].startswith("component/") and data["library"].endswith(
        "/plotly.min.js")


def test_download_names_are_safe_and_follow_the_title():
    assert chart.file_name(_figure(), "lens") == "who-reads-whom"
    marked = go.Figure().update_layout(title="<b>Top guess</b> at ·Paris &amp; <br>“Rome”: 100%/x")
    assert chart.file_name(marked, "k") == "top-guess-at-paris-rome-100-x"
    assert chart.file_name(go.Figure(), "lens_grid") == "lens-grid"  # no title: the chart's key
    assert chart.file_name(go.Figure().update_layout(title="→ ←"), "") == "chart"
    assert chart.file_name(_figure(), "k", wanted="../etc/passwd Figure 2") == "etc-passwd-figure-2"
    long = chart.file_name(go.Figure().update_layout(title="word " * 40), "k")
    assert len(long) <= 60 and long.endswith("word") and "--" not in long


def test_the_modebar_exports_png_and_svg_with_cell_text():
    # The browser side (tests/e2e/test_chart_export.py clicks them): plotly's camera replaced by our
    # pair, both exporting the figure with its lifted cell text restored.
    js = chart._JS
    assert '"toImage"' in js and 'title: "Download plot as a png"' in js and 'title: "Download plot as SVG"' in js
    assert 'downloadWithText(v, gd, "svg")' in js and 'downloadWithText(v, gd, "png")' in js
    assert 'texttemplate: "%{text}"' in js and "Plotly.downloadImage" in js


def _chart_app() -> None:
    import plotly.graph_objects as go

    from pages.kit import plotly_chart

    plotly_chart.plotly_chart(go.Figure().update_layout(title="Attention: layer 3"), key="a")
    plotly_chart.plotly_chart(go.Figure(), key="b", filename="Figure 2")


def test_each_chart_tells_the_browser_its_download_name():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_chart_app).run()
    names = [json.loads(e.proto.json)["filename"] for e in at.get("bidi_component")]
    assert names == ["attention-layer-3", "figure-2"]
