"""Passes of a few rows on the CPU (a generation step, a steered pair's step, one appended token):
each nn.Linear through the product that streams its weight fastest.

Such a pass reads every weight once and does little arithmetic, so its time is memory traffic. On the
CPU measured (bench/HISTORY.md, 2026-12-05; one thread), torch's `F.linear` read the default model's
540 MB of weights in 44 ms for one row and 74 ms for two (its kernels pack the weight first);
`weight @ x.T` (MKL, the weight untransposed) took 29 ms for one row sent as two and 30 ms for two.
A 12-step generation took 765 -> 700 ms, a steered pair's 12 + 12 steps 1,175 -> 703 ms. The
products are the same sums in another order: the last bits differ, as between any two BLAS kernels.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

FEW_ROWS = 4  # a pass over at most this many rows (batch x positions) takes the streaming products

_layers: weakref.WeakKeyDictionary[nn.Module, list[nn.Linear]] = weakref.WeakKeyDictionary()


def _plain_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's own nn.Linear layers (not subclasses: quantised layers keep their own forward) whose
    weight is float32 on the CPU; found once per model (weights never move after loading)."""
    if model not in _layers:
        _layers[model] = [m for m in model.modules() if type(m) is nn.Linear and m.weight.device.type == "cpu"
                          and m.weight.dtype == torch.float32]
    return _layers[model]


def _streaming(layer: nn.Linear) -> Callable[[torch.Tensor], torch.Tensor]:
    """`layer`'s forward for a few rows: `weight @ x.T`, one row sent twice (MKL's product for one
    column is its slow path), the result made contiguous (a transposed view would send the next layer
    down a slow path too: 3x on the MLP's down_proj)."""
    def forward(input: torch.Tensor) -> torch.Tensor:  # noqa: A002  (nn.Linear.forward's own name: `layer(input=x)` works)
        x, weight, bias = input, layer.weight, layer.bias
        if x.dtype != weight.dtype or x.requires_grad:
            return nn.functional.linear(x, weight, bias)
        rows = x.reshape(-1, x.shape[-1])
        columns = (rows.repeat(2, 1) if len(rows) == 1 else rows).T
        y = torch.mm(weight, columns).T[:len(rows)].contiguous()
        if bias is not None:
            y = y + bias
        return y.reshape(*x.shape[:-1], weight.shape[0])
    return forward


@contextmanager
def few_row_products(model: nn.Module, rows: int) -> Iterator[None]:
    """Within this, a pass of `rows` <= FEW_ROWS rows uses the streaming products (an instance
    attribute shadows nn.Linear.forward; hooks registered on the layers still run); one row only on one
    thread (on two, F.linear's own one-row kernel was faster: a 12-step generation 866 ms against
    948 ms). A layer that already has a forward of its own (accelerate's hooks set one) keeps it. Enter
    it under the model's lock."""
    wanted = 1 < rows <= FEW_ROWS or (rows == 1 and torch.get_num_threads() == 1)
    layers = [layer for layer in _plain_layers(model) if "forward" not in vars(layer)] if wanted else []
    for layer in layers:
        layer.forward = _streaming(layer)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
