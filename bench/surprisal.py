"""What the surprisal strip costs Start here. The page's rerun in AppTest (capture and derived results
cached, as when a widget moves) with the strip and without it (the strip's function swapped for a no-op),
interleaved pair by pair in one process at ~40 and ~256 tokens; target: the strip adds <= 5 %. Also the
strip's first draw for a new prompt (computing the surprisal and its HTML), against that prompt's capture.

    .venv/bin/python -m bench.surprisal [--pairs 30]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "pages"))
TEXT = Path(__file__).with_name("text.txt")
SIZES = (40, 256)
LIMIT = 1.05  # with / without


def prompt_of(tokenizer, n: int) -> str:
    """About n tokens from the start of bench/text.txt."""
    ids = tokenizer(TEXT.read_text())["input_ids"][:n]
    return tokenizer.decode(ids)


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def reruns(prompt: str, pairs: int) -> tuple[list[float], list[float]]:
    """Seconds of Start here's reruns with and without the strip, alternating which goes first."""
    from apptest_session import open_app_page

    from pages.kit import surprisal_strip

    strip = surprisal_strip.strip
    at = open_app_page(prompt=prompt)
    assert not at.exception, [e.value for e in at.exception]
    for _ in range(3):
        at.run()  # warm: the capture, the strip's results and Streamlit's own caches are in place
    shown, bare = [], []

    def without() -> None:
        surprisal_strip.strip = lambda *args, **kwargs: None  # type: ignore[assignment]
        try:
            bare.append(_timed(at.run))
        finally:
            surprisal_strip.strip = strip

    def with_strip() -> None:
        shown.append(_timed(at.run))

    for i in range(pairs):
        for step in ((with_strip, without) if i % 2 == 0 else (without, with_strip)):
            step()
    assert not at.exception and any('class="xr-sup"' in h.proto.body for h in at.get("html"))
    return shown, bare


def first_draw(lm, prompt: str, repeats: int = 5) -> tuple[float, float, int]:
    """(strip's first draw, the capture's forward) in seconds, medians; and the prompt's tokens."""
    from model.analyses.surprisal import surprisal
    from pages.kit.surprisal_strip import _html

    cap = lm.capture(prompt)
    draws, forwards = [], []
    for _ in range(repeats):
        draws.append(_timed(lambda: _html(lm, cap, surprisal(cap), 0, min(cap.n_tokens, 256))))
        forwards.append(_timed(lambda: lm.capture(prompt)))
    return statistics.median(draws), statistics.median(forwards), cap.n_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30)
    args = parser.parse_args()
    from model import load_model

    lm = load_model()
    verdicts = []
    for n in SIZES:
        prompt = prompt_of(lm.tokenizer, n)
        shown, bare = reruns(prompt, args.pairs)
        with_ms, without_ms = 1000 * statistics.median(shown), 1000 * statistics.median(bare)
        ratio = with_ms / without_ms
        ok = ratio <= LIMIT
        verdicts.append(ok)
        draw, forward, tokens = first_draw(lm, prompt)
        print(f"~{n} tokens ({tokens}): Start here rerun with the strip {with_ms:.1f} ms, without {without_ms:.1f} ms "
              f"(medians of {args.pairs} interleaved pairs): ratio {ratio:.3f} (limit {LIMIT:.2f}) "
              f"{'PASS' if ok else 'MISS'}")
        print(f"    first draw for a new prompt: {1000 * draw:.1f} ms (surprisal + HTML), "
              f"{draw / forward:.1%} of its capture's {1000 * forward:.0f} ms")
    print("PASS" if all(verdicts) else "MISS")


if __name__ == "__main__":
    main()
