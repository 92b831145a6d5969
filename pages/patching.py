"""Activation patching: a clean and a corrupted prompt, two answers, and which activations carry the
difference. The attribution estimate draws at once; exact patching runs on a button with a progress
bar and a cancel. Widgets and layout only: the math is in model/analyses/patching.py."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from model import XrayError
from model.analyses.patching import (
    MAX_TOKENS,
    PatchGrid,
    Progress,
    answer_id,
    attribution,
    correlation,
    exact,
    exact_head_positions,
    head_positions_estimate,
    needed,
    needed_head_positions,
    prompt_tokens,
    record_pair,
    top_cells,
    top_tokens,
)
from model.analyses.sampling import probabilities
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.plotly_chart import plotly_chart
from viz import patching as draw
from viz.export import file_name, grid_rows, rows_csv
from viz.labels import percent

PRESETS = {  # name -> (clean, corrupted, answer A, answer B); each pair has equal token counts
    "Who gets the drink? (indirect object)": (
        "When Mary and John went to the store, John gave a drink to",
        "When Mary and John went to the store, Mary gave a drink to", " Mary", " John"),
    "Who gets the ball? (indirect object)": (
        "When Tom and James went to the park, James gave the ball to",
        "When Tom and James went to the park, Tom gave the ball to", " Tom", " James"),
    "Where is the landmark? (factual recall)": (
        "The Eiffel Tower is in the city of", "The Colosseum is in the city of", " Paris", " Rome"),
    "Which capital? (factual recall)": ("The capital of France is", "The capital of Italy is", " Paris", " Rome"),
}
VIEWS = {"Residual stream": "residual", "Attention output": "attn_out", "MLP output": "mlp_out",
         "Attention heads": "heads", "Heads of one block, per position": "head_positions"}
N_CHOICES = 8
LINKED = {"clean": "patch_clean", "corrupted": "patch_corrupted", "answer_a": "patch_a_text", "answer_b": "patch_b_text"}

EXPLANATION = """
**The question.** Two prompts differ in one detail: the *clean* one makes the model say answer A,
the *corrupted* one answer B. Which parts of the model carry the detail to the answer?

**Patching.** Run the corrupted prompt, but at one place (a block's output at one token, or one
attention head) put back the value that place had in the clean run, and leave everything after it
to compute freely. We score each run by logit(A) − logit(B) at the last token, rescaled so that the
clean run is **1** and the corrupted run is **0**: a cell near 1 means that single activation was
enough to bring the clean answer back; near 0, it carried nothing the answer needed; below 0, it
pushed the other way. Positions where both prompts are identical so far are exactly 0: the values
there are the same in both runs, so there is nothing to patch.

**Views.** *Residual stream*: the whole running sum at a position (embedding, or after block l).
*Attention output* and *MLP output*: what block l's attention or MLP adds at one position.
*Attention heads*: one head's output at every position at once (its slice of the input to the
attention's output projection). *Heads of one block, per position*: the same slice, one head at one
position at a time, for the block you pick: where in the prompt a head's output matters. A head's
cells there do not add up to its cell in *Attention heads* (the patches interact), but its estimates do.

**Attribution patching** is the quick estimate: one forward and one backward pass of the corrupted
prompt give the gradient of the metric at every activation, and (clean − corrupted) · gradient
predicts each patch to first order. It is instant but can miss effects that are not linear; run the
exact patching to check it (one patched run per cell, many at once) and compare.
"""


def _apply_preset() -> None:
    """Fill both prompts and the example's answers (not the last pair's picks), then empty the box: it
    loads, it does not name what the fields hold (they may be edited next, or come from a link), and
    choosing the same example again loads it again."""
    chosen = st.session_state.get("patch_preset")
    if chosen in PRESETS:
        clean, corrupted, a, b = PRESETS[chosen]
        st.session_state.update(patch_clean=clean, patch_corrupted=corrupted, patch_a_text=a, patch_b_text=b,
                                patch_a=None, patch_b=None)
    st.session_state["patch_preset"] = None


def _pair_edited() -> None:
    """A prompt typed: a new pair, whose answers start again on its runs' likeliest tokens (those named
    or picked for the old pair, an example's or a link's, need not even be among its options)."""
    st.session_state.update(patch_a_text="", patch_b_text="", patch_a=None, patch_b=None)


def _read_link() -> None:
    """A session's first visit: the pair and its answers from the link (?clean=&corrupted=&answer_a=...)."""
    if st.session_state.get("_patch_link_read"):
        return
    st.session_state["_patch_link_read"] = True
    for name, key in LINKED.items():
        raw = st.query_params.get(name)
        if raw is not None and 0 < len(raw) <= links.MAX_URL_PROMPT:
            st.session_state[key] = raw
        elif raw is not None:
            st.warning(f"Ignored '{name}' from the link: it was empty or too long.")


def _write_link(lm, answers: tuple[int, int] | None = None) -> None:
    """The pair and, once chosen, the answers, as text, ride in the page's link (the pair even when it
    cannot be compared yet: a reload keeps what was typed)."""
    texts = {"patch_clean": st.session_state["patch_clean"], "patch_corrupted": st.session_state["patch_corrupted"]}
    if answers is not None:
        texts |= {"patch_a_text": lm.tokenizer.decode([answers[0]]), "patch_b_text": lm.tokenizer.decode([answers[1]])}
    links.page_params(**{name: texts[key] for name, key in LINKED.items()
                         if key in texts and len(texts[key]) <= links.MAX_URL_PROMPT})


def _prompts() -> tuple[str, str]:
    _read_link()
    first = next(iter(PRESETS))
    kit.set_defaults({"patch_clean": PRESETS[first][0], "patch_corrupted": PRESETS[first][1],
                      "patch_a_text": PRESETS[first][2], "patch_b_text": PRESETS[first][3]})
    st.selectbox("Example pair", list(PRESETS), index=None, key="patch_preset", on_change=_apply_preset,
                 placeholder="Load an example pair…")
    cols = st.columns(2)
    clean = cols[0].text_input("Clean prompt (gives answer A)", key="patch_clean", persist_state="session",
                               on_change=_pair_edited)
    corrupted = cols[1].text_input("Corrupted prompt (gives answer B)", key="patch_corrupted", persist_state="session",
                                   on_change=_pair_edited)
    return clean, corrupted


def _answer(lm, label: str, key: str, options: list[int], pair, top: int) -> int:
    """One answer token among both runs' likeliest next tokens (the pair's named answer included); a new
    pair starts on its named answer (an example's, a link's), else on `top`, its run's likeliest token.
    Labels carry this pair's probabilities."""
    p, q = probabilities(pair.clean.last_logits, 1.0), probabilities(pair.corrupted.last_logits, 1.0)
    names = readable_tokens(lm.tokenizer, options)
    labels = {i: f"{name}  (clean {percent(p[i])} · corrupted {percent(q[i])})" for i, name in zip(options, names)}
    wanted = answer_id(lm, st.session_state.get(key + "_text", ""))
    return int(kit.picker(label, labels, key=key, default=wanted if wanted in options else top,
                          persist_state="session"))


def _answer_options(lm, pair) -> list[int]:
    """Both runs' likeliest next tokens, and the answers named for this pair (an example's, a link's)."""
    named = [answer_id(lm, st.session_state.get(k, "")) for k in ("patch_a_text", "patch_b_text")]
    ids = top_tokens(pair.clean, N_CHOICES) + top_tokens(pair.corrupted, N_CHOICES)
    return list(dict.fromkeys(ids + [i for i in named if i is not None]))


def _cancel(key: str) -> None:
    st.session_state.get("patch_exact_keys", set()).discard(key)
    st.session_state["patch_cancelled"] = key  # the notice belongs to this view of this pair only


def _exact(run: Callable[[Progress], PatchGrid], key: str) -> PatchGrid:
    """The exact grid, computed once per key: a progress bar and a Cancel button while it runs."""
    box = st.empty()  # the bar and the button, cleared when the grid is ready
    with box.container():
        cols = st.columns([5, 1])
        bar = cols[0].progress(0.0, text="Exact patching: starting…")
        cols[1].button("Cancel", key="patch_cancel", on_click=_cancel, args=(key,))

    began = time.perf_counter()

    def progress(done: int, total: int) -> None:  # also where a Cancel click stops this script run
        left = (time.perf_counter() - began) * (total - done) / done if done else None
        bar.progress(done / total, text=f"Exact patching: {done} of {total} patched runs"
                                        + (f", about {max(1, round(left))} s left" if left is not None and done < total else ""))

    grid = kit.derived("patching_exact", key, lambda: run(progress))
    box.empty()
    return grid


@dataclass(frozen=True)
class _Grid:
    """What one choice of "What to patch" draws: its labels, its estimate, and how to run it exactly."""

    kind: str  # the file name's part: the view (and the block)
    title: str
    rows: list[str]
    cols: list[str]  # escaped, for the figures
    plain_cols: list[str]  # as is, for tables and files
    names: tuple[str, str]  # what a row and a column are, for files
    estimate: PatchGrid
    n_runs: int
    key: str  # the exact grid's cache key
    run: Callable[[Progress], PatchGrid]


def _whole_model(lm, pair, a: int, b: int, view: str, estimates: dict, key: str) -> _Grid:
    """A view over every block: residual / attn_out / mlp_out (blocks x positions), heads (blocks x heads)."""
    clean, corrupted, H = pair.clean.tokens, pair.corrupted.tokens, lm.summary.n_heads
    return _Grid(view, draw.VIEW_TITLES[view], draw.layer_labels(view, pair.clean.sites[view].shape[0]),
                 draw.column_labels(view, clean, corrupted, H), draw.plain_column_labels(view, clean, corrupted, H),
                 ("layer", "head" if view == "heads" else "position"), estimates[view],
                 int(needed(pair, view).sum()), key, lambda progress: exact(lm, pair, a, b, view, progress=progress))


def _one_block(lm, pair, a: int, b: int, estimates: dict, key: str) -> _Grid:
    """One block's heads x positions; the block picker starts on the block of the strongest head estimate."""
    heads = estimates["heads"]
    strongest = int(np.unravel_index(np.argmax(np.abs(heads.values)), heads.values.shape)[0])
    layer = int(kit.picker("Block", {i: f"block {i}" for i in range(lm.summary.n_layers)}, key="patch_block",
                           default=strongest, persist_state="session",
                           help="Starts on the block of the strongest head in the estimate of 'Attention heads'."))
    clean, corrupted = pair.clean.tokens, pair.corrupted.tokens
    return _Grid(f"head_positions_L{layer}", draw.head_positions_title(layer), draw.head_labels(lm.summary.n_heads),
                 draw.position_labels(clean, corrupted), draw.plain_position_labels(clean, corrupted),
                 ("head", "position"), head_positions_estimate(pair, heads, layer),
                 int(needed_head_positions(pair, layer).sum()), kit.cache_key(key, layer),
                 lambda progress: exact_head_positions(lm, pair, a, b, layer, progress=progress))


def _heatmap(grid, rows, cols, title: str, chart_key: str) -> None:
    plotly_chart(draw.patching_heatmap(grid.values, rows, cols, title, grid.ran), key=chart_key)


def _comparison(exact_grid: PatchGrid, grid: _Grid, prompt: str) -> None:
    estimate, rows, cols = grid.estimate, grid.rows, grid.cols
    r = correlation(exact_grid, estimate)
    left, right = st.columns([2, 3])
    left.metric("Correlation, estimate vs exact", "n/a" if r is None else f"{r:.3f}",
                help="Pearson correlation over the cells that were patched (the others are 0 in both).")
    left.caption(f"Exact patching took {exact_grid.seconds:.1f} s for {int(exact_grid.ran.sum())} patched runs.")
    top = draw.top_rows(top_cells(exact_grid, 8), estimate.values, rows, grid.plain_cols)
    left.dataframe(top, hide_index=True, column_order=("where", "exact", "estimate"),
                   column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("exact", "estimate")})
    _download(left, "Download the top cells (CSV)", rows_csv(top), f"patching_top_{grid.kind}", prompt,
              "patch_top_csv")
    with right:
        plotly_chart(draw.agreement_figure(exact_grid.values, estimate.values, exact_grid.ran,
                                          draw.cell_names(rows, cols, exact_grid.ran)), key="patch_agree")


def _download(where, label: str, text: str, kind: str, prompt: str, key: str) -> None:
    """A CSV download; the click does not rerun the page (on_click="ignore")."""
    where.download_button(label, text, file_name=file_name(prompt, kind, "csv"), mime="text/csv", key=key,
                          on_click="ignore")


def _grid_download(grid: _Grid, exact_grid, prompt: str) -> None:
    """Every cell of the view: exact (when it ran), the estimate, and whether the cell was patched."""
    values = {"estimate": grid.estimate.values, "patched": grid.estimate.ran}
    if exact_grid is not None:
        values = {"exact": exact_grid.values, **values}
    text = rows_csv(grid_rows(values, grid.rows, grid.plain_cols, names=grid.names))
    label = "Download the grid (CSV)" if exact_grid is not None else "Download the estimate (CSV)"
    _download(st, label, text, f"patching_{grid.kind}", prompt, "patch_grid_csv")


def _cost(lm, pair, n_runs: int) -> str:
    """', about N s' before an exact run, at the pace of this session's last exact run on this model (seconds
    per patched run and position: runs go in batches, so no single pass prices them); '' before one ran."""
    pace = st.session_state.get("patch_pace", {}).get(kit.model_key(lm))
    return "" if pace is None else f", about {max(1, round(n_runs * pair.n_tokens * pace))} s"


def _remember_pace(lm, pair, grid: PatchGrid) -> None:
    """The pace of an exact run that just finished, for the next button's price."""
    runs = int(grid.ran.sum())
    if runs and grid.seconds > 0:
        st.session_state.setdefault("patch_pace", {})[kit.model_key(lm)] = grid.seconds / (runs * pair.n_tokens)


def _views(lm, pair, a: int, b: int, pair_key: str, prompt: str) -> None:
    """One view's estimate at once, its exact grid on request, and their tables (prompt: for file names)."""
    label = st.radio("What to patch", list(VIEWS), key="patch_view", horizontal=True, persist_state="session")
    view = VIEWS[label]
    estimates = kit.derived("patching_attribution", kit.cache_key(pair_key, a, b), lambda: attribution(lm, pair, a, b))
    key = kit.cache_key(pair_key, a, b, view)
    grid = (_one_block(lm, pair, a, b, estimates, key) if view == "head_positions"
            else _whole_model(lm, pair, a, b, view, estimates, key))
    requested = st.session_state.setdefault("patch_exact_keys", set())
    if st.button(f"Run exact patching ({grid.n_runs} patched runs{_cost(lm, pair, grid.n_runs)})", key="patch_run",
                 type="primary"):
        requested.add(grid.key)
        st.session_state["patch_cancelled"] = None
    if st.session_state.get("patch_cancelled") == grid.key:
        st.info("Exact patching was cancelled. The estimate below is still valid; run the exact one any time.")
    left, right = st.columns(2)
    with right:  # drawn first: the estimate stays in view while the exact run works
        _heatmap(grid.estimate, grid.rows, grid.cols, f"Estimate (attribution patching): {grid.title}",
                 "patch_estimate_chart")
    exact_grid = None
    with left:
        if grid.key not in requested:
            st.info("Exact patching has not run for this view yet: press the button above. Meanwhile the "
                    "estimate on the right shows where to look.")
        else:
            exact_grid = _exact(grid.run, grid.key)
            _remember_pace(lm, pair, exact_grid)
            _heatmap(exact_grid, grid.rows, grid.cols, f"Exact: {grid.title}", "patch_exact_chart")
    _grid_download(grid, exact_grid, prompt)
    if exact_grid is not None:
        _comparison(exact_grid, grid, prompt)


def _pair(lm, clean: str, corrupted: str):
    """Both prompts recorded once per model; shows both token rows aligned (also when they do not fit)."""
    pair_key = kit.cache_key(kit.model_key(lm), clean, corrupted)
    try:
        pair = kit.derived("patching_pair", pair_key, lambda: record_pair(lm, clean, corrupted, MAX_TOKENS))
    except XrayError:
        st.html(draw.aligned_tokens_html(prompt_tokens(lm, clean), prompt_tokens(lm, corrupted)))
        raise
    st.html(draw.aligned_tokens_html(pair.clean.tokens, pair.corrupted.tokens))
    return pair, pair_key


lm, _ = kit.page("Activation patching", capture=False)  # its own two prompts, not the sidebar's
kit.explain("What patching measures", EXPLANATION)
if lm is None:
    kit.stop()
clean, corrupted = _prompts()
_write_link(lm)
try:
    pair, pair_key = _pair(lm, clean, corrupted)
    options = _answer_options(lm, pair)
    cols = st.columns(2)
    with cols[0]:
        a = _answer(lm, "Answer A (the clean prompt's)", "patch_a", options, pair, top_tokens(pair.clean, 1)[0])
    with cols[1]:
        b = _answer(lm, "Answer B (the corrupted prompt's)", "patch_b", options, pair, top_tokens(pair.corrupted, 1)[0])
    _write_link(lm, (a, b))
    clean_diff, corrupted_diff = pair.logit_diffs(a, b)
    cols = st.columns(2)
    cols[0].metric("logit(A) − logit(B), clean run", f"{clean_diff:+.2f}", help="This is the metric's 1.")
    cols[1].metric("logit(A) − logit(B), corrupted run", f"{corrupted_diff:+.2f}", help="This is the metric's 0.")
    _views(lm, pair, a, b, pair_key, clean)
except XrayError as exc:
    st.warning(str(exc))
