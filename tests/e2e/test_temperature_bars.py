"""The Next-token bars computed in the browser: a link's temperature opens them, every number the
browser draws matches model.analyses.sampling in Python, and arrow keys redraw them without the server."""
from __future__ import annotations

import pytest

from model.analyses.sampling import entropy_bits, probabilities
from viz.labels import percent
from viz.next_token import next_token_bars

from xray_app import exception_texts, open_tab, settle

pytestmark = pytest.mark.e2e
PROMPT = "The capital of France is"
SLIDER = '.xr-temperature input[type="range"]'


def shown(page) -> dict[str, list[str]]:
    """What the browser draws: the metric values and every bar's label and percentage."""
    texts = lambda sel: [t.strip() for t in page.locator(sel).all_inner_texts()]  # noqa: E731
    return {"metrics": texts(".xr-metric-value"), "labels": texts(".xr-label"), "values": texts(".xr-value")}


def expected(row, t: float) -> dict[str, list[str]]:
    bars = next_token_bars(row, 20, t)
    return {"metrics": [f"{bars.entropy:.2f} bits", percent(bars.probs[0]), percent(bars.rest)],
            "values": [percent(p) for p in bars.probs] + [percent(bars.rest)]}


def test_link_temperature_opens_exact_bars_and_keys_redraw_them(app, default_lm):
    url, browser = app
    row = default_lm.capture(PROMPT).logits[-1]  # (V,) the same logits the app computes
    page = open_tab(browser, f"{url}/next_token?prompt=The+capital+of+France+is&temperature=0.33")  # a fresh session
    assert not exception_texts(page)
    assert page.locator(SLIDER).input_value() == "0.33"  # off the 0.05 grid, and not snapped to it
    first = shown(page)
    assert first["labels"][0] == "·Paris" and first["labels"][-1] == "all other tokens"
    want = expected(row, 0.33)
    assert first["metrics"] == want["metrics"] and first["values"] == want["values"]
    assert entropy_bits(probabilities(row, 0.33)) < entropy_bits(probabilities(row, 1.0))

    page.locator(SLIDER).press("Home")  # T = 0: greedy, no server needed to redraw
    assert shown(page)["metrics"] == ["0.00 bits", "100.0%", "0"]
    page.locator(SLIDER).press("End")  # T = 2: the hottest
    assert shown(page)["metrics"] == expected(row, 2.0)["metrics"]
    page.wait_for_function("() => new URLSearchParams(location.search).get('temperature') === '2.0'",
                           timeout=30_000)
    settle(page)
    assert shown(page)["values"] == expected(row, 2.0)["values"] and not exception_texts(page)
    page.close()
