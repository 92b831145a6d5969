"""Captures asked for at once (a classroom): N sessions' ~40-token prompts captured one after the
other against the same N asked for together, which share padded passes (model/engine/batching.py). Prints
wall and process CPU seconds per capture, and the ratio.

    .venv/bin/python bench/batching.py [--sessions 4 8] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prompts(n: int, round_: int) -> list[str]:
    """A different ~40-token prompt per session and round: every capture is a real pass."""
    return [f"Visitor {i} asks in round {round_} about the lighthouse keeper who counted the ships every "
            f"night and wrote their names in a book, then read them aloud to {i + round_} children" for i in range(n)]


def one_by_one(lm, texts: list[str]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for text in texts:
        lm.capture(text)
    return time.perf_counter() - wall, time.process_time() - cpu


def together(lm, texts: list[str]) -> tuple[float, float]:
    """All at once from N threads, released together while the model is busy (as in a classroom)."""
    threads = [threading.Thread(target=lm.capture, args=(t,)) for t in texts]
    cpu, wall = time.process_time(), time.perf_counter()
    with lm.lock:
        for t in threads:
            t.start()
        while len(lm._queue._pending) < len(texts):
            time.sleep(0.001)
    for t in threads:
        t.join()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from model.engine.threads import configure

    configure()  # the app's thread settings
    from model import load_model

    lm = load_model()
    lm.capture(prompts(1, 99)[0])  # warm-up
    n_tokens = len(lm.encode(prompts(1, 0)[0]))
    for n in args.sessions:
        alone, joint = [], []
        for r in range(args.repeats):
            alone.append(one_by_one(lm, prompts(n, 2 * r)))
            joint.append(together(lm, prompts(n, 2 * r + 1)))
        (aw, ac), (jw, jc) = ([statistics.median(x) / n for x in zip(*runs)] for runs in (alone, joint))
        print(f"{n} sessions x ~{n_tokens} tokens, per capture: one by one {1000 * aw:.0f} ms wall / "
              f"{1000 * ac:.0f} ms CPU; together {1000 * jw:.0f} ms wall / {1000 * jc:.0f} ms CPU "
              f"(throughput x{aw / jw:.2f} wall, x{ac / jc:.2f} CPU)", flush=True)


if __name__ == "__main__":
    main()
