"""The longest prompt a loaded model may capture, from the memory a capture needs rather than a fixed
number: a capture holds O(layers x T x width) float32 arrays, so the limit is the free memory over the
bytes one token costs, capped by the model's own context. An operator's XRAY_TOKEN_LIMIT replaces the
memory estimate (the operator knows the machine); the context still caps it (no position past it exists).

The bytes per token are written once, in `held_parts`: when a capture keeps other arrays, change them
there (tests/model/engine/test_limits.py checks them against a real capture's arrays).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import torch

from ..core.description import ModelSummary
from ..core.logits import TOP
from ..core.settings import settings
from .facts import mlp_width

if TYPE_CHECKING:
    from .language_model import LanguageModel

FLOAT = 4  # a capture's arrays are float32
SAFETY = 0.75  # the share of free memory one capture may take: the app, other sessions, allocator slack
BACKWARD_SHARE = 0.25  # the share of free memory a backward pass's state may take before its blocks are recomputed
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
_CGROUP_FILES = (  # (limit, usage): cgroup v2, then v1; psutil sees the machine, not the container
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


@dataclass(frozen=True)
class TokenLimit:
    """The longest prompt and why it is that long, for the message a longer prompt gets."""

    tokens: int
    reason: str  # e.g. "the model's context of 8,192 positions"


def held_parts(s: ModelSummary) -> dict[str, int]:
    """Bytes per token each array of a long capture keeps, by the capture's field name (a short one
    keeps whole patterns and every row of logits, which the limit never reaches)."""
    L, H, KV, hd, D = s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim, s.d_model
    return {
        "token_ids": 8,  # int64
        "residual": (L + 1) * D * FLOAT,  # the stream before the first block and after every block
        "attn_out": L * D * FLOAT,
        "mlp_out": L * D * FLOAT,
        "queries": L * H * hd * FLOAT,  # patterns on demand: every layer's q (its keys are the kv's)
        "kv": 2 * L * KV * hd * FLOAT,  # keys and values, to extend a capture
        "logits": 8 + 28 + 12 * TOP,  # per position: the next id, statistics and its top TOP (model/core/logits.py)
    }


def held_bytes(s: ModelSummary, n_tokens: int) -> int:
    """Bytes a capture of n_tokens keeps, at least: a long capture's arrays (a short one keeps more)."""
    return n_tokens * sum(held_parts(s).values())


def peak_bytes_per_token(s: ModelSummary, d_mlp: int, copies_logits: bool) -> int:
    """Bytes per token the pass holds only while it runs: one block's working set (q, k, v, output and
    the MLP's three widths), plus the model's own logits when they are converted to float32 on the CPU
    (a float32 CPU model's logits become the capture's without a copy)."""
    block = (4 * s.d_model + 3 * d_mlp) * FLOAT
    return block + (s.vocab_size * FLOAT if copies_logits else 0)


def backward_bytes(s: ModelSummary, d_mlp: int, n_tokens: int, eager: bool, experts_per_token: int = 1) -> int:
    """Bytes one row of n_tokens keeps for backward through every block, counted generously as six
    widths of the stream and four of the MLP per token (the default model: 9,600 floats a token per
    block, where autograd saved 7,330 and the peak, the allocator's slack included, was 9,956); a
    mixture of experts keeps each chosen expert's MLP and one more; eager attention adds three T x T
    arrays per head."""
    mlps = experts_per_token + 1 if experts_per_token > 1 else 1
    per_token = 6 * s.d_model + 4 * d_mlp * mlps + (3 * s.n_heads * n_tokens if eager else 0)
    return s.n_layers * n_tokens * per_token * FLOAT


def experts_per_token(config) -> int:
    """How many experts each token goes through (1 for a model without a mixture of experts)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "num_experts_per_tok", None)
    return value if isinstance(value, int) and value > 0 else 1


def backward_budget() -> int:
    """Bytes a differentiated pass may keep for backward before it recomputes its blocks instead
    (model/engine/gradients.py): BACKWARD_SHARE of the free memory. Recomputed or kept, the gradients
    are the same; only the time and the memory differ."""
    return int(BACKWARD_SHARE * free_ram())


def context_length(config) -> int | None:
    """The positions the model was built for, from the first config field that names them."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for field in _CONTEXT_FIELDS:
        value = getattr(text, field, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def free_ram() -> int:
    """Bytes the process may still take: the machine's available memory, or the container's headroom."""
    free = psutil.virtual_memory().available
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit, usage = (Path(f).read_text().strip() for f in (limit_file, usage_file))
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit():
            free = min(free, max(0, int(limit) - int(usage)))
    return free


def free_device(device: str) -> int | None:
    """Free bytes on a CUDA device (where the pass runs), None elsewhere."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return int(torch.cuda.mem_get_info(torch.device(device))[0])


def fitting_tokens(lm: LanguageModel) -> int:
    """Tokens whose capture fits: the arrays and, on the CPU, the pass in what RAM is left after the
    capture cache's budget; on a GPU the pass in its free memory."""
    held, d_mlp = held_bytes(lm.summary, 1), mlp_width(lm.layout.mlps[0], lm.summary.d_model)
    on_cpu, float32 = lm.device == "cpu", lm.dtype == torch.float32
    peak = peak_bytes_per_token(lm.summary, d_mlp, copies_logits=not (on_cpu and float32))
    ram = SAFETY * free_ram() - settings().cache_mb * 2**20
    tokens = int(ram // (held + (peak if on_cpu else 0)))
    device = free_device(lm.device)
    if device is not None:
        tokens = min(tokens, int(SAFETY * device // peak))
    return max(1, tokens)


def token_limit(lm: LanguageModel, fits: int) -> TokenLimit:
    """The operator's limit, else the `fits` tokens memory allows (`fitting_tokens`) or, when fewer, what
    the capture cache can keep (a capture it cannot keep is recomputed on every rerun of a page), capped
    by the model's context."""
    operator = settings().token_limit
    per_token = held_bytes(lm.summary, 1)
    cached = settings().cache_mb * 2**20 // per_token  # a longer capture is not kept: every click would rerun it
    if operator is not None:
        wanted = TokenLimit(operator, "the operator's XRAY_TOKEN_LIMIT")
    elif cached < fits:
        wanted = TokenLimit(max(1, cached), f"the capture cache's budget of {settings().cache_mb:,} MB "
                                            f"(XRAY_CACHE_MB), at {per_token / 2**20:.2f} MB a token")
    else:
        wanted = TokenLimit(fits, f"the memory free for one capture, at {per_token / 2**20:.2f} MB a token")
    context = context_length(lm.model.config)
    if context is not None and context < wanted.tokens:
        return TokenLimit(context, f"the model's context of {context:,} positions")
    return wanted
