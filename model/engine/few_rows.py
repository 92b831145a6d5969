"""Passes of a few rows on the CPU (a generation step, a steered pair's step, one appended token):
each nn.Linear through the product that streams its weight fastest.

Such a pass reads every weight once and does little arithmetic, so its time is memory traffic. On the
CPUs measured (bench/HISTORY.md, 2026-12-05), torch's `F.linear` streamed a model's 540 MB of weights
at half the rate the memory allows for one row and at a third for two: its kernels pack the weight
first. numpy's product (OpenBLAS) streams one row at the full rate, and `weight @ x.T` (MKL, the weight
untransposed) two to four. A 20-token generation took 1.25 s -> 1.0 s; a steered pair's 20 + 20 tokens
1.93 s -> 1.13 s. The products are the same sums in another order: the last bits differ, as between
any two BLAS kernels.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
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
    """`layer`'s forward for a few rows: numpy's product for one row, `weight @ x.T` for more, made
    contiguous (a transposed view would send the next layer down a slow path, 3x on the MLP's down_proj)."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        weight, bias = layer.weight, layer.bias
        if x.dtype != weight.dtype or x.requires_grad:
            return nn.functional.linear(x, weight, bias)
        rows = x.reshape(-1, x.shape[-1])
        if len(rows) == 1:
            y = torch.from_numpy(np.matmul(weight.detach().numpy(), rows[0].numpy()))[None]
        else:
            y = torch.mm(weight, rows.T).T.contiguous()
        if bias is not None:
            y = y + bias
        return y.reshape(*x.shape[:-1], weight.shape[0])
    return forward


@contextmanager
def few_row_products(model: nn.Module, rows: int) -> Iterator[None]:
    """Within this, a pass of `rows` <= FEW_ROWS rows uses the streaming products (an instance
    attribute shadows nn.Linear.forward; hooks on the layers still run). Enter it under the model's lock."""
    layers = _plain_layers(model) if 0 < rows <= FEW_ROWS else []
    for layer in layers:
        layer.forward = _streaming(layer)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
