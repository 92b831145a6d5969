"""Export for papers: every chart's modebar downloads it as SVG as well as PNG (pages/kit/plotly_chart).
The logit lens's cell texts are painted on a canvas on screen; the SVG must carry them as real <text>
elements, and the PNG button must still give a PNG."""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xray_app import draw_every_chart, exception_texts, open_tab

pytestmark = pytest.mark.e2e
SVG_BUTTON = '.modebar-btn[data-title="Download plot as SVG"]'
PNG_BUTTON = '.modebar-btn[data-title="Download plot as a png"]'
SAFE_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\.(svg|png)$")
# Every heatmap cell text the figure shows (plotly keeps them in the trace; the page paints them).
CELL_TEXTS_JS = """(div) => div.data.filter((t) => t.type === 'heatmap' && Array.isArray(t.text))
    .flatMap((t) => t.text.flat()).filter((s) => typeof s === 'string' && s !== '')"""


def download(page, chart, button: str):
    """Hover the chart (its modebar shows), click `button`, return (suggested name, bytes)."""
    chart.hover()
    with page.expect_download(timeout=60_000) as info:
        chart.locator(button).click()
    got = info.value
    return got.suggested_filename, Path(got.path()).read_bytes()


def test_lens_downloads_as_svg_with_cell_text_and_still_as_png(app):
    url, browser = app
    page = open_tab(browser, f"{url}/logit_lens?prompt=The+capital+of+France+is")
    page.locator(".xray-chart").first.wait_for(timeout=120_000)  # a first visit may settle before the page
    page.wait_for_function("() => document.querySelectorAll('.xray-chart').length >= 2", timeout=120_000)
    draw_every_chart(page)
    assert not exception_texts(page)
    charts = page.locator(".xray-chart.js-plotly-plot")
    assert charts.count() >= 2  # the lens heatmap and the tracked-token lines
    for i in range(charts.count()):  # every chart: our PNG and SVG buttons, not plotly's own camera
        assert charts.nth(i).locator(".modebar-btn[data-title^='Download plot']").count() == 2
        assert charts.nth(i).locator(SVG_BUTTON).count() == 1 and charts.nth(i).locator(PNG_BUTTON).count() == 1

    lens = charts.first
    lens.scroll_into_view_if_needed()
    lens.locator("canvas.xray-cell-text").wait_for(state="attached", timeout=30_000)
    assert lens.locator("g.heatmap-label").count() == 0  # on screen the texts are on the canvas
    cells = {html.unescape(t) for t in lens.evaluate(CELL_TEXTS_JS)}
    assert "·Paris" in cells, sorted(cells)[:20]  # the last layers' guess at "is"

    name, svg = download(page, lens, SVG_BUTTON)
    assert SAFE_NAME.match(name) and name.startswith("top-next-token-guess") and name.endswith(".svg"), name
    text = svg.decode("utf-8")
    assert text.lstrip().startswith("<svg"), text[:200]
    root = ET.fromstring(text)  # a well-formed SVG document
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {"".join(e.itertext()) for e in root.iter("{http://www.w3.org/2000/svg}text")}
    assert "·Paris" in texts
    missing = cells - texts
    assert not missing, f"{len(missing)} of {len(cells)} cell texts not in the SVG, e.g. {sorted(missing)[:10]}"

    png_name, png = download(page, lens, PNG_BUTTON)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert SAFE_NAME.match(png_name) and png_name == name[:-len(".svg")] + ".png"

    lines = charts.nth(1)  # a chart without lifted text exports as SVG too
    lines.scroll_into_view_if_needed()
    name, svg = download(page, lines, SVG_BUTTON)
    assert SAFE_NAME.match(name) and svg.decode("utf-8").lstrip().startswith("<svg")
    assert not exception_texts(page)
    page.close()
