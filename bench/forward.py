"""Rows 1-4: one forward pass four ways (bare, with outputs, our capture, TransformerLens), timed
interleaved so the noise of a shared machine lands on every row alike.
"""
from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from model import LanguageModel
from model.engine import default_model

ROWS = ("bare forward", "forward + attentions + hidden states", "lm.capture_ids", "TransformerLens run_with_cache")
LENGTHS = (16, 64, 256, 1024)
REPEATS = {16: 15, 64: 11, 256: 7, 1024: 5}  # fewer at 1024 so the whole run stays near 10 minutes


@dataclass
class ForwardResult:
    """Median seconds per (row, length); None where a row could not run (reason in `notes`)."""

    seconds: dict[tuple[str, int], float | None] = field(default_factory=dict)  # wall clock
    cpu_seconds: dict[tuple[str, int], float | None] = field(default_factory=dict)  # process CPU time
    samples: dict[tuple[str, int], list[tuple[float, float]]] = field(default_factory=dict)  # (wall, cpu)
    notes: dict[str, str] = field(default_factory=dict)
    flops_formula: str = ""
    flops: dict[int, float] = field(default_factory=dict)  # model FLOPs of one pass of T tokens


def non_embedding_params(lm: LanguageModel) -> int:
    """Parameters outside the (tied) token embedding: the N of the 2N FLOPs-per-token rule."""
    embed = lm.model.get_input_embeddings().weight
    return sum(p.numel() for p in lm.model.parameters() if p is not embed)


def pass_flops(lm: LanguageModel, n_tokens: int) -> float:
    """Forward FLOPs of one pass: T x (2N + 2*2*n_layers*T*d_model), N = non-embedding params."""
    cfg = lm.summary
    per_token = 2 * non_embedding_params(lm) + 2 * 2 * cfg.n_layers * n_tokens * cfg.d_model
    return float(n_tokens * per_token)


def load_lens(lm: LanguageModel):
    """TransformerLens 4.x bridge over the same converted folder, or (None, why it cannot run)."""
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except Exception as exc:  # not installed / import error: report, never fake the row
        return None, f"transformer_lens import failed: {type(exc).__name__}: {exc}"
    try:
        bridge = TransformerBridge.boot_transformers(
            str(default_model.converted_dir()), device=lm.device, dtype=lm.dtype
        )
        return bridge, f"transformer-lens {_version('transformer-lens')} TransformerBridge.boot_transformers"
    except Exception as exc:
        return None, f"TransformerBridge.boot_transformers failed: {type(exc).__name__}: {exc}"


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _runners(lm: LanguageModel, bridge, ids: list[int]) -> dict[str, Callable[[], object]]:
    """One zero-argument callable per row; each returns its outputs so they are not optimised away."""
    x = torch.tensor([ids], dtype=torch.long, device=lm.device)

    def bare():
        with lm.lock, torch.inference_mode():
            return lm.model(input_ids=x, use_cache=False).logits

    def outputs():
        with lm.lock, torch.inference_mode():
            return lm.model(input_ids=x, use_cache=False, output_attentions=True, output_hidden_states=True)

    def capture():
        return lm.capture_ids(ids)

    runners = {ROWS[0]: bare, ROWS[1]: outputs, ROWS[2]: capture}
    if bridge is not None:
        def lens():
            with torch.inference_mode():
                return bridge.run_with_cache(x)
        runners[ROWS[3]] = lens
    return runners


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call. CPU time (all threads) is what other load cannot inflate much."""
    cpu, start = time.process_time(), time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    del out
    gc.collect()  # free the previous row's GB-sized outputs before the next row is timed
    return seconds, cpu


def time_forwards(lm: LanguageModel, token_ids: list[int], log: Callable[[str], None]) -> ForwardResult:
    """Medians of REPEATS interleaved runs per length, after one warm-up of every row."""
    result = ForwardResult()
    bridge, result.notes[ROWS[3]] = load_lens(lm)
    result.flops_formula = (
        f"FLOPs(T) = T * (2*N + 2*2*n_layers*T*d_model), N = {non_embedding_params(lm):,} non-embedding "
        f"parameters (tied embedding/unembedding excluded), n_layers = {lm.summary.n_layers}, "
        f"d_model = {lm.summary.d_model}"
    )
    for n in LENGTHS:
        ids = token_ids[:n]
        if len(ids) < n:
            raise ValueError(f"bench text gives only {len(token_ids)} tokens, {n} needed")
        runners = _runners(lm, bridge, ids)
        for fn in runners.values():  # warm-up
            _timed(fn)
        for name in runners:
            result.samples[(name, n)] = []
        for _ in range(REPEATS[n]):
            for name, fn in runners.items():
                result.samples[(name, n)].append(_timed(fn))
        for name in ROWS:
            s = result.samples.get((name, n))
            result.seconds[(name, n)] = statistics.median(w for w, _ in s) if s else None
            result.cpu_seconds[(name, n)] = statistics.median(c for _, c in s) if s else None
        result.flops[n] = pass_flops(lm, n)
        log(f"  {n:5d} tokens: " + ", ".join(
            f"{name.split()[0]} {1000 * result.seconds[(name, n)]:.1f} ms"
            for name in ROWS if result.seconds[(name, n)] is not None))
    return result
