"""Attribution: which blocks push one token's logit up or down, directly. Widgets and layout only;
the split is computed in model/analyses/attribution.py."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.attribution import direct_logit_attribution, readout
from model.analyses.head_attribution import head_attribution, head_outputs
from model.core.description import ModelFacts
from pages import kit
from pages.kit.contrast import Contrast
from pages.kit.plotly_chart import plotly_chart
from viz import attribution as draw
from viz import model_text
from viz.export import file_name, grid_rows, rows_csv
from viz.head_attribution import head_heatmap, top_head_rows

N_TOP_HEADS = 6


def _download(where, label: str, text: str, kind: str, prompt: str, key: str) -> None:
    """A CSV download of one table; the click does not rerun the page (on_click="ignore")."""
    where.download_button(label, text, file_name=file_name(prompt, kind, "csv"), mime="text/csv", key=key,
                          on_click="ignore")


def _tables(attr, prompt: str, pos: int) -> None:
    cols = st.columns(2)
    cols[0].caption("The shares add up")
    cols[0].dataframe(draw.summary_rows(attr), hide_index=True)
    _download(cols[0], "Download the shares (CSV)", rows_csv(draw.summary_rows(attr)),
              f"attribution_shares_pos{pos}", prompt, "attr_shares_csv")
    cols[1].caption("Biggest pushes")
    cols[1].dataframe(draw.top_contributors(attr, 6), hide_index=True)
    every = draw.top_contributors(attr, 1 + 2 * len(attr.attn))  # the file holds every part, strongest first
    _download(cols[1], "Download every part (CSV)", rows_csv(every), f"attribution_parts_pos{pos}", prompt,
              "attr_parts_csv")


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; what the final norm divides by is this model's."""
    embedding = "embedding (with its position vector)" if facts.positions == "learned" else "embedding"
    held = ("Each share is the part's dot product with the token's unembedding row." if facts.norm == "none" else
            "We hold that divisor fixed at its real value for this position; then each share is the "
            "part's dot product with the token's unembedding row (times the norm's weights), over the divisor.")
    return (
        f"The last vector of the stream is a **sum**: the token's {embedding}, plus what the attention of "
        "every block added, plus what every block's MLP added. The logit of a token is (almost) a linear "
        "function of that vector, so it splits into one share per part.\n\n"
        f"{model_text.norm_step(facts)} {held} The shares add up to the model's logit.\n\n"
        "Blue bars push the chosen token up, red bars push it down. This is the **direct** effect only: a "
        "block can also matter by changing what *later* blocks do, and that indirect effect is not in "
        "these bars.\n\n"
        "**Why A and not B?** Pick a rival token B and every bar becomes a share of logit(A) − logit(B): the "
        "parts that tell the two apart. Parts that push both tokens alike (e.g. anything that just makes names "
        "likely) cancel out."
    )


def _open_head(layer: int, head: int) -> None:
    """Open a head on the Attention page (the shared layer and head carry over)."""
    st.session_state["layer"], st.session_state["head"] = layer, head
    kit.switch_page("pages/attention.py")


def _heads(lm: LanguageModel, cap: Capture, pos: int, choice: Contrast) -> None:
    """The attention bars split by head, and the strongest heads with a button to open each one."""
    st.subheader("Split by head")
    with st.spinner("Splitting each block's attention output by head…"):
        z = kit.derived("head_outputs", kit.cache_key(kit.current_key(lm), pos), lambda: head_outputs(lm, cap, pos))
    heads = head_attribution(lm, z, pos, readout(lm, cap, pos, choice.a, choice.b))
    plotly_chart(head_heatmap(heads, choice.metric), key="attr_heads")
    st.caption("Each block's attention output is the sum of its heads' writes (the output projection reads the heads "
               "side by side), so a block's heads plus its projection bias add up exactly to its attention bar above.")
    st.dataframe(top_head_rows(heads, N_TOP_HEADS), hide_index=True)
    L, H = heads.heads.shape
    every = grid_rows({"share": heads.heads}, [f"block {i}" for i in range(L)], [f"head {h}" for h in range(H)],
                      names=("block", "head"))  # all L x H heads, not only the strongest shown
    _download(st, "Download every head's share (CSV)", rows_csv(every), f"attribution_heads_pos{pos}", cap.prompt,
              "attr_heads_csv")
    cols = st.columns(N_TOP_HEADS)
    for col, (layer, head, value) in zip(cols, heads.top(N_TOP_HEADS)):
        if col.button(f"L{layer} H{head} ({value:+.2f})", key=f"attr_open_{layer}_{head}",
                      help="Open this head on the Attention page"):
            _open_head(layer, head)


lm, cap = kit.page("Attribution: which blocks push the prediction")
if cap is not None and lm is not None:
    kit.token_strip(cap, highlight=kit.position_of(cap))
    cols = st.columns([1, 2])
    pos = kit.select_position(cap, "Position", where=cols[0])
    choice = kit.contrast_token(lm, cap, pos, where=cols[1], label_a="Token whose logit to split")
    try:
        attr = direct_logit_attribution(lm, cap, pos, choice.a, choice.b)
    except XrayError as exc:
        st.info(str(exc))
    else:
        plotly_chart(draw.attribution_figure(attr, choice.a_name, versus_text=choice.b_name or None),
                     key="attr_bars")
        norm = {"rms": "RMS", "layer": "standard deviation", "none": "1 (no final norm)"}[attr.norm_kind]
        st.caption(f"Linearised at this position: the final norm's divisor ({norm} of the final stream = "
                   f"{attr.scale:.3f}) is held fixed, so each part's share is "
                   "(unembedding row × norm weight) · part / divisor" +
                   (", with each part's mean removed first (LayerNorm)." if attr.norm_kind == "layer" else "."))
        if abs(attr.total - attr.logit) > 1e-2 * max(1.0, abs(attr.logit)):
            st.warning("The shares do not add up to the model's logit here: this model's blocks are not "
                       "plain residual additions, so read the bars as approximate.")
        _tables(attr, cap.prompt, pos)
        _heads(lm, cap, pos, choice)
if lm is not None:
    kit.explain("What direct logit attribution measures", explanation(lm.facts))
