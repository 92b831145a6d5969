"""Integrated gradients batched: 32 steps at 64 tokens (Captum's IntegratedGradients, the steps run as
rows of one pass, plus its endpoint passes) against 32 single forward+backward passes run one after
another (gradient × input 32 times, through the same door). The two alternate, ROUNDS times, in one
process; the ratio of the medians is the row's target (<= 0.8x). Run: `.venv/bin/python -m bench.saliency`.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench.report import Check  # noqa: E402

TEXT = Path(__file__).with_name("text.txt")
N_TOKENS, STEPS, ROUNDS, TARGET = 64, 32, 3, 0.8


def measure(lm, log=print) -> tuple[float, float, float]:
    """(median s of integrated gradients, median s of the single passes, IG's convergence delta)."""
    from model.analyses.saliency import gradient_x_input, integrated_gradients

    ids = lm.encode(TEXT.read_text())[:N_TOKENS]
    target = int(lm.forward(ids, last_only=True).logits.argmax())
    gradient_x_input(lm, ids, target, None)  # warm-up
    batched, single, delta = [], [], 0.0
    for round_ in range(ROUNDS):
        began = time.perf_counter()
        delta = integrated_gradients(lm, ids, target, None, steps=STEPS).delta or 0.0
        batched.append(time.perf_counter() - began)
        began = time.perf_counter()
        for _ in range(STEPS):
            gradient_x_input(lm, ids, target, None)
        single.append(time.perf_counter() - began)
        log(f"  round {round_ + 1}: integrated gradients {batched[-1]:.2f} s, {STEPS} single passes {single[-1]:.2f} s")
    return statistics.median(batched), statistics.median(single), delta


def section(lm, log=print) -> tuple[list[str], list[Check]]:
    """The README lines and the target of this row."""
    batched, single, delta = measure(lm, log)
    ratio = batched / single
    lines = ["### Input saliency (default model, median of interleaved rounds)", "",
             f"- integrated gradients, {STEPS} steps at {N_TOKENS} tokens (batched, endpoints included): "
             f"**{batched:.2f} s**; {STEPS} single forward+backward passes: {single:.2f} s; "
             f"ratio **{ratio:.2f}x**; convergence delta {delta:+.3f}", ""]
    return lines, [Check(f"integrated gradients {STEPS} steps vs {STEPS} single passes, {N_TOKENS} tokens",
                         f"{ratio:.2f}x", f"<= {TARGET}x", ratio <= TARGET)]


def main() -> None:
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
