"""Prompt sets (issue 29), on the built-in indirect-object set of the default model, in one process:

- per-head direct attribution over 100 prompts against one batched forward over the same tokens
  (the same padded passes, nothing read): target <= 1.5x;
- attribution patching over 100 pairs, batched across pairs, against the 100 pairs one at a time
  (each recorded and estimated as the one-pair page does): target <= 0.4x;
- exact residual patching: the set's per-pair cost against the one-pair heatmap on the same pairs
  (target <= 1.1x), and the whole 100-pair set's time;
- memory: the peak resident memory above the loaded model while the set's direct and attribution
  runs go over 100 and over 500 prompts (each size in a fresh process).

Run: `.venv/bin/python -m bench.prompt_sets` (~8 min on 2 cores).
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench.report import Check  # noqa: E402

SET = "Indirect object (IOI)"
N, ROUNDS, SAME_PAIRS = 100, 3, 8
TARGETS = {"heads": 1.5, "attribution": 0.4, "exact": 1.1}


def _drain(parts) -> dict:
    out: dict = {}
    for part in parts:
        out.update(part)
    return out


def _items(lm, n: int):
    from model.analyses.sets.prompts import builtin, check

    return check(lm, builtin(SET, lm, n), SET).items


def heads_ratio(lm, items, log=print) -> tuple[float, float]:
    """(median s of the per-head attribution run, median s of the bare batched forwards)."""
    from model.analyses.sets.batches import groups, padded
    from model.analyses.sets.direct import direct_parts

    clean = [dataclasses.replace(item, corrupted_ids=None) for item in items]  # the clean prompts only
    passes = [padded([items[i].ids for i in group]) for group in groups([len(it.ids) for it in items])]
    run, bare = [], []
    for round_ in range(ROUNDS):
        began = time.perf_counter()
        _drain(direct_parts(lm, clean))
        run.append(time.perf_counter() - began)
        began = time.perf_counter()
        for rows in passes:
            lm.forward(rows, last_only=True)
        bare.append(time.perf_counter() - began)
        log(f"  round {round_ + 1}: head attribution {run[-1]:.2f} s, bare batched forward {bare[-1]:.2f} s")
    return statistics.median(run), statistics.median(bare)


def _one_pair_estimate(lm, item) -> None:
    from model.analyses.patching import PatchPair, attribution, record

    pair = PatchPair(record(lm, list(item.ids)), record(lm, list(item.corrupted_ids)), lm.summary)
    attribution(lm, pair, item.answer, item.contrast)


def attribution_ratio(lm, items, log=print) -> tuple[float, float]:
    """(s for the set's batched estimate, s for the pairs one at a time): one round each, interleaved."""
    from model.analyses.sets.patching import attribution_parts

    began = time.perf_counter()
    _drain(attribution_parts(lm, items))
    batched = time.perf_counter() - began
    began = time.perf_counter()
    for item in items:
        _one_pair_estimate(lm, item)
    alone = time.perf_counter() - began
    log(f"  attribution patching over {len(items)} pairs: batched {batched:.1f} s, one at a time {alone:.1f} s")
    return batched, alone


def exact_costs(lm, items, log=print) -> tuple[float, float, float]:
    """(set s per pair, one-pair heatmap s per pair, on the same SAME_PAIRS pairs; whole set s)."""
    from model.analyses.patching import PatchPair, exact, record
    from model.analyses.sets.patching import exact_parts

    same = items[:SAME_PAIRS]
    in_set, alone = [], []
    for item in same:  # alternate, pair by pair: the machine's load moves both alike
        began = time.perf_counter()
        _drain(exact_parts(lm, [item], "residual"))
        in_set.append(time.perf_counter() - began)
        began = time.perf_counter()
        pair = PatchPair(record(lm, list(item.ids)), record(lm, list(item.corrupted_ids)), lm.summary)
        exact(lm, pair, item.answer, item.contrast, "residual")
        alone.append(time.perf_counter() - began)
    began = time.perf_counter()
    _drain(exact_parts(lm, items, "residual"))
    whole = time.perf_counter() - began
    log(f"  exact residual patching: {statistics.mean(in_set):.2f} s per pair in a set, "
        f"{statistics.mean(alone):.2f} s alone; the whole {len(items)}-pair set {whole:.0f} s")
    return statistics.mean(in_set), statistics.mean(alone), whole


def peak_above_model(n: int) -> dict:
    """In this process: the set's direct and attribution runs over n prompts; MB of peak RSS above the
    RSS once the model loaded and the set was built."""
    from model import load_model
    from model.analyses.sets.direct import direct_parts
    from model.analyses.sets.patching import attribution_parts

    lm = load_model()
    items = _items(lm, n)
    base = _rss_mb()
    _drain(direct_parts(lm, items))
    _drain(attribution_parts(lm, items))
    return {"n": len(items), "tokens": sum(len(i.ids) for i in items),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(log=print) -> list[dict]:
    found = []
    for n in (100, 500):
        out = subprocess.run([sys.executable, "-m", "bench.prompt_sets", "--memory", str(n)], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parents[1])
        found.append(json.loads(out.stdout.strip().splitlines()[-1]))
        log(f"  {found[-1]['n']} prompts ({found[-1]['tokens']:,} tokens): peak {found[-1]['peak_mb']:.0f} MB above the model")
    return found


def section(lm, log=print) -> tuple[list[str], list[Check]]:
    items = _items(lm, N)
    run, bare = heads_ratio(lm, items, log)
    batched, alone = attribution_ratio(lm, items, log)
    in_set, one, whole = exact_costs(lm, items, log)
    sizes = memory(log)
    r_heads, r_attr, r_exact = run / bare, batched / alone, in_set / one
    lines = [f"### Prompt sets ({SET}, {N} prompts, {sum(len(i.ids) for i in items):,} tokens)", "",
             f"- per-head direct attribution {run:.2f} s, bare batched forward {bare:.2f} s: **{r_heads:.2f}x**",
             f"- attribution patching over {N} pairs: batched {batched:.1f} s, one at a time {alone:.1f} s: **{r_attr:.2f}x**",
             f"- exact residual patching: {in_set:.2f} s per pair in a set vs {one:.2f} s alone (**{r_exact:.2f}x**, "
             f"{SAME_PAIRS} pairs); the whole {N}-pair set **{whole:.0f} s**",
             "- peak memory above the loaded model: " + ", ".join(f"{m['n']} prompts {m['peak_mb']:.0f} MB" for m in sizes), ""]
    grows = sizes[1]["peak_mb"] / max(sizes[0]["peak_mb"], 1.0)
    checks = [Check(f"per-head attribution, {N} prompts vs one batched forward", f"{r_heads:.2f}x", f"<= {TARGETS['heads']}x",
                    r_heads <= TARGETS["heads"]),
              Check(f"attribution patching, {N} pairs batched vs one at a time", f"{r_attr:.2f}x",
                    f"<= {TARGETS['attribution']}x", r_attr <= TARGETS["attribution"]),
              Check("exact residual patching per pair, in a set vs alone", f"{r_exact:.2f}x", f"<= {TARGETS['exact']}x",
                    r_exact <= TARGETS["exact"]),
              Check("peak memory, 500 prompts vs 100", f"{grows:.2f}x", "bounded (<= 1.5x)", grows <= 1.5)]
    return lines, checks


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        print(json.dumps(peak_above_model(int(sys.argv[2]))))
        return
    from bench import report
    from model import load_model

    lm = load_model()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines, checks = section(lm)
    print("\n".join(lines))
    print(report.table_text([["target", "measured", "limit", "verdict"]]
                            + [[c.name, c.measured, c.target, c.verdict] for c in checks]))
    print(f"load average at start {load}, at end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
