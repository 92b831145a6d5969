"""The MLP page: the other half of every block, opened up. One position through one block's MLP
stage by stage, the neurons that fire, what one neuron writes, and neurons switched off. Widgets
and layout only; the MLP inputs come from the capture (or a recording, model/analyses/mlp.py), cached per prompt.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.attribution import direct_logit_attribution, readout
from model.analyses.mlp import (
    MlpActivations,
    MlpRecording,
    block_neurons,
    inputs_from_capture,
    mlp_parts,
    mlp_steps,
    neurons_at,
    record_mlp,
)
from model.analyses.neurons import ablated_logits, neuron_effects, neuron_vocab, neurons_key
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.contrast import Contrast
from pages.kit.plotly_chart import plotly_chart
from viz import mlp as draw
from viz.ablation import comparison_figure, top_tokens_compared

N_NEURONS = 16  # columns of the neuron views
N_CHOICES = 20  # neurons offered in the neuron picker (strongest direct effects)

EXPLANATION = """
**What the MLP does.** After attention has mixed information *between* tokens, each block's MLP
works on every token *on its own*. It normalises the token's vector, projects it up into a much
wider hidden layer (the shapes in step 1 give the widths for the loaded model), applies a
non-linear activation, and projects back down. The result is *added* to the stream.

**Neurons.** Each of the hidden numbers is a *neuron*. Its value (the activation) says how strongly
it fires for this token; its column of the down projection is the vector it writes into the stream,
scaled by that activation. So one neuron's **direct effect** on a logit is its activation times its
column read through the unembedding (with the final norm's divisor held fixed, as on the Attribution
page); all neurons' effects plus the down projection's bias add up to the block's MLP bar there.

**Gated MLPs.** Llama-style models (the default SmolLM2 among them) have *two* up projections: a *gate* goes
through the activation (SiLU) and multiplies the other (*up*). That is "SwiGLU". The product can be
negative, and then a neuron writes its column *reversed*: its "suppressed" tokens are the ones it
pushes up.

**Switching neurons off** sets their activations to zero at every position; everything else runs as
before, so the change in the prediction is what those neurons did (directly and through later blocks).
"""


def _recording(lm: LanguageModel | None) -> MlpRecording | None:
    """Every block's MLP neurons, to keep on the capture's own pass when the prompt has to run whole
    (None where an MLP cannot be opened: _activations then says why)."""
    try:
        return None if lm is None else MlpRecording(lm, range(lm.summary.n_layers))
    except XrayError:
        return None


def _activations(lm: LanguageModel, cap: Capture, recording: MlpRecording | None) -> MlpActivations:
    """Every block's MLP input for this prompt, cached per prompt: kept during the capture's pass when
    it ran just now, else computed from the capture's streams, else (a norm after the MLP) one more pass."""
    if recording is not None and recording.recorded:
        return kit.derived("mlp", kit.current_key(lm), lambda: recording.result(cap.n_tokens))
    return kit.derived("mlp", kit.current_key(lm), lambda: _inputs(lm, cap))


def _inputs(lm: LanguageModel, cap: Capture) -> MlpActivations:
    layers = range(cap.summary.n_layers)
    with st.spinner(f"Computing every block's MLP input at {cap.n_tokens:,} positions from the stream…"):
        found = inputs_from_capture(lm, cap, layers)
    if found is not None:
        return found
    with st.spinner("Running the model once more to keep every MLP's input…"):
        return record_mlp(lm, cap.token_ids.tolist(), layers)


def _block(lm: LanguageModel, acts: MlpActivations, layer: int) -> np.ndarray:
    """(T, d_mlp) block `layer`'s neurons at every position, cached per prompt and block."""
    return kit.derived("mlp_block", kit.cache_key(kit.current_key(lm), layer), lambda: block_neurons(lm, acts, layer))


def _steps(lm: LanguageModel, cap: Capture, acts: MlpActivations, layer: int, pos: int) -> None:
    st.subheader("1 · One token through the MLP, step by step")
    steps = mlp_steps(lm, cap, acts, layer, pos)
    st.caption(f"Activation of this model: **{steps.activation}**. Each chart is one stage's vector for "
               f"the token at position {pos} (x = dimension or neuron). The last stage is exactly the stream "
               f"after block {layer}.")
    if steps.stream is None:
        st.info("The norm in front of this MLP was not found among the block's modules, so the stages start "
                "at the MLP's own input.")
    plotly_chart(draw.stages_figure(steps), key="mlp_stages")


def _firing(lm: LanguageModel, cap: Capture, acts: MlpActivations, layer: int, pos: int,
            window: tuple[int, int]) -> None:
    st.subheader("2 · Neurons that fire")
    hidden = _block(lm, acts, layer)  # (T, d_mlp)
    picks = draw.top_neurons(hidden[pos], N_NEURONS)
    plotly_chart(draw.neurons_heatmap(hidden, cap.tokens, picks, layer, window), key="mlp_heat")
    st.caption(f"Columns: the {N_NEURONS} neurons of block {layer} with the largest |activation| at position {pos}; "
               f"rows: {_rows_shown(cap, window)}. Red fires positive, blue negative.")
    plotly_chart(draw.layers_figure(neurons_at(lm, acts, pos), N_NEURONS, pos), key="mlp_layers")


def _rows_shown(cap: Capture, window: tuple[int, int]) -> str:
    """Which tokens a chart's rows are: all, or a long prompt's window (the token strip's)."""
    if window == (0, cap.n_tokens):
        return "every token of the prompt"
    return (f"tokens {window[0]}–{window[1] - 1} of {cap.n_tokens:,}, the token strip's window (move it with its "
            "slider), on the whole prompt's colour scale")


def _neuron(lm: LanguageModel, cap: Capture, acts: MlpActivations, layer: int, pos: int, choice: Contrast,
            window: tuple[int, int]) -> None:
    st.subheader("3 · What a neuron writes")
    hidden = _block(lm, acts, layer)  # (T, d_mlp)
    eff = neuron_effects(lm, hidden[pos], layer, pos, readout(lm, cap, pos, choice.a, choice.b))
    bar = direct_logit_attribution(lm, cap, pos, choice.a, choice.b).mlp[layer]
    strongest = draw.top_neurons(eff.effects, N_CHOICES)
    cols = st.columns([2, 3])
    cols[0].caption(f"Neurons of block {layer} with the largest direct effect on {choice.metric}")
    cols[0].dataframe(draw.effect_rows(strongest, eff.activations, eff.effects), hide_index=True,
                      column_config={c: st.column_config.NumberColumn(format="%+.3f") for c in ("activation", "direct effect")})
    cols[0].caption(f"All {eff.effects.size:,} neurons add up to {eff.effects.sum():+.3f}, plus {eff.bias:+.3f} "
                    f"from the bias: {eff.total:+.3f}, the block's MLP bar on the Attribution page ({bar:+.3f}).")
    labels = {int(n): f"N{n}  (effect {eff.effects[n]:+.3f})" for n in strongest}
    linked = st.session_state.pop(LINKED_NEURON, None)
    if linked is not None and linked not in labels:
        st.warning(f"Neuron {linked:,} from the link is not among the {len(labels)} strongest of block {layer} at "
                   f"this position (the picker offers those): showing N{next(iter(labels))}.")
    with cols[1]:
        neuron = int(kit.picker("Neuron", labels, key="mlp_neuron", default=next(iter(labels)), persist_state="session"))
        links.page_params(neuron=str(neuron))
        st.metric(f"Direct effect on {choice.metric}", f"{eff.effects[neuron]:+.3f}",
                  help="activation × (its output column · the unembedding row(s) × final-norm weight) / the norm's divisor")
        vocab = neuron_vocab(lm, layer, neuron, k=10)
        sides = st.columns(2)
        for side, title, ids, by in ((sides[0], "Its column promotes", vocab.promoted, vocab.promoted_by),
                                     (sides[1], "Its column suppresses", vocab.suppressed, vocab.suppressed_by)):
            side.caption(title)
            side.dataframe(draw.vocab_rows(readable_tokens(lm.tokenizer, ids.tolist()), ids, by), hide_index=True)
        if eff.activations[neuron] < 0:
            st.caption("This neuron's activation is negative here, so it writes its column reversed: it pushes up "
                       "the tokens its column suppresses.")
    plotly_chart(draw.neuron_tokens_figure(cap.tokens, hidden[:, neuron], neuron, layer, window=window),
                 key="mlp_tokens")
    if window != (0, cap.n_tokens):
        st.caption(f"The cells: {_rows_shown(cap, window)}.")


LINKED_NEURON = "_mlp_linked_neuron"  # the link's neuron, until the picker has been drawn once


def _read_link() -> None:
    """A session's first visit: the neuron from the link (?neuron=1357), chosen if it is among the block's
    strongest at the linked position (the picker falls back to the strongest otherwise)."""
    if st.session_state.get("_mlp_link_read"):
        return
    st.session_state["_mlp_link_read"] = True
    raw = st.query_params.get("neuron")
    if raw is not None and raw.isdigit() and len(raw) <= 9:
        st.session_state["mlp_neuron"] = st.session_state[LINKED_NEURON] = int(raw)
    elif raw is not None:
        st.warning(f"Ignored neuron '{links.quoted(raw)}' from the link: expected a neuron's number, such as 1357.")


def _switch_off(lm: LanguageModel, cap: Capture, layer: int, pos: int, width: int, choice: Contrast) -> None:
    st.subheader("4 · Switch neurons off")
    key = f"mlp_off_{layer}"  # each block its own choice: N173 of block 0 is not N173 of block 5
    st.session_state[key] = [n for n in st.session_state.get(key, []) if n in range(width)]
    chosen = st.multiselect(f"Neurons of block {layer} to switch off (set to zero at every position)",
                            list(range(width)), key=key, format_func=lambda n: f"N{n}", persist_state="session",
                            placeholder="e.g. a neuron from the table above",
                            select_all=False)  # Enter on "N173" picks N173, not every neuron whose name holds it
    if not chosen:
        st.info("Choose one or more neurons: the bars then compare the prediction before and after.")
        return
    neurons = [(layer, n) for n in chosen]
    with st.spinner("Running the model with those neurons off…"):
        after = kit.derived("mlp_ablation", kit.cache_key(kit.current_key(lm), neurons_key(neurons)),
                            lambda: ablated_logits(lm, cap.token_ids.tolist(), neurons))
    before_row, after_row = lm.logits_at(cap, pos), lm.logits_of(after, pos)  # (V,), (V,)
    cols = st.columns(2)
    cols[0].metric(choice.metric, f"{choice.of(after_row):+.3f}", f"{choice.of(after_row) - choice.of(before_row):+.3f}",
                   help="After switching the neurons off (the change is against the normal pass).")
    comp = top_tokens_compared(before_row, after_row, 10)
    cols[1].metric("KL divergence", f"{comp.kl_bits:.3f} bits", help="How far the whole distribution moved.")
    plotly_chart(comparison_figure(comp, readable_tokens(lm.tokenizer, comp.ids.tolist()),
                                   names=("every neuron on", "chosen neurons off")), key="mlp_abl_bars")


lm, _ = kit.page("MLP: the other half of every block", capture=False)  # captured below, with the recording
kit.explain("What an MLP does, and what a neuron is", EXPLANATION)
_read_link()
recording = _recording(lm)
cap = kit.current_capture(also=recording.hooks if recording is not None else None)
if lm is None or cap is None:
    kit.stop()
window = kit.long.strip_window(cap, kit.position_of(cap))  # one slider moves the strip and the per-token charts
kit.token_strip(cap, highlight=kit.position_of(cap), window=window)
cols = st.columns([1, 1, 2])
pos = kit.select_position(cap, "Position", where=cols[0])
layer = kit.select_layer(cap, "Block", where=cols[1])
choice = kit.contrast_token(lm, cap, pos, where=cols[2])
try:
    acts = _activations(lm, cap, recording)
    _steps(lm, cap, acts, layer, pos)
    _firing(lm, cap, acts, layer, pos, window)
    _neuron(lm, cap, acts, layer, pos, choice, window)
    _switch_off(lm, cap, layer, pos, mlp_parts(lm, layer).width, choice)
except XrayError as exc:
    st.info(str(exc))
