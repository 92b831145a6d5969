"""Row 7: peak resident memory, each scenario in a fresh subprocess so one cannot inflate another.

`python -m bench.memory capture 1024` or `python -m bench.memory cache 512 10` prints one JSON line.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = Path(__file__).with_name("text.txt")


def _peak_mb() -> float:
    """ru_maxrss (KiB on Linux). Linux carries the parent's high-water mark across fork+exec into
    it, so a big parent inflates it: run.py measures memory first, while it is still small."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float:
    """VmHWM: the peak resident set of this process's own address space (reset at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _model_and_ids():
    from model import load_model

    lm = load_model()
    return lm, lm.tokenizer(TEXT.read_text())["input_ids"]


def capture_peak(n_tokens: int) -> dict:
    """Load the model, capture one n-token prompt; peak RSS before and after the capture."""
    start = _peak_mb()
    lm, ids = _model_and_ids()
    loaded = _hwm_mb()
    cap = lm.capture_ids(ids[:n_tokens])
    return {"tokens": cap.n_tokens, "capture_mb": cap.nbytes / 2**20, "after_load_mb": loaded,
            "hwm_mb": _hwm_mb(), "peak_mb": _peak_mb(), "inherited_mb": start}


def cache_peak(n_tokens: int, n_prompts: int) -> dict:
    """n different n-token prompts through a CaptureCache with the default budget."""
    from model.engine.capture_cache import CaptureCache

    start = _peak_mb()
    lm, ids = _model_and_ids()
    cache = CaptureCache()
    step = max(1, (len(ids) - n_tokens) // max(1, n_prompts - 1))
    worst = 0
    for i in range(n_prompts):
        window = ids[i * step:i * step + n_tokens]
        cache.get_or_compute(f"window {i}", lambda w=window: lm.capture_ids(w))
        worst = max(worst, cache.nbytes)
    return {"budget_mb": cache.budget_bytes / 2**20, "final_mb": cache.nbytes / 2**20, "max_mb": worst / 2**20,
            "kept": len(cache), "computed": cache.computed, "hwm_mb": _hwm_mb(), "peak_mb": _peak_mb(),
            "inherited_mb": start}


def run_subprocess(*args: str, timeout: float = 600) -> dict:
    """Run this module in a fresh interpreter and parse its JSON line (or report why it failed)."""
    proc = subprocess.run([sys.executable, "-m", "bench.memory", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


if __name__ == "__main__":
    kind, *numbers = sys.argv[1:]
    out = capture_peak(int(numbers[0])) if kind == "capture" else cache_peak(int(numbers[0]), int(numbers[1]))
    print(json.dumps(out), flush=True)
