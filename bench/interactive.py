"""Rows 5-6: what a user waits for after a widget touch. Temperature over cached logits (with a
forward-call counter proving the model is not run) and every page rebuilt through AppTest.
"""
from __future__ import annotations

import importlib
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model import LanguageModel
from model.analyses.sampling import probabilities
from pages.kit.plotly_chart import COMPONENT as CHART_COMPONENT

APP = Path(__file__).resolve().parents[1] / "app.py"
TEMPERATURES = (0.2, 0.5, 0.8, 1.3, 1.7, 2.5)


@dataclass
class TemperatureResult:
    """Median ms from cached logits to the serialized bars figure, and model calls seen meanwhile."""

    median_ms: float
    how: str  # which functions were timed
    model_calls: int
    cpu_ms: float = float("nan")  # median process CPU time of the same calls
    apptest_ms: float | None = None  # whole-script rerun after moving the slider in AppTest
    apptest_calls: int | None = None
    apptest_note: str = ""


@dataclass
class PageResult:
    """One page at ~256 tokens: prompt edit -> every figure, rerun with the capture cached, bytes."""

    path: str
    title: str
    edit_ms: float | None = None
    rebuild_ms: float | None = None
    bytes_sent: int | None = None
    charts: int = 0
    model_calls: int = 0  # forward passes during the cached rerun (pages that compute extra passes)
    error: str = ""


@dataclass
class PagesResult:
    n_tokens: int = 0
    pages: list[PageResult] = field(default_factory=list)
    note: str = ""


@contextmanager
def count_forwards(lm: LanguageModel) -> Iterator[list[int]]:
    """A forward pre-hook counter on lm.model: counter[0] is the number of model calls inside."""
    counter = [0]

    def hook(module, args, kwargs):
        counter[0] += 1

    handle = lm.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counter
    finally:
        handle.remove()


def _bars_fn(lm: LanguageModel) -> tuple[Callable[[np.ndarray, float], str], str]:
    """The page's own bars code if viz/next_token.py has it, else probabilities + a top-20 bar."""
    from model.core.tokens import readable_tokens

    try:
        nt = importlib.import_module("viz.next_token")
        figure = nt.next_token_figure
    except (ImportError, AttributeError):
        import plotly.graph_objects as go

        def fallback(row: np.ndarray, t: float) -> str:
            p = probabilities(row, t)  # (V,)
            top = np.argsort(-p)[:20]
            labels = readable_tokens(lm.tokenizer, top)
            return go.Figure(go.Bar(x=p[top], y=labels, orientation="h")).to_json()
        return fallback, "model.analyses.sampling.probabilities + plotly Bar of the top 20 + to_json"

    def bars(row: np.ndarray, t: float) -> str:
        fig, _ = figure(row, lambda ids: readable_tokens(lm.tokenizer, ids), n=20, temperature=t)
        return fig.to_json()
    return bars, "viz.next_token.next_token_figure (20 bars, full vocabulary) + labels + fig.to_json()"


def time_temperature(lm: LanguageModel, token_ids: list[int], repeats: int = 5) -> TemperatureResult:
    """Cached logits row (V,) -> bars figure JSON at several temperatures; counts model calls."""
    logits = lm.capture_ids(token_ids[:64]).logits  # (T, V), computed once before the clock starts
    bars, how = _bars_fn(lm)
    bars(logits[-1], 1.0)  # warm-up (imports, plotly validators)
    samples, cpu = [], []
    with count_forwards(lm) as calls:
        for _ in range(repeats):
            for t in TEMPERATURES:
                start, cpu_start = time.perf_counter(), time.process_time()
                bars(logits[-1], t)
                samples.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
    return TemperatureResult(1000 * statistics.median(samples), how, calls[0], 1000 * statistics.median(cpu))


def pages_in_app() -> list[tuple[str, str]]:
    """(path, title) of every st.Page registered in app.py, read from its source."""
    text = APP.read_text()
    return re.findall(r'st\.Page\(\s*"([^"]+)"\s*,\s*title="([^"]+)"', text)


def sent_bytes(node) -> tuple[int, int]:
    """Serialized size of every element proto under a node (what the server sends), and chart count."""
    total, charts = 0, 0
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "ByteSize"):
        total += proto.ByteSize()
        charts += int(getattr(proto, "component_name", "") == CHART_COMPONENT)
    for child in getattr(node, "children", {}).values():
        t, c = sent_bytes(child)
        total, charts = total + t, charts + c
    return total, charts


def _prompt(lm: LanguageModel, token_ids: list[int], offset: int, n: int) -> str:
    return lm.tokenizer.decode(token_ids[offset:offset + n])


def _apptest():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    if at.exception:
        raise RuntimeError(f"app start raised: {at.exception[0].message}")
    return at


def _app_model():
    """The model object the app itself cached (same process as AppTest), to hook a counter on."""
    from model.core.settings import DEFAULT_MODEL
    from pages.kit import models

    return models._load(DEFAULT_MODEL)


def _timed_run(at, prompt: str) -> float:
    """One script run with this prompt. AppTest drops the sidebar's widgets from its tree after a
    rerun under st.navigation, and the prompt would fall back to the default: set it every time."""
    at.session_state["prompt"] = prompt
    start = time.perf_counter()
    at.run()
    return 1000 * (time.perf_counter() - start)


def time_pages(lm: LanguageModel, token_ids: list[int], n: int = 256) -> PagesResult:
    """Each registered page: new prompt -> page run (capture + figures), then a cached rerun."""
    result = PagesResult(n_tokens=len(lm.encode(_prompt(lm, token_ids, 10, n), 512)))
    at = _apptest()
    app_lm = _app_model()
    for i, (path, title) in enumerate(pages_in_app()):
        page = PageResult(path, title)
        result.pages.append(page)
        try:
            at.switch_page(path).run()
            text = _prompt(lm, token_ids, 10 * (i + 1), n)
            page.edit_ms = _timed_run(at, text)
            with count_forwards(app_lm) as calls:
                page.rebuild_ms = min(_timed_run(at, text) for _ in range(3))
            page.model_calls = calls[0]
            if at.exception:
                page.error = at.exception[0].message.splitlines()[0][:120]
            page.bytes_sent, page.charts = sent_bytes(at._tree)
        except Exception as exc:  # a page another helper is still writing: report, keep going
            page.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return result


def time_temperature_apptest(result: TemperatureResult, token_ids: list[int], lm: LanguageModel) -> None:
    """Move the Next-token temperature slider in AppTest and count the app model's forward calls."""
    try:
        at = _apptest()
        text = _prompt(lm, token_ids, 0, 64)
        _timed_run(at, text)
        at.switch_page("pages/next_token.py")
        _timed_run(at, text)
        sliders = [s for s in at.slider if s.key == "temperature"]
        if not sliders:
            result.apptest_note = "no slider with key 'temperature' on pages/next_token.py"
            return
        samples = []
        with count_forwards(_app_model()) as calls:
            for t in TEMPERATURES:
                sliders = [s for s in at.slider if s.key == "temperature"]
                sliders[0].set_value(t)
                samples.append(_timed_run(at, text))
        result.apptest_ms, result.apptest_calls = statistics.median(samples), calls[0]
        if at.exception:
            result.apptest_note = at.exception[0].message.splitlines()[0][:120]
    except Exception as exc:
        result.apptest_note = f"{type(exc).__name__}: {exc}"[:160]
