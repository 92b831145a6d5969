"""Integrated gradients batched: 32 steps at 64 tokens (Captum's IntegratedGradients, the steps run as
rows of one pass, plus its endpoint passes) against 32 single forward+backward passes run one after
another (gradient × input 32 times, through the same door). The two alternate, ROUNDS times, in one
process; the ratio of the medians is the row's target (<= 0.8x). Run: `.venv/bin/python -m bench.saliency`.

`--long N [N ...]`: gradient × input on N-token prompts, each in a fresh process at the app's thread
setting, with every block's backward state kept and with the blocks recomputed (what the gradient
door does past its share of the free memory): seconds, peak memory above the loaded model, and
whether the two gave the same values (no targets; issue 30's "never an out-of-memory crash").
"""
from __future__ import annotations

import argparse
import hashlib
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


def one_long(n_tokens: int, recomputed: bool) -> None:
    """In this fresh process: gradient × input at n_tokens, blocks recomputed or kept; prints seconds,
    peak MB above the loaded model and a checksum line, for `long_rows`."""
    from model.engine import threads

    threads.configure()
    from bench.felt_long import long_prompts
    from model import load_model
    from model.analyses.saliency import gradient_x_input
    from model.engine import limits

    lm = load_model()
    limits.backward_budget = (lambda: 0) if recomputed else (lambda: 1 << 50)  # type: ignore[assignment]
    (ids,) = long_prompts(lm.tokenizer, n_tokens, 1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    values = gradient_x_input(lm, ids, ids[-1], None).values
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    print(f"RESULT {seconds:.1f} {peak:.0f} {hashlib.sha256(values.tobytes()).hexdigest()[:16]}")


def long_rows(lengths: list[int], log=print) -> None:
    """gradient × input at each length, kept then recomputed, each in a fresh process."""
    log(f"{'tokens':>7} {'blocks':<11} {'seconds':>8} {'peak above the model':>21}  same values")
    for n_tokens in lengths:
        seen = {}
        for mode in ("kept", "recomputed"):
            out = subprocess.run([sys.executable, "-m", "bench.saliency", "--one", str(n_tokens), mode],
                                 capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
            seconds, peak, digest = out.stdout.split("RESULT ")[-1].split()
            seen[mode] = digest
            same = "" if mode == "kept" else ("yes" if seen["kept"] == digest else "NO")
            log(f"{n_tokens:>7,} {mode:<11} {float(seconds):>7.1f}s {float(peak):>18,.0f} MB  {same}")


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, nargs="+", help="gradient × input at these lengths, kept vs recomputed")
    parser.add_argument("--one", nargs=2, metavar=("TOKENS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_long(int(args.one[0]), args.one[1] == "recomputed")
    elif args.long:
        long_rows(args.long)
    else:
        main()
