"""Transformer X-ray: the shell. Thread settings, navigation, a first paint, the shared sidebar, then
the chosen page runs. Nothing heavy (torch, transformers) is imported before the page has painted."""
from __future__ import annotations

from model.engine.threads import configure

# Before anything imports torch (the first paint comes first, the model after it): the browser, the
# server and the capture share a student's few cores, and spinning OpenMP workers, one per core,
# made a 41-token capture ~3x slower in the app than in bench/ (bench/HISTORY.md, 2026-11-26 threads).
configure()  # passive OpenMP waiting, all cores but one (one on 2 cores); an operator's OMP_* wins

import gc  # noqa: E402
import logging  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import streamlit as st  # noqa: E402
from streamlit.delta_generator import DeltaGenerator  # noqa: E402

from pages.kit import common  # noqa: E402, F401  (first: leaves Streamlit's legacy pages/ mode on a fresh server)
from pages.kit import plotly_chart as plotly_js  # noqa: E402  (light: Streamlit has imported plotly already)

logging.basicConfig(level=logging.INFO)

PAGES = {
    "Guided": [
        st.Page("pages/lesson.py", title="Lesson", icon=":material/school:", url_path="lesson"),
    ],
    "The lesson": [
        st.Page("pages/overview.py", title="Start here", icon=":material/explore:", default=True),
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
        st.Page("pages/attention.py", title="Attention", icon=":material/visibility:", url_path="attention"),
        st.Page("pages/head_pipeline.py", title="Attention step by step", icon=":material/stairs:",
                url_path="head_pipeline"),
        st.Page("pages/mlp.py", title="MLP", icon=":material/hub:", url_path="mlp"),
        st.Page("pages/next_token.py", title="Next token", icon=":material/casino:", url_path="next_token"),
        st.Page("pages/generate.py", title="Generate", icon=":material/edit_note:", url_path="generate"),
    ],
    "Go deeper": [
        st.Page("pages/meaning.py", title="Meaning", icon=":material/translate:", url_path="meaning"),
        st.Page("pages/steering.py", title="Steering", icon=":material/explore_nearby:", url_path="steering"),
        st.Page("pages/logit_lens.py", title="Logit lens", icon=":material/layers:", url_path="logit_lens"),
        st.Page("pages/attribution.py", title="Attribution", icon=":material/bar_chart:", url_path="attribution"),
        st.Page("pages/saliency.py", title="Input saliency", icon=":material/highlight:", url_path="saliency"),
        st.Page("pages/ablation.py", title="Ablation", icon=":material/block:", url_path="ablation"),
        st.Page("pages/flow.py", title="Information flow", icon=":material/account_tree:", url_path="flow"),
        st.Page("pages/patching.py", title="Patching", icon=":material/swap_horiz:", url_path="patching"),
        st.Page("pages/prompt_sets.py", title="Prompt sets", icon=":material/dataset:", url_path="prompt_sets"),
    ],
}


def _draw_navigation() -> None:
    """Our own sidebar navigation: Streamlit's is hidden (client.showSidebarNavigation = false), so a
    fresh server's legacy pages/ list of module names can never show."""
    with st.sidebar:
        for section, pages in PAGES.items():
            st.caption(section)
            for page in pages:
                st.page_link(page)
        st.divider()


@st.cache_resource(show_spinner=False)
def _process() -> dict[str, bool]:
    """Facts about this server process shared by every session: has a model been loaded yet?"""
    return {"model_loaded": False}


# Streamlit's running-man status icon, spinners and the fade of stale elements animate for as long as
# the model runs; a software-rendered browser repaints them on the same cores the capture needs. With
# them still, settle times at ~40 tokens fell from 1.1-2.7 s to 0.7-1.4 s (bench/HISTORY.md, 2026-11-26
# profiling the pages). The indicators stay on screen; they only stop moving. The main column also starts
# higher (Streamlit's 6rem top padding), so a lesson step's figure fits a 1280x720 projector without scrolling.
_PAGE_STYLE = """<style>
*, *::before, *::after { animation-duration: 0s !important; animation-delay: 0s !important;
  animation-iteration-count: 1 !important; transition: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
</style>"""


def _first_paint(page: st.Page) -> DeltaGenerator | None:
    """A fresh process: show the page's title and a progress line before torch and the model load
    (seconds). Returns the placeholder to clear, or None once a model has loaded in this process."""
    if _process()["model_loaded"]:
        return None
    box = st.empty()
    with box.container():
        st.title(page.title)
        st.progress(0.05, text="Starting the model (first visit after a server start): loading PyTorch…")
        plotly_js.preload()  # the browser loads plotly.js while the server imports torch
    return box


@contextmanager
def _collector_paused(fresh: bool) -> Iterator[None]:
    """A fresh process imports torch and transformers and loads the model with Python's cyclic garbage
    collector paused, then moves every object alive out of its reach (gc.freeze): the libraries' and the
    model's ~650k objects live as long as the process. Each full collection during the imports walked
    everything imported so far (first full page 10.7 -> 9.3 s, bench/HISTORY.md, 2026-11-26 eighth pass),
    and each one later walked it again, several times a minute (~0.3 s of server CPU). Reference counting
    frees memory as before; the ~6 MB of cycles left by the imports stay (a collection to free them walks
    775k objects: 0.5 s)."""
    if not fresh:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


st.set_page_config(page_title="Transformer X-ray", page_icon=":material/biotech:", layout="wide")
page = st.navigation(PAGES, position="hidden")
st.html(_PAGE_STYLE)
_draw_navigation()
first_paint = _first_paint(page)

with _collector_paused(first_paint is not None):
    from pages.kit import links, models, session, shared_keys, sidebar  # noqa: E402  (after the first paint: the model floor)

    shared_keys.carry()
    notices = links.read_url_once()
    sidebar.render()
    shared_keys.follow_prompt(session.prompt())
    if first_paint is not None:
        with first_paint.container():
            st.title(page.title)
            st.progress(0.5, text="Loading the embedded model…")
    lm = models.current_model()
    sidebar.render_limit(lm)
    sidebar.render_chat(lm)
if first_paint is not None:
    first_paint.empty()
    _process()["model_loaded"] = lm is not None
if lm is not None:
    notices += links.apply_geometry(lm.summary)
for notice in notices:
    st.warning(notice)
links.clear_page_params()
sidebar.footer_for(lm)
try:
    page.run()
    sidebar.render_footer()
finally:  # also when a page fails: the link keeps the prompt typed just before (a page that stops: kit.stop)
    links.write_url()
