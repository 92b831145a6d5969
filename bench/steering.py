"""Steering's generation, timed: 20 steered + 20 default tokens as one batch of two rows per step
(model/analyses/steering.py), with the crossed pass that reads each text under the other model, against
one plain 20-token generation (the Generate page's loop), measured interleaved in one run (medians).
Target: the pair costs at most 1.3x the single generation.
`python -m bench.steering` runs just this row.
"""
from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import LanguageModel
from model.analyses import steering as steer
from model.analyses.generation import Decoding, generate

CONTEXT, STEPS, REPEATS, TARGET = 20, 20, 7, 1.3
TEXT = Path(__file__).with_name("text.txt")


@dataclass(frozen=True)
class SteeringResult:
    single_s: float  # median one 20-token generation
    pair_s: float  # median 20 default + 20 steered tokens, batched

    @property
    def ratio(self) -> float:
        return self.pair_s / self.single_s


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_steering(lm: LanguageModel, token_ids: list[int], log: Callable[[str], None]) -> SteeringResult:
    ids = token_ids[:CONTEXT]
    vector = np.random.default_rng(0).standard_normal(lm.summary.d_model).astype(np.float32)
    steering = steer.Steering(vector, lm.summary.n_layers // 5, 4.0)
    decoding = Decoding(greedy=False, temperature=1.0, seed=0)
    eos = lm.tokenizer.eos_token_id
    lm.tokenizer.eos_token_id = None  # every run writes all STEPS tokens (no early stop skews the ratio)
    try:
        single, pair = [], []
        for _ in range(REPEATS + 1):  # the first round warms up and is dropped
            single.append(_seconds(lambda: generate(lm, ids, STEPS, decoding)))
            pair.append(_seconds(lambda: steer.generate_pair(lm, ids, steering, STEPS, decoding)))
    finally:
        lm.tokenizer.eos_token_id = eos
    result = SteeringResult(statistics.median(single[1:]), statistics.median(pair[1:]))
    verdict = "PASS" if result.ratio <= TARGET else "MISS"
    log(f"  steering: {STEPS} default + {STEPS} steered tokens (one batch of two rows) {result.pair_s:.2f} s vs one "
        f"{STEPS}-token generation {result.single_s:.2f} s at {CONTEXT} tokens of context: {result.ratio:.2f}x "
        f"(target <= {TARGET}x) {verdict}")
    return result


def main() -> None:
    from model import load_model

    lm = load_model()
    time_steering(lm, lm.tokenizer(TEXT.read_text())["input_ids"], lambda m: print(m, flush=True))


if __name__ == "__main__":
    sys.exit(main())
