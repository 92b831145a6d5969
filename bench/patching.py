"""Activation patching on the default model: the full residual heatmap at 16 tokens (target <= 15 s)
and attribution patching (target <= 2 s), plus every exact view of the indirect-object example.

Two 16-token pairs: the indirect-object pair, whose prompts share their first 11 tokens (cells there
are exactly 0 and need no run), and a worst case whose first token differs too, so every cell of the
heatmap needs its own patched run. Run alone: `.venv/bin/python bench/patching.py`.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench.report import Check  # noqa: E402

IOI_16 = ("When Mary and John went to the big store yesterday, John gave a drink to",
          "When Mary and John went to the big store yesterday, Mary gave a drink to")
WORST_16 = ("When Mary and John went to the big store yesterday, John gave a drink to",
            "After Mary and John went to the big store yesterday, Mary gave a drink to")
IOI = ("When Mary and John went to the store, John gave a drink to",
       "When Mary and John went to the store, Mary gave a drink to")
ANSWERS = (" Mary", " John")
REPEATS = 3  # attribution: median of this many (after one warm-up)


@dataclass
class PatchingResult:
    residual_s: dict[str, tuple[float, float, int]]  # pair -> (wall s, process CPU s, patched runs): residual heatmap
    one_at_a_time_s: float  # the indirect-object residual heatmap, one patched run per forward
    attribution_s: tuple[float, float]  # (wall s, process CPU s), median
    views: dict[str, tuple[float, int, float | None]]  # view -> (seconds, runs, correlation with the estimate)
    top_heads: list[tuple[int, int, float]]
    n_tokens: int


def timed(compute):
    """(result, wall seconds, process CPU seconds: all threads, what other load cannot inflate much)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = compute()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(lm, log=print) -> PatchingResult:
    from model.analyses import patching

    a, b = (patching.answer_id(lm, w) for w in ANSWERS)
    residual = {}
    for name, (clean, corrupted) in (("indirect object", IOI_16), ("worst case", WORST_16)):
        pair = patching.record_pair(lm, clean, corrupted)
        assert pair.n_tokens == 16, pair.n_tokens
        grid, wall, cpu = timed(partial(patching.exact, lm, pair, a, b, "residual"))
        residual[name] = (wall, cpu, int(grid.ran.sum()))
        log(f"  residual heatmap, {name}, 16 tokens: {wall:.1f} s ({cpu:.1f} s CPU), {int(grid.ran.sum())} runs")
    pair = patching.record_pair(lm, *IOI_16)
    single = patching.exact(lm, pair, a, b, "residual", tokens_per_pass=1).seconds
    log(f"  the same, one patched run per forward: {single:.1f} s")
    patching.attribution(lm, pair, a, b)  # warm-up
    times = sorted(timed(lambda: patching.attribution(lm, pair, a, b))[1:] for _ in range(REPEATS))
    log(f"  attribution patching, 16 tokens: {times[len(times) // 2][0]:.2f} s ({times[len(times) // 2][1]:.2f} s CPU)")
    ioi = patching.record_pair(lm, *IOI)
    estimate = patching.attribution(lm, ioi, a, b)
    views, heads = {}, None
    for view in patching.VIEWS:
        grid = patching.exact(lm, ioi, a, b, view)
        views[view] = (grid.seconds, int(grid.ran.sum()), patching.correlation(grid, estimate[view]))
        log(f"  IOI {view}: {grid.seconds:.1f} s, {int(grid.ran.sum())} runs, r = {views[view][2]:.3f}")
        heads = grid if view == "heads" else heads
    return PatchingResult(residual, single, times[len(times) // 2], views, patching.top_cells(heads, 6),
                          ioi.n_tokens)


def section(lm, log=print) -> tuple[list[str], list[Check]]:
    """The README lines and the targets of this row."""
    r = measure(lm, log)
    lines = ["### Activation patching (default model, median wall)", ""]
    for name, (wall, cpu, runs) in r.residual_s.items():
        lines.append(f"- full residual heatmap, {name} pair, 16 tokens: **{wall:.1f} s** wall, {cpu:.1f} s process "
                     f"CPU ({runs} patched runs)")
    lines.append(f"- the indirect-object heatmap with one patched run per forward: {r.one_at_a_time_s:.1f} s")
    wall, cpu = r.attribution_s
    lines.append(f"- attribution patching (all four views), 16 tokens: **{wall:.2f} s** wall, {cpu:.2f} s process CPU")
    lines.append(f"- indirect-object example ({r.n_tokens} tokens), exact per view, and correlation with the estimate:")
    for view, (seconds, runs, corr) in r.views.items():
        lines.append(f"  - {view}: {seconds:.1f} s, {runs} runs, r = {'n/a' if corr is None else f'{corr:.3f}'}")
    lines.append("- top heads by per-head patching: " + ", ".join(f"L{layer} H{head} {v:+.2f}"
                                                                 for layer, head, v in r.top_heads))
    checks = []
    for name, (wall, cpu, _) in r.residual_s.items():
        checks += [Check(f"residual patching heatmap, 16 tokens, {name}", f"{wall:.1f} s", "<= 15 s", wall <= 15),
                   Check(f"residual patching heatmap, 16 tokens, {name} (CPU time)", f"{cpu:.1f} s", "<= 15 s",
                         cpu <= 15)]
    wall, cpu = r.attribution_s
    checks += [Check("attribution patching, 16 tokens", f"{wall:.2f} s", "<= 2 s", wall <= 2),
               Check("attribution patching, 16 tokens (CPU time)", f"{cpu:.2f} s", "<= 2 s", cpu <= 2)]
    return lines + [""], checks


def main() -> None:
    from bench import report
    from model import load_model

    lm = load_model()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    began = time.perf_counter()
    lines, checks = section(lm)
    print("\n".join(lines))
    print(report.table_text([["target", "measured", "limit", "verdict"]]
                            + [[c.name, c.measured, c.target, c.verdict] for c in checks]))
    print(f"load average at start {load}, at end {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
