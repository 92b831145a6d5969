"""Prompt sets: one prompt is an anecdote, a set is evidence. Build a set (a built-in one, a template,
pasted lines or a CSV), see the rows left out and why, then read it five ways, each with the
per-prompt values behind the mean: the logit difference per prompt, each head's direct share,
activation patching, head ablation and head types. Widgets and layout only: the math is in
model/analyses/sets/, the drawings in viz/prompt_sets.py."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from model import LanguageModel, XrayError
from model.analyses.head_scores import KIND_LABELS
from model.analyses.sets import ablation as set_ablation
from model.analyses.sets import direct, head_scores
from model.analyses.sets import patching as set_patching
from model.analyses.sets import prompts as sets
from model.analyses.sets.batches import Part, stacked
from pages import kit
from pages.kit import contrast, links, set_jobs
from pages.kit.plotly_chart import plotly_chart
from viz import prompt_sets as draw
from viz.export import rows_csv
from viz.labels import count, literal

METRIC = "logit(answer) − logit(contrast)"  # every set view's metric, at each prompt's last token
FIRST_SIZE = 50  # prompts of the set a first visit opens on: its read takes ~1.5 s on 2 cores; up to 500 on request
SOURCES = ("Built-in", "Template", "Pasted lines", "CSV file")
ROWS, CURRENT, PICK = "_set_rows", "_set_current", "set_pick"  # raw rows, the checked set, the chosen prompt
OPENING = "_set_opening"  # the one-prompt page a button asked to open
VIEWS = ("Logit difference", "Heads: direct share", "Patching", "Head ablation", "Head types")
VIEW_NAMES = dict(zip(("diff", "heads", "patching", "ablation", "types"), VIEWS))  # ?set_view= in the link
Built = tuple[str, list[sets.SetRow], list[sets.Rejected]]  # a set's name, its rows and the rows left out
LINKED_SET = "_set_linked"  # (built-in name, size) of the set shown, when it is a built-in one: the link's
PATCH_VIEWS = {"Residual stream": "residual", "Attention output": "attn_out", "MLP output": "mlp_out",
               "Attention heads": "heads"}
OPEN_IN = {"Next token": "pages/next_token.py", "Attribution": "pages/attribution.py",
           "Attention": "pages/attention.py", "Logit lens": "pages/logit_lens.py"}
DEFAULT_TEMPLATE = ("When {A} and {B} went to the {place}, {B} gave a drink to", " {A}", " {B}",
                    "When {A} and {B} went to the {place}, {C} gave a drink to",
                    "A: Mary, John, Tom, Anna, Paul\nB: Mary, John, Tom, Anna, Paul\nC: Mary, John, Tom, Anna, Paul\n"
                    "place: store, park, school")

EXPLANATION = """
**Why a set.** A head that moves the answer on one sentence may do nothing on the next. Circuit
papers (indirect object, greater-than, induction) report every finding over a set of prompts, with
its spread: here every view shows the mean over the set and, beside it, how much the prompts
disagree, and each prompt's own numbers can be downloaded.

**A row** is a prompt, the answer the model should give (one token, with its leading space), a
contrast answer, and optionally a corrupted prompt of the same token length that should make the
model give the contrast instead. The metric everywhere is logit(answer) − logit(contrast) at the
last position: above 0, the model prefers the answer.

**How it runs.** Prompts of different lengths run together in padded batches (padding after the
prompt: a model that reads left to right never sees it), and each prompt is read at its own last
token, so every number equals the prompt run alone.
"""


def _slots(text: str) -> dict[str, list[str]]:
    """'name: a, b, c' per line -> {name: [a, b, c]}; a PromptError names a line without a colon."""
    slots: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, values = line.partition(":")
        if not colon:
            raise XrayError(f"Slot line {number} ('{line.strip()}') has no colon: write it as name: value, value, …")
        slots[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return slots


def _source_rows(lm: LanguageModel, source: str) -> Built | None:
    """The chosen source's rows once its button is pressed (None before), or a message on bad input."""
    if source == "Built-in":
        name = st.selectbox("Set", list(sets.BUILTIN), key="set_builtin", persist_state="session",
                            help="Made to teach; see each description.")
        st.caption(sets.BUILTIN[name])
        kit.set_defaults({"set_n": FIRST_SIZE})  # in the state, not the widget: a link may have set another
        n = st.number_input("Prompts", 10, sets.MAX_PROMPTS, step=10, key="set_n", persist_state="session")
        if st.button("Build the set", key="set_build_builtin", type="primary"):
            return _builtin(lm, name, int(n))
    elif source == "Template":
        template, answer, contrast, corrupted, slots = DEFAULT_TEMPLATE
        kit.set_defaults({"set_template": template, "set_t_answer": answer, "set_t_contrast": contrast,
                          "set_t_corrupted": corrupted, "set_t_slots": slots})
        st.text_input("Template ({name} is a slot)", key="set_template", persist_state="session")
        cols = st.columns(3)
        cols[0].text_input("Answer", key="set_t_answer", persist_state="session",
                           help="Filled like the template: ' {A}' gives ' Mary'.")
        cols[1].text_input("Contrast answer", key="set_t_contrast", persist_state="session")
        cols[2].text_input("Corrupted prompt (optional)", key="set_t_corrupted", persist_state="session")
        st.text_area("Slots, one per line (name: value, value, …)", key="set_t_slots", persist_state="session", height=110,
                     help="Two slots with the same values never take the same one in a row (A ≠ B).")
        if st.button("Build the set", key="set_build_template", type="primary"):
            state = st.session_state
            rows = sets.from_template(state["set_template"], state["set_t_answer"], state["set_t_contrast"],
                                      _slots(state["set_t_slots"]), state["set_t_corrupted"])
            return _unlinked("template", rows, [])
    elif source == "Pasted lines":
        st.text_area("One row per line: prompt | answer | contrast | corrupted prompt (optional)", key="set_lines",
                     persist_state="session", height=150,
                     placeholder="The capital of France is | Paris | Rome | The capital of Italy is")
        st.caption("Fields are separated by | or a tab. An answer keeps the space written before it, which is "
                   "part of its token: '| Paris' gives ' Paris' (a word after a space), '|Paris' gives 'Paris'.")
        if st.button("Build the set", key="set_build_lines", type="primary"):
            text = st.session_state.get("set_lines", "")
            if not text.strip():
                st.warning("Nothing is pasted yet: write one row per line above. The set below is kept.")
                return None
            rows, rejected = sets.from_lines(text)
            return _unlinked("pasted", rows, rejected)
    else:
        upload = st.file_uploader("CSV with columns prompt, answer, contrast and optionally corrupted", type=["csv"],
                                  key="set_csv")
        if upload is not None and st.button("Build the set", key="set_build_csv", type="primary"):
            rows, rejected = sets.from_csv(upload.getvalue())
            return _unlinked(upload.name.removesuffix(".csv"), rows, rejected)
    return None


def _builtin(lm: LanguageModel, name: str, n: int) -> Built:
    """A built-in set's first n rows; the link names it (another source's rows cannot ride in a link)."""
    st.session_state[LINKED_SET] = (name, n)
    return name, sets.builtin(name, lm, n), []


def _unlinked(name: str, rows: list[sets.SetRow], rejected: list[sets.Rejected]) -> Built:
    """A set of one's own (a template, pasted lines, a file): the link cannot carry its rows."""
    st.session_state.pop(LINKED_SET, None)
    return name, rows, rejected


def _read_link(lm: LanguageModel) -> None:
    """A session's first visit: the built-in set, its size and the view from the link (?set=...&set_n=300
    &set_view=patching); the set is built at once. A value that does not read is ignored, and said."""
    if st.session_state.get("_set_link_read"):
        return
    st.session_state["_set_link_read"] = True
    name, size, view = (st.query_params.get(k) for k in ("set", "set_n", "set_view"))
    if view is not None:
        if view in VIEW_NAMES:
            st.session_state["set_view"] = VIEW_NAMES[view]
        else:
            st.warning(f"Ignored set_view '{links.quoted(view)}' from the link (expected one of "
                       f"{', '.join(VIEW_NAMES)}).")
    if name is None:
        return
    n = int(size) if size is not None and size.isdigit() else FIRST_SIZE
    if name not in sets.BUILTIN or not 10 <= n <= sets.MAX_PROMPTS:
        st.warning(f"Ignored the set '{links.quoted(name, 40)}' of {links.quoted(str(size))} prompts from the link "
                   f"(built-in sets: {', '.join(sets.BUILTIN)}; 10 to {sets.MAX_PROMPTS} prompts).")
        return
    st.session_state.update({"set_source": "Built-in", "set_builtin": name, "set_n": n})
    st.session_state[ROWS] = _builtin(lm, name, n)


def _link(view: str) -> None:
    """The shown set (a built-in one) and the view in the page's link; the shell writes it after a full run."""
    linked = st.session_state.get(LINKED_SET)
    params = {"set": linked[0], "set_n": str(linked[1])} if linked else {}
    links.page_params(**params, set_view=next(slug for slug, v in VIEW_NAMES.items() if v == view))


def _current_set(lm: LanguageModel) -> sets.PromptSet | None:
    """The session's set, checked against this model's tokenizer (again after a model change); the
    built-in indirect-object set on a first visit."""
    state = st.session_state
    source = st.radio("Where the set comes from", SOURCES, key="set_source", persist_state="session", horizontal=True)
    try:
        built = _source_rows(lm, source)
        if built is None and ROWS not in state:
            built = _builtin(lm, next(iter(sets.BUILTIN)), FIRST_SIZE)
    except XrayError as exc:
        st.error(literal(str(exc)))
        built = None
    if built is not None:
        state[ROWS] = built
        state.pop(PICK, None)
    if ROWS not in state:
        return None
    name, rows, rejected = state[ROWS]
    model = kit.model_key(lm)
    current = state.get(CURRENT)
    if current is None or current[0] != model or current[1] is not rows:
        current = state[CURRENT] = (model, rows, sets.check(lm, rows, name, rejected))
    return current[2]


def _summary(prompt_set: sets.PromptSet) -> None:
    """How many rows run, every left-out row with its reason, and the set as CSV."""
    kept, left = len(prompt_set.items), len(prompt_set.rejected)
    pairs = sum(item.corrupted_ids is not None for item in prompt_set.items)
    with_pairs = f", {pairs:,} with a corrupted prompt" if pairs else ""
    st.markdown(f"{_code(prompt_set.name)}: {count(kept, 'prompt')} run{with_pairs}"
                + (f"; {left:,} left out (below)" if left else "."))
    if left:
        with st.expander(f"{count(left, 'row')} left out, and why", expanded=kept == 0):
            st.dataframe([{"row": r.number, "prompt": r.row.prompt if r.row else "", "reason": r.reason}
                          for r in prompt_set.rejected], hide_index=True, use_container_width=True)
    st.download_button("Download the set (CSV)", lambda: sets.to_csv(prompt_set), file_name="prompt_set.csv", mime="text/csv",
                       key="set_download", on_click="ignore", disabled=not kept)


def _code(text: str) -> str:
    """User text as a markdown code span: shown as written, never read as markdown (a backtick in it too)."""
    return f"`` {text} ``" if text else "(empty)"


def _job_key(lm: LanguageModel, prompt_set: sets.PromptSet, *parts: object) -> str:
    return kit.cache_key(kit.model_key(lm), prompt_set.key(), *parts)


def _direct(lm: LanguageModel, prompt_set: sets.PromptSet) -> tuple[set_jobs.Job, str | None]:
    """The logit differences and head shares: run at once (one padded pass per ~2,000 tokens)."""
    refusal = direct.refusal(lm)
    key = _job_key(lm, prompt_set, "direct", refusal is None)
    found = set_jobs.job(key)
    if found is None:
        found = set_jobs.run(key, direct.direct_parts(lm, prompt_set.items, heads=refusal is None),
                             len(prompt_set.items), "Reading every prompt")
    return found, refusal


def _open_prompt(item: sets.Item, page: str) -> None:
    """Callback: the prompt becomes the sidebar's, its answer and contrast tokens A and B (the set's
    question on the pages that explain a logit); the run that follows opens the page on it."""
    st.session_state["prompt"] = item.row.prompt
    kit.forget("position")
    contrast.offer(item.answer, contrast.TOKEN_A)
    contrast.offer(item.contrast, contrast.TOKEN_B)
    st.session_state[OPENING] = page


def _open_requested() -> None:
    """Open the page a button asked for (a switch cannot start inside a callback)."""
    page = st.session_state.pop(OPENING, None)
    if page is not None:
        kit.switch_page(page)


def _chosen(points: list[dict]) -> None:
    """Callback: a click on a prompt's dot chooses it in the prompt picker below."""
    st.session_state[PICK] = int(points[0].get("x", 0))


def _diff_view(lm: LanguageModel, prompt_set: sets.PromptSet, found: set_jobs.Job) -> None:
    indices, diffs = stacked(found.results, "diff")
    items = [prompt_set.items[int(i)] for i in indices]
    bad_i, bad = stacked(found.results, "corrupted_diff")
    corrupted = None
    if bad_i.size == indices.size and bad_i.size:
        corrupted = bad
    plotly_chart(draw.diff_strip([it.number for it in items], diffs, [it.row.prompt for it in items],
                                 METRIC, corrupted), key="set_strip", on_click=_chosen)
    numbers = {it.number: it for it in items}
    pick = kit.picker("Prompt", {n: f"#{n}: {it.row.prompt}" for n, it in numbers.items()}, key=PICK,
                      default=items[0].number, help="Click a dot above to choose it.", persist_state="session")
    item = numbers[int(pick if pick is not None else items[0].number)]
    st.markdown(f"Answer {_code(item.row.answer)} vs contrast {_code(item.row.contrast)}: difference "
                f"**{found.results[prompt_set.items.index(item)]['diff']:+.2f}**. Open it in:")
    for col, (label, page) in zip(st.columns(len(OPEN_IN)), OPEN_IN.items()):
        col.button(label, key=f"set_open_{label}", on_click=_open_prompt, args=(item, page),
                   use_container_width=True)
    table = [{"row": it.number, "prompt": it.row.prompt, "answer": it.row.answer, "contrast": it.row.contrast,
              "difference": float(d), **({"corrupted difference": float(c)} if corrupted is not None else {})}
             for it, d, c in zip(items, diffs, corrupted if corrupted is not None else diffs)]
    _csv("Download the per-prompt differences (CSV)", lambda: table, "set_diff_csv")


def _csv(label: str, rows: Callable[[], list[dict]], key: str) -> None:
    """A per-prompt table as CSV, built only when downloaded (a 500-prompt head table is 135,000 rows)."""
    st.download_button(label, lambda: rows_csv(rows()), file_name=f"{key.removesuffix('_csv')}.csv", mime="text/csv",
                       key=key, on_click="ignore")


def _head_grid(values: np.ndarray, title: str, what: str, key: str) -> None:
    """A (prompts, L, H) mean heatmap, its spread on a switch."""
    spread = st.toggle("Show the spread (standard deviation over prompts)", key=f"{key}_spread", persist_state="session")
    plotly_chart(draw.mean_heatmap(values, title, what, spread=spread), key=key)


def _heads_view(prompt_set: sets.PromptSet, found: set_jobs.Job, refusal: str | None) -> None:
    if refusal is not None:
        st.warning(refusal)
        return
    indices, heads = stacked(found.results, "heads")
    if not indices.size:
        return
    _head_grid(heads, f"Each head's direct share of the difference, over {indices.size} prompts", "share", "set_heads")
    mean, sd = heads.mean(axis=0), heads.std(axis=0)
    order = np.argsort(-np.abs(mean), axis=None)[:10]
    H = mean.shape[1]
    st.dataframe([{"head": f"L{i // H}H{i % H}", "mean share": float(mean.flat[i]), "spread (sd)": float(sd.flat[i]),
                   "same sign on": f"{int((np.sign(heads[:, i // H, i % H]) == np.sign(mean.flat[i])).sum())} of {indices.size}"}
                  for i in order], hide_index=True)
    _csv("Download every prompt's head shares (CSV)", lambda: [
        {"row": prompt_set.items[int(i)].number, "block": b, "head": h, "share": float(heads[n, b, h])}
        for n, i in enumerate(indices) for b in range(heads.shape[1]) for h in range(H)], "set_heads_csv")


def _patching_view(lm: LanguageModel, prompt_set: sets.PromptSet) -> None:
    n_pairs = len(set_patching.pairs(prompt_set.items))
    if not n_pairs:
        st.info("Patching needs corrupted prompts: give the rows a corrupted prompt of the same token length "
                "(the built-in sets have them).")
        return
    label = st.radio("What to patch", list(PATCH_VIEWS), key="set_patch_view", persist_state="session", horizontal=True)
    view = PATCH_VIEWS[label]
    key = _job_key(lm, prompt_set, "attribution")
    estimate = set_jobs.job(key)
    if estimate is None:
        if not set_jobs.pressed(f"Run the attribution estimate over {n_pairs} pairs", key="set_run_estimate", type="primary"):
            return
        estimate = set_jobs.run(key, set_patching.attribution_parts(lm, prompt_set.items), n_pairs,
                                "Attribution patching")
    set_jobs.stopped_note(estimate)
    if view in ("attn_out", "mlp_out") and st.toggle("Per block: a block's whole output patched at every position at "
                                                     "once", key="set_patch_per_block", persist_state="session"):
        _per_block(lm, prompt_set, estimate.results, view, n_pairs)
        return
    _patch_grids(lm, estimate.results, f"attribution_{view}", view, "Attribution estimate", "set_patch_est")
    exact_key = _job_key(lm, prompt_set, "exact", view)
    exact = set_jobs.job(exact_key)
    if exact is None:
        if set_jobs.pressed(f"Run exact patching over {n_pairs} pairs (one pair at a time; Stop keeps what is done)",
                            key="set_run_exact"):
            exact = set_jobs.run(exact_key, set_patching.exact_parts(lm, prompt_set.items, view), n_pairs,
                                 "Exact patching")
    if exact is not None:
        set_jobs.stopped_note(exact)
        _patch_grids(lm, exact.results, f"exact_{view}", view, "Exact patching", "set_patch_exact")


def _per_block(lm: LanguageModel, prompt_set: sets.PromptSet, estimates: Part, view: str, n_pairs: int) -> None:
    """Each block's whole output patched at once: the estimate (its positions' estimates summed) beside
    the exact runs (one pass of L rows per pair), mean or spread over the pairs."""
    key = _job_key(lm, prompt_set, "exact_block", view)
    exact = set_jobs.job(key)
    if exact is None and set_jobs.pressed(f"Run exact per-block patching over {n_pairs} pairs (one pass per pair)",
                                          key="set_run_exact_block"):
        exact = set_jobs.run(key, set_patching.exact_block_parts(lm, prompt_set.items, view), n_pairs,
                             "Exact per-block patching")
    name = f"attribution_{view}"
    both = [i for i in sorted(estimates) if name in estimates[i]
            and (exact is None or f"exact_block_{view}" in exact.results.get(i, {}))]
    if not both:
        st.info("No pair's clean and corrupted prompts disagree on the answers: nothing to recover.")
        return
    columns = [np.stack([estimates[i][name].sum(axis=1) for i in both])]  # (N, L) each
    labels = ["estimate"]
    if exact is not None:
        set_jobs.stopped_note(exact)
        columns.append(np.stack([exact.results[i][f"exact_block_{view}"] for i in both]))
        labels.append("exact")
    spread = st.toggle("Show the spread (standard deviation over pairs)", key="set_block_spread", persist_state="session")
    plotly_chart(draw.mean_heatmap(np.stack(columns, axis=-1), f"Whole block patched, mean over {len(both)} pairs",
                                   "recovered", cols=labels, spread=spread), key="set_patch_block")


def _patch_grids(lm: LanguageModel, results: Part, name: str, view: str, what: str, key: str) -> None:
    """The mean (or spread) over pairs of one view's normalised metric, lined up from the last position."""
    indices = [i for i in sorted(results) if name in results[i]]
    skipped = len(results) - len(indices)
    if not indices:
        st.info("No pair's clean and corrupted prompts disagree on the answers: nothing to recover.")
        return
    grids = [results[i][name] for i in indices]
    if view == "heads":
        values, cols, rows = np.stack(grids), None, None
    else:
        values, k = set_patching.aligned(grids)
        cols = draw.from_end_labels(k)
        rows = ["embedding", *(f"after block {b}" for b in range(values.shape[1] - 1))] if view == "residual" else None
    note = f" ({skipped} pairs left out: their two runs give the same difference)" if skipped else ""
    spread = st.toggle("Show the spread (standard deviation over pairs)", key=f"{key}_spread", persist_state="session")
    plotly_chart(draw.mean_heatmap(values, f"{what}, mean over {len(indices)} pairs{note}", "recovered",
                                   cols=cols, rows=rows, spread=spread), key=key)
    if view != "heads" and len({g.shape[-1] for g in grids}) > 1:
        st.caption(f"The pairs differ in length, so positions are counted from the last token (the last {values.shape[-1]}).")


def _ablation_view(lm: LanguageModel, prompt_set: sets.PromptSet, found: set_jobs.Job) -> None:
    s = lm.summary
    _, heads = stacked(found.results, "heads")
    cols = st.columns(2)
    how = cols[0].radio("Switch off by", ["zero", "mean"], key="set_ablate_how", persist_state="session", horizontal=True,
                        format_func=lambda h: {"zero": "zero (no output)", "mean": "the set's mean output"}[h])
    top = int(cols[1].number_input("Heads (strongest mean direct share first)", 1, s.n_layers * s.n_heads,
                                   min(10, s.n_layers * s.n_heads), key="set_ablate_n", persist_state="session"))
    strength = np.abs(heads.mean(axis=0)) if heads.size else np.zeros((s.n_layers, s.n_heads))
    chosen = [(int(i // s.n_heads), int(i % s.n_heads)) for i in np.argsort(-strength, axis=None, kind="stable")[:top]]
    key = _job_key(lm, prompt_set, "ablation", how, tuple(chosen))
    result = set_jobs.job(key)
    if result is None:
        if not set_jobs.pressed(f"Switch off {len(chosen)} heads, one at a time, over {len(prompt_set.items)} prompts",
                                key="set_run_ablation", type="primary"):
            return
        result = set_jobs.run(key, set_ablation.ablation_parts(lm, prompt_set.items, chosen, how), len(chosen),
                              "Head ablation", count=lambda part: int("diff" not in next(iter(part.values()), {})))
    set_jobs.stopped_note(result)
    names, effects = [], []
    for head in chosen:
        _, values = stacked(result.results, set_ablation.effect_name(head))
        if values.size == len(prompt_set.items):
            names.append(f"L{head[0]}H{head[1]}")
            effects.append(values)
    if effects:
        matrix = np.stack(effects, axis=1)
        plotly_chart(draw.effect_bars(names, matrix, METRIC), key="set_ablation_chart")
        rows = [{"row": item.number, **{n: float(v) for n, v in zip(names, row)}}
                for item, row in zip(prompt_set.items, matrix)]
        _csv("Download every prompt's effects (CSV)", lambda: rows, "set_ablation_csv")


def _types_view(lm: LanguageModel, prompt_set: sets.PromptSet) -> None:
    key = _job_key(lm, prompt_set, "types")
    result = set_jobs.job(key)
    if result is None:
        if not set_jobs.pressed(f"Score every head on {len(prompt_set.items)} prompts", key="set_run_types", type="primary"):
            return
        result = set_jobs.run(key, head_scores.score_parts(lm, prompt_set.items), len(prompt_set.items), "Head types")
    set_jobs.stopped_note(result)
    kind = st.radio("Kind", head_scores.KINDS, key="set_types_kind", persist_state="session", horizontal=True,
                    format_func=KIND_LABELS.get)
    indices, scores = stacked(result.results, f"score_{kind}")
    tested = int((~np.isnan(scores).all(axis=(1, 2))).sum()) if scores.size else 0
    if not tested:
        st.info(f"No prompt in this set can test {KIND_LABELS[kind]} heads (that needs a token repeated in the prompt).")
        return
    _head_grid(scores, f"{KIND_LABELS[kind].capitalize()} score, over the {tested} prompts that test it", "score",
               "set_types")
    _csv(f"Download every prompt's {kind} scores (CSV)", lambda: [
        {"row": prompt_set.items[int(i)].number, "block": b, "head": h, "score": float(scores[n, b, h])}
        for n, i in enumerate(indices) for b in range(scores.shape[1]) for h in range(scores.shape[2])
        if not np.isnan(scores[n, b, h])], "set_types_csv")


def _views(lm: LanguageModel, prompt_set: sets.PromptSet) -> None:
    found, refusal = _direct(lm, prompt_set)
    set_jobs.stopped_note(found)
    view = st.radio("View", VIEWS, key="set_view", persist_state="session", horizontal=True)
    _link(view)
    draws: dict[str, Callable[[], None]] = {
        "Logit difference": lambda: _diff_view(lm, prompt_set, found),
        "Heads: direct share": lambda: _heads_view(prompt_set, found, refusal),
        "Patching": lambda: _patching_view(lm, prompt_set),
        "Head ablation": lambda: _ablation_view(lm, prompt_set, found),
        "Head types": lambda: _types_view(lm, prompt_set),
    }
    draws[view]()


_open_requested()
lm, _ = kit.page("Prompt sets", capture=False)  # its own prompts, not the sidebar's
kit.explain("Why a set, and how it runs", EXPLANATION)
if lm is not None:
    _read_link(lm)
    prompt_set = _current_set(lm)
    if prompt_set is not None:
        _summary(prompt_set)
        if prompt_set.items:
            try:
                _views(lm, prompt_set)
            except XrayError as exc:
                st.error(literal(str(exc)))
