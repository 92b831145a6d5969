"""Prefix-incremental capture, timed: appending one token to a cached 64-token capture against a full
capture of the same 65 tokens (interleaved medians), and 12 greedy Generate steps at ~20 tokens.
`python -m bench.incremental` runs just these rows.
"""
from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model import LanguageModel
from model.analyses.generation import Decoding, generate

PREFIX, GENERATE_CONTEXT, GENERATE_STEPS, REPEATS = 64, 20, 12, 9
TEXT = Path(__file__).with_name("text.txt")


@dataclass(frozen=True)
class IncrementalResult:
    full_ms: float  # median full capture of PREFIX + 1 tokens
    append_ms: float  # median extension of a cached PREFIX-token capture by one token
    generate_s: float  # median wall time of GENERATE_STEPS greedy steps after GENERATE_CONTEXT tokens

    @property
    def ratio(self) -> float:
        return self.append_ms / self.full_ms


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


def time_incremental(lm: LanguageModel, token_ids: list[int], log: Callable[[str], None]) -> IncrementalResult:
    ids = token_ids[:PREFIX + 1]
    base = lm.capture_ids(ids[:PREFIX])
    full, append = [], []
    for _ in range(REPEATS + 1):  # the first round warms up and is dropped
        full.append(_ms(lambda: lm.capture_ids(ids)))
        append.append(_ms(lambda: lm.extend_capture(base, ids)))
    context = token_ids[:GENERATE_CONTEXT]
    gen = [_ms(lambda: generate(lm, context, GENERATE_STEPS, Decoding(greedy=True))) / 1000 for _ in range(4)]
    result = IncrementalResult(statistics.median(full[1:]), statistics.median(append[1:]), statistics.median(gen[1:]))
    log(f"  append 1 token to a cached {PREFIX}-token capture: {result.append_ms:.1f} ms vs full capture "
        f"{result.full_ms:.1f} ms ({result.ratio:.2f}x); {GENERATE_STEPS} greedy Generate steps at "
        f"{GENERATE_CONTEXT} tokens: {result.generate_s:.2f} s")
    return result


def main() -> None:
    from model import load_model

    lm = load_model()
    time_incremental(lm, lm.tokenizer(TEXT.read_text())["input_ids"], lambda m: print(m, flush=True))


if __name__ == "__main__":
    sys.exit(main())
