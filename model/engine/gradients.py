"""A differentiable function from a prompt's input embeddings to a target per row, for attribution
methods that differentiate the model many times (integrated gradients through Captum). The embedding
module's output is replaced by the rows given, so whatever the model adds after it (position vectors,
a scale) is computed as in a normal pass. The lock is held by LanguageModel.gradients around its use.
Where the family has it, attention runs the fused kernel (sdpa) meanwhile: its backward keeps no T x T
weights per head, which halved the time and cut a third of the memory of 8 rows of 256 tokens (float
rounding apart, the same gradients: tests/model/analyses/test_saliency.py checks them against eager).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..core.errors import CaptureError, UnsupportedModelError
from . import threads
from .allocator import LARGE_STREAM_BYTES, long_pass_buffers
from .attention import swapped
from .devices import compute_device

if TYPE_CHECKING:
    from transformers import PreTrainedModel

Target = Callable[[torch.Tensor], torch.Tensor]  # last position's logits (B, V) -> target per row (B,)
_LOW_PRECISION = {getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)}


class NoExactGradients(UnsupportedModelError):
    """The model runs, but gradients through it would not be its own exact numbers."""


@dataclass(frozen=True)
class Differentiable:
    """`embed(ids)`: the input embeddings (1, T, D) of a sequence, detached; `target(rows)`: the target
    per row (B,) of rows (B, T, D) of input embeddings, differentiable; `passes`: passes run so far."""

    embed: Callable[[Sequence[int]], torch.Tensor]
    target: Callable[[torch.Tensor], torch.Tensor]
    passes: list[int]


def exactness_problem(model: PreTrainedModel) -> str | None:
    """Why gradients through this model cannot be exact (None when they can): quantised weights have
    no gradient of their own rounding, and blocks kept on disk are gone by the time backward needs them."""
    for name, parameter in model.named_parameters():
        if not parameter.dtype.is_floating_point or parameter.dtype in _LOW_PRECISION:
            return (f"its weights are quantised ({name} is stored as {str(parameter.dtype).removeprefix('torch.')}), "
                    "so a gradient would be of the rounded weights' stand-in, not of the model")
    if "disk" in set(getattr(model, "hf_device_map", {}).values()):
        return "some blocks live on disk and are unloaded after their forward pass, before backward needs them"
    return None


@contextmanager
def _embeddings_replaced(model: PreTrainedModel, rows: torch.Tensor) -> Iterator[list[bool]]:
    """The input embedding module answers `rows` instead of its lookup for one pass; yields a flag
    list that holds True once it did (a model that never calls the module cannot be differentiated)."""
    seen: list[bool] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        seen.append(True)
        return rows.to(device=output.device, dtype=output.dtype)

    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@contextmanager
def differentiable(model: PreTrainedModel, ids: Sequence[int], target: Target, *, keeps_logits: bool,
                   description: str, blocks: Iterable[nn.Module], kept_rows: int) -> Iterator[Differentiable]:
    """The functions of Differentiable for `ids` (the caller holds the model's lock); refuses, naming
    why, when gradients cannot be exact. `keeps_logits`: the model can unembed the last position alone.
    A pass of more than `kept_rows` rows keeps only what enters each of `blocks` for backward and runs
    the block again there (`_blocks_recomputed`). From the first pass of LARGE_PASS_TOKENS (rows x
    positions) every core works until the door closes, the caller's backward included: the person only
    waits (integrated gradients, 64 steps at 13 tokens in the app: 5.6-6.4 s on one thread, 4.2-4.5 s on
    two); a small gradient x input stays on the app's one thread, where waking workers cost more. Run backward inside the door: a
    recomputed block runs again there and must meet the same attention kernel and frozen weights."""
    problem = exactness_problem(model)
    if problem is not None:
        raise NoExactGradients(f"Gradients are not available for {description}: {problem}.")
    embedding = model.get_input_embeddings()
    device = compute_device(embedding)
    passes = [0]
    door = ExitStack()  # every core from the first large pass until the door closes
    widened: list[None] = []

    def embed(sequence: Sequence[int]) -> torch.Tensor:
        with torch.no_grad():
            return embedding(torch.tensor([list(sequence)], device=device)).detach()

    def run(rows: torch.Tensor) -> torch.Tensor:
        input_ids = torch.tensor([list(ids)], device=device).expand(rows.shape[0], -1)
        kwargs = {"logits_to_keep": 1} if keeps_logits else {}
        with ExitStack() as stack:
            seen = stack.enter_context(_embeddings_replaced(model, rows))
            if input_ids.numel() >= threads.LARGE_PASS_TOKENS and not widened:
                widened.append(door.enter_context(threads.all_cores()))
            if rows.shape[0] > kept_rows:
                stack.enter_context(_blocks_recomputed(blocks))
                # The forward keeps each block's input between its own buffers: large ones mapped on their
                # own leave no holes in the heap (4,096 tokens: 0.56-0.58 GB above the model, 1.75 GB without).
                stack.enter_context(long_pass_buffers(LARGE_STREAM_BYTES))
            try:
                logits = model(input_ids=input_ids, use_cache=False, **kwargs).logits[:, -1]
            except torch.OutOfMemoryError as exc:
                raise CaptureError(f"Out of memory differentiating {rows.shape[0]} rows of {len(ids):,} tokens: "
                                   "choose fewer steps or an earlier position.") from exc
            if not seen:
                raise NoExactGradients(f"Gradients are not available for {description}: its forward pass does "
                                       "not read its input embedding module, so no gradient reaches the tokens.")
            passes[0] += 1
            return target(logits)

    with swapped(model, "sdpa") if runs_fused(model) else nullcontext(), _weights_frozen(model), door:
        yield Differentiable(embed, run, passes)


def runs_fused(model: PreTrainedModel) -> bool:
    """Whether differentiated passes run the fused attention kernel (sdpa), which keeps no T x T weights."""
    return bool(type(model)._can_set_attn_implementation() and type(model)._supports_sdpa)


@contextmanager
def _blocks_recomputed(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Each block's forward under torch's checkpoint for one pass: backward keeps only what enters each
    block and runs the block again when it gets there, one block's state at a time instead of every
    block's. The same operations on the same inputs: the same gradients, to the bit. Gradient x input at
    4,096 tokens peaked 0.56-0.58 GB above the model against 4.7 GB (bench/HISTORY.md, 2026-12-05). A
    block's own forward (accelerate's) is kept."""
    blocks = list(modules)
    own = [vars(block).get("forward") for block in blocks]
    for block in blocks:
        block.forward = partial(checkpoint, block.forward, use_reentrant=False)
    try:
        yield
    finally:
        for block, forward in zip(blocks, own):
            if forward is None:
                del block.forward
            else:
                block.forward = forward


@contextmanager
def _weights_frozen(model: PreTrainedModel) -> Iterator[None]:
    """No parameter asks for a gradient while the caller differentiates: backward then keeps only what
    the gradient of the embeddings needs (each linear layer's input is not saved for its weight's
    gradient), less memory and time. The flags are put back as they were."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
