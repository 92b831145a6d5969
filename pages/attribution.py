"""Attribution: which blocks push one token's logit up or down, directly. Widgets and layout only;
the split is computed in model/attribution.py."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.attribution import direct_logit_attribution
from model.facts import ModelFacts
from model.sampling import probabilities, top_tokens
from model.tokens import readable_tokens
from pages import kit
from viz import attribution as draw
from viz import model_text

N_CHOICES = 10


def _token(lm: LanguageModel, cap: Capture, pos: int) -> tuple[int, str]:
    """A token from the top-10 at this position; the top prediction unless the user picks another."""
    p = probabilities(cap.logits[pos], 1.0)
    ids = [int(i) for i in top_tokens(p, N_CHOICES)]
    names = readable_tokens(lm.tokenizer, ids)
    if st.session_state.get("attr_token") not in ids:
        st.session_state["attr_token"] = ids[0]
    chosen = st.selectbox("Token whose logit to split", ids, key="attr_token",
                          format_func=lambda i: f"{names[ids.index(i)]}  ({p[i]:.1%})")
    return chosen, names[ids.index(chosen)]


def _tables(attr) -> None:
    cols = st.columns(2)
    cols[0].caption("The shares add up")
    cols[0].dataframe(draw.summary_rows(attr), hide_index=True)
    cols[1].caption("Biggest pushes")
    cols[1].dataframe(draw.top_contributors(attr, 6), hide_index=True)


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
        "these bars."
    )


st.title("Attribution: which blocks push the prediction")
cap = kit.current_capture()
lm = kit.current_model()
if cap is not None and lm is not None:
    kit.token_strip(cap, highlight=kit.position_of(cap))
    cols = st.columns(2)
    pos = kit.select_position(cap, "Position", where=cols[0])
    with cols[1]:
        token_id, name = _token(lm, cap, pos)
    try:
        attr = direct_logit_attribution(lm, cap, pos, token_id)
    except XrayError as exc:
        st.info(str(exc))
    else:
        st.plotly_chart(draw.attribution_figure(attr, name), key="attr_bars")
        norm = {"rms": "RMS", "layer": "standard deviation", "none": "1 (no final norm)"}[attr.norm_kind]
        st.caption(f"Linearised at this position: the final norm's divisor ({norm} of the final stream = "
                   f"{attr.scale:.3f}) is held fixed, so each part's share is "
                   "(unembedding row × norm weight) · part / divisor" +
                   (", with each part's mean removed first (LayerNorm)." if attr.norm_kind == "layer" else "."))
        if abs(attr.total - attr.logit) > 1e-2 * max(1.0, abs(attr.logit)):
            st.warning("The shares do not add up to the model's logit here: this model's blocks are not "
                       "plain residual additions, so read the bars as approximate.")
        _tables(attr)
if lm is not None:
    kit.explain("What direct logit attribution measures", explanation(lm.facts))
