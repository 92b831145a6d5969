"""What the surprisal strip costs Start here. The page's rerun in AppTest (capture and derived results
cached, as when a widget moves) with the strip and without it (the strip's function swapped for a no-op),
interleaved pair by pair in one process at ~40 and ~256 tokens; target: the strip adds <= 5 %. The verdict
reads the script thread's CPU time (other processes on a shared machine do not inflate it): the median of
the paired differences over the median run without the strip; the wall times of the whole AppTest run
and the strip's own time inside the run are printed beside it. Also the strip's first draw for a new
prompt (computing the surprisal and its HTML), against that prompt's capture.

    .venv/bin/python -m bench.surprisal [--pairs 40]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "pages"))
TEXT = Path(__file__).with_name("text.txt")
SIZES = (40, 256)
LIMIT = 1.05  # with / without


def prompt_of(tokenizer, n: int) -> str:
    """About n tokens from the start of bench/text.txt."""
    ids = tokenizer(TEXT.read_text())["input_ids"][:n]
    return tokenizer.decode(ids)


class Runs(NamedTuple):
    """Per rerun, seconds: the whole AppTest run (wall), the script thread's CPU, the strip inside it."""

    wall: list[float]
    cpu: list[float]
    strip: list[float]


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


@contextmanager
def script_cpu(into: list[float]) -> Iterator[None]:
    """Record each AppTest script run's CPU time, read on its own thread."""
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    real = LocalScriptRunner._run_script_thread

    def timed(self) -> None:
        start = time.thread_time()
        try:
            real(self)
        finally:
            into.append(time.thread_time() - start)

    LocalScriptRunner._run_script_thread = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalScriptRunner._run_script_thread = real  # type: ignore[method-assign]


def reruns(prompt: str, pairs: int) -> tuple[Runs, Runs]:
    """Start here's reruns (with the strip, without it), alternating which goes first."""
    from apptest_session import open_app_page

    from pages.kit import surprisal_strip

    real = surprisal_strip.strip
    at = open_app_page(prompt=prompt)
    assert not at.exception, [e.value for e in at.exception]
    for _ in range(3):
        at.run()  # warm: the capture, the strip's results and Streamlit's own caches are in place
    shown, bare, cpu = Runs([], [], []), Runs([], [], []), list[float]()

    def strip(*args, **kwargs) -> None:
        shown.strip.append(_timed(lambda: real(*args, **kwargs)))

    def run(into: Runs, replacement: Callable[..., None]) -> None:
        surprisal_strip.strip = replacement  # type: ignore[assignment]
        try:
            into.wall.append(_timed(at.run))
            into.cpu.append(cpu[-1])
        finally:
            surprisal_strip.strip = real

    with script_cpu(cpu):
        for i in range(pairs):
            gc.collect()  # outside the timed runs: a collection inside one would land on either side at random
            gc.disable()
            order = [(shown, strip), (bare, lambda *args, **kwargs: None)]
            for into, replacement in order if i % 2 == 0 else order[::-1]:
                run(into, replacement)
            gc.enable()
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
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()
    from model import load_model

    lm = load_model()
    verdicts = []
    for n in SIZES:
        prompt = prompt_of(lm.tokenizer, n)
        shown, bare = reruns(prompt, args.pairs)
        cpu_with, cpu_without = (1000 * statistics.median(r.cpu) for r in (shown, bare))
        wall_with, wall_without = (1000 * statistics.median(r.wall) for r in (shown, bare))
        extra = 1000 * statistics.median(w - b for w, b in zip(shown.cpu, bare.cpu))  # paired: drift cancels
        ratio = 1 + extra / cpu_without
        ok = ratio <= LIMIT
        verdicts.append(ok)
        draw, forward, tokens = first_draw(lm, prompt)
        print(f"~{n} tokens ({tokens}), {args.pairs} interleaved pairs: Start here rerun, script CPU "
              f"{cpu_with:.1f} ms with the strip, {cpu_without:.1f} ms without (medians); the strip adds "
              f"{extra:+.2f} ms (median paired difference): ratio {ratio:.3f} (limit {LIMIT:.2f}) {'PASS' if ok else 'MISS'}")
        print(f"    wall of the AppTest run {wall_with:.1f} vs {wall_without:.1f} ms (ratio {wall_with / wall_without:.3f}); "
              f"the strip's own call {1000 * statistics.median(shown.strip):.2f} ms "
              f"({statistics.median(shown.strip) * 1000 / cpu_without:.1%} of the run without it)")
        print(f"    first draw for a new prompt: {1000 * draw:.1f} ms (surprisal + HTML), "
              f"{draw / forward:.1%} of its capture's {1000 * forward:.0f} ms")
    print("PASS" if all(verdicts) else "MISS")


if __name__ == "__main__":
    main()
