"""The heads' outputs read from a Capture instead of a second pass over the prompt. A head's output at
a position is its attention row times the values, and a capture keeps both: the pattern, and the
values in its key-value cache. Views that split attention per head (the information-flow graph,
attribution by head) read them here and check them against the attention output the capture holds;
where that cannot be checked they record the outputs in a pass of their own, as before.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.capture import Capture
from ..engine.language_model import LanguageModel


def capture_values(lm: LanguageModel, cap: Capture) -> list[torch.Tensor] | None:
    """(KV, T, hd) per layer from the capture's key-value cache, or None: no plain cache (sliding
    windows), another model's capture, or more head dimensions than stream dimensions. In that last
    case the output projection has a null space, so the check that the heads rebuild the attention
    output could not tell each head's part apart."""
    s = cap.summary
    if cap.kv is None or cap.model_name != lm.name or s.n_heads * s.head_dim > s.d_model:
        return None
    return [torch.from_numpy(np.array(values)) for _, values in cap.kv]


def pattern_times_values(pattern: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(H, n, hd) each head's output: its pattern rows (H, n, T) times its values (KV, T, hd). With
    grouped-query attention, query head h reads key-value head h // group."""
    group = pattern.shape[0] // values.shape[0]
    return torch.matmul(pattern, values.repeat_interleave(group, dim=0))
