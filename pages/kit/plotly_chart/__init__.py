"""Our plotly chart element: every page draws its figures through `plotly_chart`.

st.plotly_chart gives each new figure a new element (its id hashes the spec), then draws it two or
three times in the browser: once to mount, once more for its theme pass, once more for automargin
(bench/HISTORY.md, 2026-11-26 third and fourth passes). This element is kept across reruns under its key and calls
Plotly.react once per new figure (an unchanged figure costs nothing), with the same light-theme look
(light_template.json: the template Streamlit's theme gives a figure). Heatmap cells' plain text is
painted on one canvas over the plot instead of one SVG element per cell (0.3-0.4 s less per logit lens
draw); the modebar's own PNG and SVG buttons still export it, as real text (chart.js withImageButtons). Both
downloads are named after the figure's title (file_name). plotly.js comes from the plotly package itself, served
by Streamlit's component file route.

Files: chart.js (the browser side), light_template.json.
"""
from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components

COMPONENT = "xray_plotly_chart"
_HERE = Path(__file__).parent
_LIBRARY_DIR = Path(plotly.__file__).parent / "package_data"  # plotly.min.js: the plotly.js this plotly.py writes for
# The modebar Streamlit shows: no plotly logo, no selection tools (nothing here selects), no cloud upload.
_BASE_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "select2d", "sendChartToCloud"]}
# Charts that choose by click (the head grids, the flow graph): no zoom or pan buttons to misclick, only
# the two downloads (PNG and SVG) every chart has.
DOWNLOADS_ONLY = {"modeBarButtonsToRemove": [*_BASE_CONFIG["modeBarButtonsToRemove"], "zoom2d", "pan2d", "zoomIn2d",
                                              "zoomOut2d", "autoScale2d", "resetScale2d", "toggleSpikelines",
                                              "hoverClosestCartesian", "hoverCompareCartesian"]}
_JS = (f"const THEME = {(_HERE / 'light_template.json').read_text()};\n"
       f"const BASE_CONFIG = {json.dumps(_BASE_CONFIG)};\n" + (_HERE / "chart.js").read_text())
_mount = st.components.v2.component(COMPONENT, js=_JS, isolate_styles=False)  # plotly styles live in <head>


def figure_json(fig: go.Figure) -> str:
    """The figure as plotly JSON without its template: the browser applies the light theme's
    (light_template.json), as st.plotly_chart does, instead of receiving Streamlit's placeholders."""
    spec = fig.to_plotly_json()
    spec["layout"] = {k: v for k, v in spec.get("layout", {}).items() if k != "template"}
    return plotly.io.json.to_json_plotly(spec)


def _slug(text: str) -> str:
    """`text` without markup, in lower-case ASCII letters, digits and single dashes, cut at a word to
    60 characters ('' when nothing is left)."""
    plain = html.unescape(re.sub(r"<[^>]*>", " ", text))
    ascii_text = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > 60:
        cut = slug[:61]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:60]
    return slug


def file_name(fig: go.Figure, key: str = "", wanted: str | None = None) -> str:
    """The PNG and SVG downloads' name, without extension: `wanted`, else the figure's title, else the
    chart's key, made safe (_slug); "chart" when none leaves a letter or digit."""
    for text in (wanted or "", fig.layout.title.text or "", key):
        if slug := _slug(str(text)):
            return slug
    return "chart"


def _library_path() -> str:
    """plotly.min.js's path under the app's base URL (registering the folder is idempotent)."""
    library = components.declare_component("plotly_js", path=str(_LIBRARY_DIR))
    return f"component/{library.name}/plotly.min.js"


def _on_click(key: str, then: Callable[[list[dict]], None]) -> None:
    """Callback: the clicked points the browser reported -> `then(points)`."""
    points = (st.session_state.get(key) or {}).get("click")
    if isinstance(points, list) and points:
        then(points)


def preload() -> None:
    """Start fetching and parsing plotly.js in the browser now, drawing nothing: a first visit calls
    it while the server imports torch, so the first chart does not wait for the library."""
    _mount(key="plotly_preload", data={"figure": None, "library": _library_path()}, height=0)


def plotly_chart(fig: go.Figure, *, key: str, on_click: Callable[[list[dict]], None] | None = None,
                 config: dict | None = None, filename: str | None = None) -> None:
    """Draw `fig` full width in the current container. `on_click(points)` runs before the rerun a
    click starts; each point has x, y, customdata, curve_number and point_index. The modebar's PNG
    and SVG downloads are named `filename` (made safe), else after the figure's title (file_name)."""
    data = {"figure": figure_json(fig), "library": _library_path(), "config": config or {},
            "clicks": on_click is not None, "filename": file_name(fig, key, filename)}
    if on_click is None:
        _mount(key=key, data=data)
    else:
        _mount(key=key, data=data, on_click_change=lambda: _on_click(key, on_click))
