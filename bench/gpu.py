"""The GPU rows: the default model on CUDA in float32, bfloat16 and float16, each timed like rows 1-4
(bare forward, forward with outputs, our capture) plus the prefix-incremental capture. Prints a
markdown block for bench/README.md's GPU section; a machine without CUDA prints why and exits 1.

    .venv/bin/python bench/gpu.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench import incremental, report  # noqa: E402
from bench.forward import time_forwards  # noqa: E402
from model import load_model  # noqa: E402

TEXT = Path(__file__).with_name("text.txt")
DTYPES = ("float32", "bfloat16", "float16")


def log(message: str) -> None:
    print(message, flush=True)


def dtype_block(dtype: str) -> list[str]:
    """Rows 1-3 and the incremental capture of the default model on CUDA in one dtype."""
    lm = load_model(device="cuda", dtype=dtype)
    ids = lm.tokenizer(TEXT.read_text())["input_ids"]
    log(f"{dtype}: rows 1-3 ...")
    fwd = time_forwards(lm, ids, log)
    inc = incremental.time_incremental(lm, ids, log)
    del lm
    torch.cuda.empty_cache()
    return ([f"#### {dtype}", ""] + report.forward_table(fwd)
            + ["", f"- append 1 token to a cached {incremental.PREFIX}-token capture: {inc.append_ms:.1f} ms, "
               f"full capture {inc.full_ms:.1f} ms ({inc.ratio:.2f}x)",
               f"- {incremental.GENERATE_STEPS} greedy Generate steps at {incremental.GENERATE_CONTEXT} tokens: "
               f"{inc.generate_s:.2f} s", ""])


def main() -> int:
    if not torch.cuda.is_available():
        print("No CUDA device: the GPU rows need one.")
        return 1
    machine = report.machine()
    lines = ["### GPU rows", "", "- " + "; ".join(f"{k}: {v}" for k, v in machine.items()), ""]
    for dtype in DTYPES:
        lines += dtype_block(dtype)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
