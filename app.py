"""Transformer X-ray: the shell. Navigation, the shared sidebar, then the chosen page runs."""
from __future__ import annotations

import logging
import os

import streamlit as st

logging.basicConfig(level=logging.INFO)


def _secrets_to_env() -> None:
    """Operator settings may live in .streamlit/secrets.toml; environment variables win."""
    try:
        items = dict(st.secrets)
    except Exception:  # no secrets file: nothing to copy
        return
    for key, value in items.items():
        if key.startswith("XRAY_"):
            os.environ.setdefault(key, str(value))


_secrets_to_env()  # before pages.server reads the settings

from pages import links, models, shared_keys, sidebar  # noqa: E402

PAGES = {
    "The lesson": [
        st.Page("pages/overview.py", title="Start here", icon=":material/explore:", default=True),
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
        st.Page("pages/attention.py", title="Attention", icon=":material/visibility:", url_path="attention"),
        st.Page("pages/head_pipeline.py", title="Attention step by step", icon=":material/stairs:", url_path="head_pipeline"),
        st.Page("pages/next_token.py", title="Next token", icon=":material/casino:", url_path="next_token"),
        st.Page("pages/generate.py", title="Generate", icon=":material/edit_note:", url_path="generate"),
    ],
    "Go deeper": [
        st.Page("pages/meaning.py", title="Meaning", icon=":material/translate:", url_path="meaning"),
        st.Page("pages/logit_lens.py", title="Logit lens", icon=":material/layers:", url_path="logit_lens"),
        st.Page("pages/attribution.py", title="Attribution", icon=":material/bar_chart:", url_path="attribution"),
        st.Page("pages/ablation.py", title="Ablation", icon=":material/block:", url_path="ablation"),
    ],
}

st.set_page_config(page_title="Transformer X-ray", page_icon=":material/biotech:", layout="wide")
page = st.navigation(PAGES)
shared_keys.carry()
notices = links.read_url_once()
sidebar.render()
lm = models.current_model()
if lm is not None:
    notices += links.apply_geometry(lm.summary)
for notice in notices:
    st.warning(notice)
page.run()
sidebar.render_footer()
links.write_url()
