"""Long prompts (600 tokens, past viz.attention.LONG): the Attention page draws a pooled overview and a
window of exact weights, equal to the head's own rows; Information flow says what it will cost before
it runs; the token strip shows a window. No page reads every head's whole pattern: the captures these
tests hand the pages answer head/rows/pooled only, and refuse to be read as the (L, H, T, T) array."""
from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from apptest_session import open_app_page
from page_charts import figures
from streamlit.testing.v1 import AppTest

from model.core.patterns import Patterns
from model.core.settings import settings
from model.engine.capture_cache import CaptureCache
from viz import attention as va

TEXT = " ".join(["The spy was a mole inside the agency. In the garden, a mole dug a tunnel."] * 30)


class StrictPatterns(Patterns):
    """A capture's attention that answers head/rows/pooled only: read whole, indexed or a layer at a
    time, it fails the test."""

    def __array__(self, *args, **kwargs):
        raise AssertionError("a page read every head's whole pattern")

    def __getitem__(self, index):
        raise AssertionError(f"a page indexed the array instead of head/rows/pooled: attention[{index!r}]")

    def layer(self, layer: int):
        raise AssertionError(f"a page read every head of layer {layer} at once")


@pytest.fixture
def captured(monkeypatch) -> list:
    """Every capture a page gets from the shared cache, its attention made strict; the last one kept."""
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "1024")
    settings.cache_clear()
    seen: list = []
    real = CaptureCache.get_or_extend

    def strict(self, *args, **kwargs):
        cap = real(self, *args, **kwargs)
        if isinstance(cap.attention, StrictPatterns):
            return cap
        strict_cap = copy.copy(cap)
        kept = cap.attention  # its own queries and keys (or whole array): nothing is materialized here
        object.__setattr__(strict_cap, "attention", StrictPatterns(kept.queries, kept.keys, kept.recipes, full=kept.full))
        seen.append(strict_cap)
        return strict_cap

    monkeypatch.setattr(CaptureCache, "get_or_extend", strict)
    return seen


def _z(trace: dict) -> np.ndarray:
    """A heatmap's z from the chart's JSON: plotly's typed {'dtype', 'bdata', 'shape'} form, or lists."""
    z = trace["z"]
    if isinstance(z, dict):
        shape = tuple(int(n) for n in z["shape"].split(","))
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape).astype(float)
    return np.array(z, dtype=float)


def _open(page: str) -> AppTest:
    at = open_app_page(page, prompt=TEXT)
    assert not at.exception, at.exception
    return at


def test_attention_draws_an_overview_and_an_exact_window(captured) -> None:
    at = _open("pages/attention.py")
    cap = captured[-1]
    T = cap.n_tokens
    assert T > va.LONG
    grid, overview, window = figures(at)
    assert grid["data"][0]["type"] == "image"
    assert overview["data"][0]["name"] == "overview" and _z(overview["data"][0]).shape == (va.OVERVIEW_BINS,) * 2
    q0 = k0 = T - va.WINDOW  # the default window: the end of the diagonal
    expected = cap.attention.head(0, 0)[q0:T, k0:T]
    drawn = _z(window["data"][0])
    below = np.tril(np.ones_like(expected, dtype=bool))
    assert np.allclose(drawn[below], expected[below], atol=1e-6) and np.isnan(drawn[~below]).all()
    at.number_input(key="attention_q0").set_value(100).run()
    at.number_input(key="attention_k0").set_value(40).run()
    drawn = _z(figures(at)[2]["data"][0])
    expected = cap.attention.head(0, 0)[100:100 + va.WINDOW, 40:40 + va.WINDOW]
    assert np.allclose(np.nan_to_num(drawn), expected, atol=1e-6)
    assert any("first 256" in c.value for c in at.caption)  # the head scores read over the prompt's start


def test_attention_compare_and_table_read_windows(captured) -> None:
    at = _open("pages/attention.py")
    at.session_state["attention_view"] = "Compare two heads"
    at.run()
    assert not at.exception and at.metric[0].value.endswith("bits")
    assert any("averaged over query rows" in c.value for c in at.caption)
    at.session_state["attention_view"] = "All heads (table)"
    at.run()
    assert not at.exception and len(at.dataframe) == 1


def test_flow_states_its_cost_and_waits(captured) -> None:
    at = _open("pages/flow.py")
    notice = " ".join(i.value for i in at.info)
    assert f"{captured[-1].n_tokens:,} tokens" in notice and "about" in notice and " s on this machine" in notice
    assert not figures(at) and at.button(key="flow_build")


@pytest.mark.slow
def test_flow_builds_an_exact_graph_up_to_a_position(captured, default_lm) -> None:
    """The cheaper choice: the graph of the tokens up to position 40 equals the graph of those tokens
    captured on their own (no position sees the tokens after it), and its positions end there."""
    from model.analyses.flow import flow_graph

    at = _open("pages/flow.py")
    at.number_input(key="flow_window_end").set_value(40)
    at.button(key="flow_build_window").click()
    at.run()
    assert not at.exception and figures(at)
    assert any("tokens 0 to 40 of" in c.value for c in at.caption)
    assert at.selectbox(key="position").options[-1].endswith("(40) · last")
    own = default_lm.capture_ids(captured[-1].token_ids[:41].tolist())
    built = at.session_state["_flow_built"]
    assert list(built.values()) == [41]
    edges = int(at.metric[1].value.replace(",", ""))
    from model.analyses.flow_graph import DEFAULT_THRESHOLD, flow_paths
    assert edges == len(flow_paths(flow_graph(default_lm, own), 40, DEFAULT_THRESHOLD).edges)
    at.run()  # a second run keeps the choice: no offer, the same graph
    assert not at.info and figures(at)
    at.slider(key="flow_threshold").set_value(0.07).run()
    at.button(key="flow_rewindow").click().run()  # the window can be chosen again, the cost said again
    assert not at.exception and at.button(key="flow_build_window") and not figures(at)
    assert at.query_params["threshold"] in ("0.07", ["0.07"])  # kept in the link while no slider is drawn
    at.number_input(key="flow_window_end").set_value(20)
    at.button(key="flow_build_window").click().run()
    assert any("tokens 0 to 20 of" in c.value for c in at.caption) and not at.info


def test_token_strip_shows_a_window(captured) -> None:
    at = _open("pages/next_token.py")
    assert at.slider(key="strip_start").max == captured[-1].n_tokens - va.LONG
    strip = " ".join(h.proto.body for h in at.get("html"))
    assert strip.count('class="xr-chip') <= va.LONG + 1
    assert json.dumps(strip)  # text, escaped


def test_patching_waits_for_its_button_and_is_not_priced_by_the_sidebar_prompt(captured) -> None:
    """The sidebar's long capture is no yardstick for the page's own short, batched runs (it priced
    them ~10x too high): the button names the runs, and a price comes only from a run of its own."""
    at = _open("pages/patching.py")
    label = at.button(key="patch_run").label
    assert "patched runs)" in label and "about" not in label
    assert not at.get("progress")  # nothing runs before the click


@pytest.mark.parametrize("page", ["pages/lesson.py?step=6", "pages/lesson.py?step=8", "pages/head_pipeline.py",
                                  "pages/logit_lens.py"])
def test_other_head_pages_draw_without_every_head(captured, page) -> None:
    path, _, step = page.partition("?step=")
    at = open_app_page(path, prompt=TEXT, **({"step": step} if step else {}))
    assert not at.exception, at.exception
    assert figures(at)


def _registered_pages() -> list[str]:
    """Every page app.py registers (pages/<name>.py), read from its source: importing app.py would run it."""
    source = (Path(__file__).parents[2] / "app.py").read_text()
    return re.findall(r'st\.Page\("(pages/[a-z_]+\.py)"', source)


@pytest.mark.parametrize("page", _registered_pages())
def test_every_page_opens_on_a_long_prompt_reading_rows_only(captured, page) -> None:
    """Attribution once read a whole layer of patterns for one row: past ~2,500 tokens a traceback."""
    at = open_app_page(page, prompt=TEXT)
    assert not at.exception, at.exception
    assert any(cap.attention.full is None for cap in captured)  # the long prompt, its patterns on demand


def test_step_by_step_says_its_weights_are_computed(captured) -> None:
    at = open_app_page("pages/head_pipeline.py", prompt=TEXT)
    assert not at.exception, at.exception
    assert any("softmax of these scores" in c.value for c in at.caption)


def test_step_by_step_window_then_a_short_prompt_then_long_again(captured) -> None:
    """The window moved on a long prompt, then a short prompt (no window, the model's own weights), then
    a long one again: each run draws its own prompt's rows and nothing throws."""
    at = open_app_page("pages/head_pipeline.py", prompt=TEXT)
    at.slider(key="pipe_window").set_value(100).run()
    assert not at.exception, at.exception
    assert all(fig["data"][0]["y"][0].endswith("(pos 100)") for fig in figures(at)[:4])  # the window starts at 100
    at.sidebar.text_area(key="prompt").set_value("The cat sat on the mat and the cat").run()
    assert not at.exception, at.exception
    assert "pipe_window" not in [s.key for s in at.slider]
    assert not any("softmax of these scores" in c.value for c in at.caption)
    at.sidebar.text_area(key="prompt").set_value(TEXT[: len(TEXT) * 2 // 3]).run()
    assert not at.exception, at.exception
    assert any("softmax of these scores" in c.value for c in at.caption)
