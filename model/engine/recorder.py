"""Recording one forward pass into a Capture's arrays: hooks on every block that write straight into
preallocated numpy, and (where the pass runs attention.DIRECT) the softmax written straight into the
pattern array. Hooks and routes live for exactly one pass and are removed even when it raises.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from torch import nn

from ..core.capture import Capture
from ..core.description import ModelSummary
from ..core.errors import CaptureError
from ..core.patterns import Patterns
from . import array_pool
from .attention import writing_patterns
from .layout import Layout


def _first_tensor(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def _attention_weights(output) -> torch.Tensor | None:
    """The (B, H, T, T) pattern among an attention module's outputs, if it returned one."""
    if isinstance(output, (tuple, list)):
        for item in output[1:]:
            if isinstance(item, torch.Tensor) and item.ndim == 4:
                return item
    return None


class Recorder:
    """Writes each hooked activation straight into preallocated numpy arrays (no second copy)."""

    def __init__(self, summary: ModelSummary, n_tokens: int, start: int = 0, row: int = 0, rows: int = 1,
                 patterns: bool = True) -> None:
        """Arrays for n_tokens positions; the pass computes positions start.. (the rest come from
        `take_prefix`). `row` is this sequence's row in a batched pass of `rows` sequences, whose later
        positions may be padding: only the first n_tokens - start positions of the row are kept.
        Without `patterns` no pattern is recorded (a PatternRecording keeps queries and keys instead)."""
        L, H, T, D = summary.n_layers, summary.n_heads, n_tokens, summary.d_model
        # Uninitialised (every slot is written whole: seen_attention and `stored` check it), from the
        # pool: memory an evicted capture held, else torch's allocator (at 1024 tokens its pages took the
        # 1.1 GB of patterns ~15% faster than fresh numpy pages; np.zeros was slower still).
        self.attention = array_pool.empty(L, H, T, T) if patterns else None
        self.residual = array_pool.empty(L + 1, T, D)
        self.attn_out = array_pool.empty(L, T, D)
        self.mlp_out = array_pool.empty(L, T, D)
        self.n_layers = L
        self.start = start
        self.row, self.rows = row, rows
        self.seen_attention = [not patterns] * L
        self.stored = 0  # residual, attn_out and mlp_out slots written: 3L + 1 a call when complete
        self.expected = 3 * L + 1
        self.n_tokens = T
        self._chunk = slice(start, start)  # the positions the running call computes (a pass in chunks: one chunk)
        self._calls = 0

    @contextmanager
    def recording(self, layout: Layout) -> Iterator[None]:
        """Hook every block of `layout` (and let the direct attention write here) for one pass."""
        self.seen_attention = [self.attention is None] * self.n_layers
        self.stored, self._calls, self._chunk = 0, 0, slice(self.start, self.start)
        with ExitStack() as stack:
            for handle in self.hooks(layout):
                stack.callback(handle.remove)
            if self.attention is not None:
                stack.enter_context(writing_patterns(layout, self.attention, self.seen_attention))
            yield

    def check(self) -> None:
        """A CaptureError unless every slot was written by the pass (by each of its calls, when it ran in chunks)."""
        if self.stored != self.expected * max(1, self._calls) or self._chunk.stop != self.n_tokens:
            raise CaptureError(f"The hooks recorded {self.stored} of {self.expected * max(1, self._calls)} activations, "
                               f"up to position {self._chunk.stop} of {self.n_tokens}.")
        if not all(self.seen_attention):
            raise CaptureError("The attention modules returned no attention pattern (is attention eager?).")

    def patterns(self) -> Patterns:
        """The whole patterns the pass wrote (a recorder made with `patterns`)."""
        if self.attention is None:
            raise ValueError("this recorder keeps no patterns: a PatternRecording kept queries and keys")
        return Patterns.of_array(self.attention)

    def _stream(self, target: np.ndarray, tensor: torch.Tensor) -> None:
        self._store(target, tensor)
        self.stored += 1

    def _store(self, target: np.ndarray, tensor: torch.Tensor) -> None:
        """This row's part of a batched activation, cut to the target's shape (padding dropped)."""
        part = tensor[self.row][tuple(slice(0, n) for n in target.shape)]
        target[...] = part.detach().to(device="cpu", dtype=torch.float32).numpy()

    def hooks(self, layout: Layout) -> list[torch.utils.hooks.RemovableHandle]:
        """The embedding, every block's output and attention pattern, and what each block writes into
        the stream for its attention and its MLP (the modules the load-time probe found, times its scale)."""
        handles = [layout.blocks[0].register_forward_pre_hook(self._embedding, with_kwargs=True)]
        writes = layout.writes
        for i, (block, attn) in enumerate(zip(layout.blocks, layout.attentions)):
            handles.append(block.register_forward_hook(self._block(i)))
            if self.attention is not None:
                handles.append(attn.register_forward_hook(self._pattern(i)))
            handles.append(writes.attn[i].register_forward_hook(self._write(self.attn_out[i], writes.scale)))
            handles.append(writes.mlp[i].register_forward_hook(self._write(self.mlp_out[i], writes.scale)))
        return handles

    def take_prefix(self, prefix: Capture) -> None:
        """Copy the first `start` positions from a capture of the same first tokens. Causal: their rows
        do not depend on later tokens, and they give later keys exactly zero attention."""
        P = self.start
        if self.attention is not None:
            self.attention[:, :, :P, :P] = prefix.attention[:, :, :P, :P]
            self.attention[:, :, :P, P:] = 0
        self.residual[:, :P] = prefix.residual[:, :P]
        self.attn_out[:, :P] = prefix.attn_out[:, :P]
        self.mlp_out[:, :P] = prefix.mlp_out[:, :P]

    def _embedding(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """A call begins: its positions follow the last call's (a pass in chunks), to the end at most."""
        hidden = args[0] if args else kwargs["hidden_states"]
        first = self._chunk.stop
        self._chunk = slice(first, min(self.n_tokens, first + hidden.shape[1]))
        self._calls += 1
        self._stream(self.residual[0, self._chunk], hidden)

    def _block(self, i: int):
        def hook(module: nn.Module, args: tuple, output) -> None:
            self._stream(self.residual[i + 1, self._chunk], _first_tensor(output))
        return hook

    def _pattern(self, i: int):
        def hook(module: nn.Module, args: tuple, output) -> None:
            if self.seen_attention[i]:  # the direct attention function already wrote this layer
                return
            weights = _attention_weights(output)  # (B, H, new rows, all keys)
            if weights is not None and self.attention is not None:
                self._store(self.attention[i, :, self.start:], weights)
                self.seen_attention[i] = True
        return hook

    def _write(self, target: np.ndarray, scale: float):
        def hook(module: nn.Module, args: tuple, output) -> None:
            tensor = _first_tensor(output)
            if tensor.ndim == 2:  # OPT's fc2 sees the batch's tokens flattened: (B x T, D)
                tensor = tensor.reshape(self.rows, -1, tensor.shape[-1])
            self._stream(target[self._chunk], tensor * scale if scale != 1.0 else tensor)
        return hook
