"""Steering: add a direction to the residual stream at one block and compare the default and the steered
continuation of the sidebar's prompt. The whole setup rides in the link, so a shared link reproduces
the same texts. Widgets and layout only: the math is in model/analyses/steering.py."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses import steering as steer
from model.analyses.generation import MAX_STEPS, Decoding
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.plotly_chart import plotly_chart
from pages.kit.shared_keys import TEMPERATURE_RANGE
from viz import steering as draw
from viz.labels import literal, short

SOURCES = {
    "actadd": "Two prompts (ActAdd)",
    "caa": "Two lists of prompts (contrastive)",
    "arithmetic": "Word arithmetic (Meaning page)",
    "neuron": "One MLP neuron's output",
    "unembedding": "A token's unembedding row",
}
WEDDINGS = ("I love talking about weddings", "I love talking about")
LIST_POS = "I love weddings and brides\nThe wedding cake was\nShe wore a white wedding dress"
LIST_NEG = "I love parks and trees\nThe birthday cake was\nShe wore a white summer dress"

EXPLANATION = """
**A direction is a meaning.** The residual stream is one vector per token; blocks read from it and
write into it. If some direction in that space stands for a topic, adding it by hand should push the
text toward the topic, without changing a single weight or word of the prompt.

**Where a direction comes from.** *Two prompts* (ActAdd, Turner et al. 2023): the stream of one
prompt minus the stream of another, both read at their **last token**, entering the chosen block.
*Two lists* (contrastive activation addition, Rimsky et al. 2024): the same difference averaged over
pairs of prompts (line 1 with line 1, ...), so what the pairs share cancels out. *Word arithmetic*:
the sum of input embeddings as on the Meaning page. *One neuron*: the column its MLP writes per unit
of activation. *A token's unembedding row*: the direction the last stream is read as that token
(length 1, so it needs a large coefficient).

**Adding it.** The stream entering the block gains coefficient × direction at every position (or
from a position on), in the prompt and in every generated token. Both continuations are drawn with
the same seed, row by row in one batch: at coefficient 0 they are the same text.

**Reading it.** Each text is scored by both models (log-probability of every token), the next-token
probabilities after the prompt show what moved, and the direction alone, put through the final norm
and the unembedding, shows which tokens it pushes up and down.

**Frozen attention** makes the steered run reuse the unsteered run's attention patterns: only what
the direction writes into the stream (and what the MLPs make of it) counts, not where the heads look.
It applies to the scores and the next-token bars; the two texts are always generated freely.
"""


@dataclass(frozen=True)
class Setup:
    """Everything that decides the texts; field names are the link's (as ?s_<name>=)."""

    source: str = "actadd"
    pos: str = WEDDINGS[0]
    neg: str = WEDDINGS[1]
    pos_list: str = LIST_POS
    neg_list: str = LIST_NEG
    expr: str = "wedding - funeral"
    neuron_block: int = 20
    neuron: int = 0
    token: str = " wedding"
    block: int = 6
    coef: float = 1.0
    start: int = 0
    steps: int = 20
    seed: int = 0
    temp: float = 1.0
    frozen: bool = False


DEFAULT = Setup()
_KINDS = {f.name: type(getattr(DEFAULT, f.name)) for f in fields(Setup)}
_OWN = {"actadd": ("pos", "neg"), "caa": ("pos_list", "neg_list"), "arithmetic": ("expr",),
        "neuron": ("neuron_block", "neuron"), "unembedding": ("token",)}  # each source's own inputs
_RANGES = {"temp": TEMPERATURE_RANGE, "steps": (1, MAX_STEPS), "seed": (0, 2**31 - 1), "block": (0, None),
           "start": (0, None), "neuron_block": (0, None), "neuron": (0, None)}  # what the widgets accept


_BOOLS = {"1": True, "true": True, "0": False, "false": False}  # what a link's on/off reads as


def _key(name: str) -> str:
    return f"steer_{name}"


def _from_text(name: str, raw: str):
    """One link value as its field's type; None when it does not parse (the link names it)."""
    kind = _KINDS[name]
    try:
        value = _BOOLS[raw.lower()] if kind is bool else kind(raw)
    except (KeyError, TypeError, ValueError):
        return None
    low, high = _RANGES.get(name, (None, None))
    outside = (low is not None and value < low) or (high is not None and value > high)
    return None if (kind is float and not np.isfinite(value)) or outside else value


def _read_link() -> None:
    """A session's first visit: the setup from the link; it is applied, so the texts show at once."""
    if st.session_state.get("_steer_link_read"):
        return
    st.session_state["_steer_link_read"] = True
    found = {}
    for name in _KINDS:
        raw = st.query_params.get(f"s_{name}")
        if raw is None:
            continue
        value = _from_text(name, raw)
        if value is None or (name == "source" and value not in SOURCES) or len(raw) > links.MAX_URL_PROMPT:
            st.warning(f"Ignored '{name}' from the link: '{links.quoted(raw, 40)}' is not a valid value.")
        else:
            found[name] = value
    if found:
        setup = Setup(**{**asdict(DEFAULT), **found})
        st.session_state.update({_key(k): v for k, v in asdict(setup).items()})
        st.session_state["steer_applied"] = setup


def _write_link(setup: Setup) -> None:
    """The applied setup in the page's link: the source's own inputs and the shared ones."""
    names = ("source", *_OWN[setup.source], "block", "coef", "start", "steps", "seed", "temp", "frozen")
    values = {f"s_{n}": str(int(v) if isinstance(v, bool) else v) for n in names for v in [getattr(setup, n)]}
    links.page_params(**{k: v for k, v in values.items() if len(v) <= links.MAX_URL_PROMPT})


def _source_inputs(source: str) -> None:
    """The inputs of the chosen source (inside the form)."""
    if source == "actadd":
        cols = st.columns(2)
        cols[0].text_input("Toward this prompt", key=_key("pos"), persist_state="session")
        cols[1].text_input("Away from this prompt", key=_key("neg"), persist_state="session")
    elif source == "caa":
        cols = st.columns(2)
        cols[0].text_area("Toward (one prompt per line)", key=_key("pos_list"), persist_state="session", height=110)
        cols[1].text_area("Away from (the same number of lines)", key=_key("neg_list"), persist_state="session",
                          height=110)
    elif source == "arithmetic":
        st.text_input("Expression (words joined by + and −)", key=_key("expr"), persist_state="session")
    elif source == "neuron":
        cols = st.columns(2)
        cols[0].number_input("Neuron's block", min_value=0, step=1, key=_key("neuron_block"), persist_state="session")
        cols[1].number_input("Neuron", min_value=0, step=1, key=_key("neuron"), persist_state="session")
    else:
        st.text_input("Token (one token, e.g. ' wedding')", key=_key("token"), persist_state="session")


def _form(source: str) -> Setup | None:
    """The setup's inputs; the new setup when Generate is pressed, else None."""
    with st.form("steer_form", border=True):
        _source_inputs(source)
        cols = st.columns(4)
        cols[0].number_input("Block (stream entering it)", min_value=0, step=1, key=_key("block"),
                             persist_state="session")
        cols[1].number_input("Coefficient", step=0.5, format="%g", key=_key("coef"), persist_state="session")
        cols[2].number_input("From position (0 = all)", min_value=0, step=1, key=_key("start"),
                             persist_state="session")
        cols[3].number_input("Tokens to generate", 1, MAX_STEPS, step=1, key=_key("steps"), persist_state="session")
        cols = st.columns([1, 2, 2])
        cols[0].number_input("Seed", 0, 2**31 - 1, step=1, key=_key("seed"), persist_state="session")
        kit.temperature_slider(key=_key("temp"), where=cols[1], help="0 always takes the most likely token.")
        cols[2].toggle("Freeze attention (scores and next token only)", key=_key("frozen"), persist_state="session",
                       help="The steered run uses the unsteered run's attention patterns.")
        if not st.form_submit_button("Generate", type="primary"):
            return None
    state = st.session_state
    return Setup(**{name: _KINDS[name](state[_key(name)]) for name in _KINDS if name != "source"}, source=source)


def _direction(lm: LanguageModel, s: Setup) -> steer.Direction:
    """The setup's direction (prompt-based sources read the stream at the chosen block)."""
    if s.source == "actadd":
        return steer.actadd(lm, s.pos, s.neg, s.block)
    if s.source == "caa":
        return steer.contrastive(lm, s.pos_list.splitlines(), s.neg_list.splitlines(), s.block)
    if s.source == "arithmetic":
        return steer.arithmetic(lm, s.expr)
    if s.source == "neuron":
        return steer.neuron_column(lm, s.neuron_block, s.neuron)
    return steer.unembedding_of(lm, s.token)


def _direction_key(s: Setup) -> str:
    """What the direction depends on: the source, its own inputs and the block (not the coefficient)."""
    return repr((s.source, [getattr(s, name) for name in _OWN[s.source]], s.block))


def _texts(lm: LanguageModel, cap: Capture, s: Setup, direction: steer.Direction) -> steer.Continuations:
    ids = cap.token_ids.tolist()
    steering = steer.Steering(direction.vector, s.block, s.coef, s.start)
    key = kit.cache_key(kit.model_key(lm), ids, repr(s), kit.token_limit())
    decoding = Decoding(greedy=False, temperature=s.temp, seed=s.seed)
    with st.spinner(f"Generating {s.steps} tokens twice (one batch of two rows)…"):
        return kit.derived("steering_texts", key, lambda: steer.generate_pair(lm, ids, steering, s.steps, decoding,
                                                                           max_tokens=kit.token_limit(),
                                                                           read=not s.frozen, start=cap))


def _show_texts(lm: LanguageModel, ids: list[int], pair: steer.Continuations, s: Setup) -> bool:
    """The two texts and how they were drawn; False when nothing was drawn (the prompt fills the limit)."""
    cols = st.columns(2)
    for col, title, text in ((cols[0], "Default", pair.default_text), (cols[1], "Steered", pair.steered_text)):
        col.markdown(f"**{title}**")
        kit.continuation_box(lm, ids, text, where=col)
    if not (pair.default_ids or pair.steered_ids) and len(ids) >= kit.token_limit():
        st.warning(f"Nothing was generated: the prompt already fills the token limit ({kit.token_limit():,}, in the "
                   "sidebar). Raise it, or shorten the prompt.")
        return False
    same = "the same text" if pair.default_ids == pair.steered_ids else "different texts"
    how = "as one batch of two rows" if pair.batched else "one after the other (this model's cache cannot be batched)"
    frozen = ", attention frozen" if s.frozen else ""
    drawn = max(len(pair.default_ids), len(pair.steered_ids))
    cut = (f" The token limit ({kit.token_limit():,}, in the sidebar) left room for {drawn} of the {s.steps} tokens."
           if drawn < s.steps and len(ids) + drawn >= kit.token_limit() else "")
    st.caption(f"Both drawn with seed {s.seed} at T = {s.temp:.2f}, the steered one with coefficient {s.coef:g} at "
               f"block {s.block}{frozen}, {how}, in {pair.seconds:.1f} s: {same}.{cut} These are the settings of the "
               "last Generate: what you change in the form applies when you press it.")
    return True


def _show_scores(lm: LanguageModel, cap: Capture, s: Setup, pair: steer.Continuations,
                 steering: steer.Steering) -> None:
    ids = cap.token_ids.tolist()
    scores = pair.scores  # read while the texts were drawn; frozen attention needs a pass of its own
    if scores is None or s.frozen:
        key = kit.cache_key(kit.model_key(lm), ids, repr(s), "scores")
        guess = 4 * cap.pass_seconds  # four rows of the prompt and a text: each about the prompt's own pass
        about = f", about {round(guess)} s" if guess >= 2 else ""
        rows = f"four rows, each the {len(ids):,}-token prompt and a text{about}"
        with st.spinner(f"Reading both texts under both models: {rows}…"):
            scores = kit.derived("steering_scores", key, lambda: steer.score(lm, ids, pair, steering, s.frozen))
    note = " (frozen attention: the steered model reuses the unsteered patterns)" if s.frozen else ""
    st.subheader("How each model reads each text" + note)
    cols = st.columns(2)
    for col, name, new, by_d, by_s in (
            (cols[0], "default", pair.default_ids, scores.default_by_default, scores.default_by_steered),
            (cols[1], "steered", pair.steered_ids, scores.steered_by_default, scores.steered_by_steered)):
        if not new:
            col.info(f"The {name} continuation is empty.")
            continue
        col.metric(f"The {name} text: total log-probability, unsteered → steered model",
                   f"{by_d.sum():.1f} → {by_s.sum():.1f}")
        with col:
            plotly_chart(draw.token_scores_figure(readable_tokens(lm.tokenizer, list(new)), by_d, by_s,
                                                  f"The {name} text, token by token"), key=f"steer_scores_{name}")
    moved = scores.moved(10)
    plotly_chart(draw.moved_figure(readable_tokens(lm.tokenizer, moved.tolist()), scores.next_default[moved],
                                   scores.next_steered[moved]), key="steer_moved")


def _show_direction(lm: LanguageModel, cap: Capture, s: Setup, direction: steer.Direction) -> None:
    st.subheader("What the direction itself says")
    length = float(np.linalg.norm(direction.vector))
    st.markdown(draw.norm_sentence(length, s.coef, steer.typical_norm(cap.residual[s.block]), s.block))
    key = kit.cache_key(kit.model_key(lm), _direction_key(s), "reading")
    r = kit.derived("steering_reading", key, lambda: steer.read_direction(lm, direction.vector))

    def names(ids: np.ndarray) -> list[str]:
        return readable_tokens(lm.tokenizer, ids.tolist())
    st.caption(f"The direction ({literal(short(direction.label, 120))}) on its own, through the final norm and the unembedding "
               "(logit change), and the input embeddings it points along most (cosine). A direction taken from "
               "an early block is written in the model's inner code: read directly as tokens it can look like "
               "noise even when it steers the text well; blocks near the end read more plainly.")
    st.dataframe(draw.reading_rows(names(r.promoted), r.promoted_by, names(r.suppressed), r.suppressed_by,
                                   names(r.similar), r.similar_cos), hide_index=True)


def _run(lm: LanguageModel, cap: Capture, s: Setup) -> None:
    """The applied setup's texts, scores and reading; a clear message when it cannot run."""
    ids = cap.token_ids.tolist()
    try:
        key = kit.cache_key(kit.model_key(lm), _direction_key(s))
        direction = kit.derived("steering_direction", key, lambda: _direction(lm, s))
        steering = steer.Steering(direction.vector, s.block, s.coef, s.start)
        steer.check(lm, steering, len(ids))
        pair = _texts(lm, cap, s, direction)
    except (ValueError, XrayError) as exc:
        st.error(f"{literal(str(exc))} Your other settings are kept; change this one and press Generate.")
        return
    if not _show_texts(lm, ids, pair, s):
        return
    _show_direction(lm, cap, s, direction)
    try:
        _show_scores(lm, cap, s, pair, steering)
    except XrayError as exc:
        st.warning(literal(str(exc)))


lm, cap = kit.page("Steering")
kit.explain("What steering does", EXPLANATION)
if lm is None or cap is None:
    kit.stop()
_read_link()
kit.set_defaults({_key(k): v for k, v in asdict(DEFAULT).items()})
source = kit.picker("Where the direction comes from", SOURCES, key=_key("source"), default=DEFAULT.source,
                    radio=True, horizontal=True, persist_state="session")
kit.token_strip(cap)  # the positions "From position" counts
submitted = _form(str(source))
if submitted is not None:
    st.session_state["steer_applied"] = submitted
applied: Setup | None = st.session_state.get("steer_applied")
if applied is None:
    st.info("Choose where the direction comes from, a block and a coefficient, then press Generate. The prompt "
            "is the sidebar's.")
    kit.stop()
_write_link(applied)
_run(lm, cap, applied)
