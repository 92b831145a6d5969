"""Long prompts: at each length, a bare forward with the fast (sdpa) kernel against `lm.capture_ids`,
interleaved in one process so a shared machine's noise lands on both; the peak resident memory of a
capture above the loaded model (a fresh subprocess); one head's pattern on demand. Prints every
target with PASS/MISS. `python -m bench.long [--lengths 1024 2048 4096] [--quick]`.

A capture whose projected size would not fit in half the free memory is skipped with its size, not run:
this box is shared, and a capture that keeps every head's pattern grows with T^2.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench/run.py: no spinning workers on shared cores

import torch

from model import LanguageModel, load_model
from model.engine.attention import swapped
from model.engine.language_model import PATTERNS_ON_DEMAND_TOKENS
from model.engine.limits import free_ram

TEXT = Path(__file__).with_name("text.txt")
CAPTURE_RATIO, PEAK_MB, HEAD_MS = 1.05, 1.5 * 1024, 100.0  # the targets (peak and head at 4,096)
HEAD_REPEATS = 5


def long_ids(lm: LanguageModel, n: int) -> list[int]:
    """n tokens of bench/text.txt, the text repeated as often as it takes."""
    ids = lm.tokenizer(TEXT.read_text())["input_ids"]
    return (ids * (n // len(ids) + 1))[:n]


def projection(lm: LanguageModel) -> Callable[[int], float]:
    """A capture's bytes at T tokens, a*T + b*T^2 through two captures' sizes past the length from which
    patterns come on demand (a family that keeps whole patterns shows its T^2 term)."""
    first = PATTERNS_ON_DEMAND_TOKENS
    (t1, s1), (t2, s2) = ((t, lm.capture_ids(long_ids(lm, t)).nbytes) for t in (first, first + 128))
    b = (s2 / t2 - s1 / t1) / (t2 - t1)
    a = s1 / t1 - b * t1
    return lambda n: a * n + b * n * n


def too_big(need: float) -> str | None:
    """None when a capture of `need` bytes fits in half the free memory, else why it is skipped."""
    free = free_ram()
    return None if need <= free / 2 else f"skipped: a capture needs ~{need / 2**30:.1f} GB, {free / 2**30:.1f} GB free"


def _timed(fn: Callable[[], object]) -> float:
    """Seconds of one call, a GPU's queued work included; the outputs are dropped before the next row."""
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    del out
    gc.collect()
    return seconds


def _runners(lm: LanguageModel, ids: list[int]) -> dict[str, Callable[[], object]]:
    x = torch.tensor([ids], dtype=torch.long, device=lm.device)

    def bare():
        with lm.lock, swapped(lm.model, "sdpa"), torch.inference_mode():
            return lm.model(input_ids=x, use_cache=False).logits

    return {"bare sdpa": bare, "capture": lambda: lm.capture_ids(ids)}


def time_length(lm: LanguageModel, n: int, repeats: int) -> dict[str, float]:
    """Median seconds of each row at n tokens, interleaved, after one warm-up of each."""
    runners = _runners(lm, long_ids(lm, n))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for fn in runners.values():
        _timed(fn)
    for _ in range(repeats):
        for name, fn in runners.items():
            samples[name].append(_timed(fn))
    return {name: statistics.median(s) for name, s in samples.items()}


def head_ms(lm: LanguageModel, n: int) -> float:
    """Median ms of one head's whole pattern on demand (a middle layer's first head), after its pass."""
    patterns = lm.patterns(long_ids(lm, n))
    layer = lm.summary.n_layers // 2
    return 1000 * statistics.median(_timed(lambda: patterns.head(layer, 0)) for _ in range(HEAD_REPEATS))


def _hwm_mb() -> float:
    """VmHWM: this process's peak resident set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak(n: int) -> dict:
    """In a fresh process: the peak resident memory a capture of n tokens adds to the loaded model."""
    lm = load_model()
    skipped = too_big(projection(lm)(n))
    if skipped:
        return {"skipped": skipped}
    gc.collect()
    loaded = _hwm_mb()
    cap = lm.capture_ids(long_ids(lm, n))
    return {"above_model_mb": _hwm_mb() - loaded, "capture_mb": cap.nbytes / 2**20}


def peak_in_subprocess(n: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.long", "--peak", str(n)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(lengths: list[int], repeats: int) -> None:
    top = max(lengths)
    print(f"peak memory at {top:,} tokens (fresh process)…", flush=True)
    memory = peak_in_subprocess(top)
    lm = load_model()
    print(f"{lm.name}: {lm.summary.n_layers} layers, {lm.device} {lm.dtype_name}, {torch.get_num_threads()} threads, "
          f"{repeats} repeat(s)", flush=True)
    size = projection(lm)
    for n in lengths:
        skipped = too_big(size(n))
        if skipped:
            print(f"  {n:6,} tokens: capture {skipped}", flush=True)
            continue
        row = time_length(lm, n, repeats)
        ratio = row["capture"] / row["bare sdpa"]
        print(f"  {n:6,} tokens: bare sdpa {1000 * row['bare sdpa']:8.0f} ms, capture {1000 * row['capture']:8.0f} ms, "
              f"ratio {ratio:.2f}  {_verdict(ratio <= CAPTURE_RATIO)} (target <= {CAPTURE_RATIO}x)", flush=True)
    if "above_model_mb" in memory:
        mb = memory["above_model_mb"]
        print(f"  peak above the model at {top:,} tokens: {mb:,.0f} MB (capture holds {memory['capture_mb']:,.0f} MB)  "
              f"{_verdict(mb <= PEAK_MB)} (target <= {PEAK_MB:,.0f} MB at 4,096)")
    else:
        print(f"  peak above the model at {top:,} tokens: {memory.get('skipped') or memory.get('error')}")
    ms = head_ms(lm, top)
    print(f"  one head's pattern at {top:,} tokens: {ms:.1f} ms  {_verdict(ms <= HEAD_MS)} (target <= {HEAD_MS:.0f} ms at 4,096)")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat at 1,024 and 2,048 tokens")
    parser.add_argument("--peak", type=int, help=argparse.SUPPRESS)  # the memory row's subprocess
    return parser.parse_args()


if __name__ == "__main__":
    args = _arguments()
    if args.peak:
        print(json.dumps(peak(args.peak)), flush=True)
    elif args.quick:
        main([1024, 2048], 1)
    else:
        main(args.lengths, args.repeats)
