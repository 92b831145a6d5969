"""Patchscope (Ghandeharioun et al. 2024): a second reading of a hidden state. The residual stream of a
prompt at (stream row l, position p) is written into an identity prompt ("cat -> cat; ...; ? ->") at
its placeholder, at the same site ("residual", l), and the rest of the identity prompt runs on it:
what the model then says at the last position is what that stream means to the model itself, not to
the unembedding (as the logit lens reads it). No training: it works for any loaded model.

One batched pass reads every cell (one row each); the identity prompt's positions before the
placeholder are the same in every row, so they run once and the batch starts at the placeholder from
their keys and values (where the model's cache can be carried; otherwise every row runs whole).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..core.capture import KV
from ..core.errors import PromptError
from ..core.tokens import readable_tokens
from ..engine.language_model import Forward, stacked_kv
from ..engine.patch_sites import Edit, Site, reader
from .generation import continuation_text
from .sampling import probabilities, top_tokens

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ..engine.language_model import LanguageModel

DEFAULT_IDENTITY = "cat -> cat; 1135 -> 1135; hello -> hello; ? ->"
PLACEHOLDER = "?"
MAX_NEW = 8  # greedy tokens a reading may continue with
Cell = tuple[int, int]  # (stream row: 0 = the embedding, l = after block l-1; position in the source prompt)


@dataclass(frozen=True)
class IdentityPrompt:
    """The prompt a stream is read through, and where its placeholder sits."""

    text: str
    ids: tuple[int, ...]
    slot: int  # the position of the placeholder's last occurrence


@dataclass(frozen=True)
class Patchscope:
    """What the model decodes at the identity prompt's last position, one row per cell."""

    identity: IdentityPrompt
    cells: tuple[Cell, ...]
    top_ids: np.ndarray  # (n, k) int64, most likely first
    top_probs: np.ndarray  # (n, k) float32
    top_texts: tuple[tuple[str, ...], ...]  # (n, k) readable tokens
    continuations: tuple[str, ...]  # (n,) greedy text after the patched run ('' when none was asked for)
    plain_ids: np.ndarray  # (k,) int64 the unpatched identity prompt's top tokens
    plain_probs: np.ndarray  # (k,) float32

    def __post_init__(self) -> None:
        for name in ("top_ids", "top_probs", "plain_ids", "plain_probs"):
            getattr(self, name).setflags(write=False)


def identity_prompt(lm: LanguageModel, text: str = DEFAULT_IDENTITY, placeholder: str = PLACEHOLDER) -> IdentityPrompt:
    """The identity prompt's ids (as typed, no chat template) and its placeholder's last position; a
    PromptError when no token of it is the placeholder on its own (missing, split, or merged with a neighbour)."""
    if not text.strip():
        raise PromptError(f"The identity prompt is empty: type one such as '{DEFAULT_IDENTITY}'.")
    ids = lm.encode(text)
    found = [i for i, t in enumerate(ids) if lm.tokenizer.decode([t]).strip() == placeholder.strip()]
    if not found:
        where = "is not one token of its own (split, or merged with a neighbour)" if placeholder in text else "does not occur"
        raise PromptError(f"The placeholder '{placeholder}' {where} in the identity prompt: the stream is written "
                          f"over that one token (end the prompt with e.g. ' {placeholder} ->').")
    return IdentityPrompt(text, tuple(int(i) for i in ids), found[-1])


def read_cells(lm: LanguageModel, ids: Sequence[int], cells: Sequence[Cell]) -> np.ndarray:
    """(n, D) float32 the residual stream of a prompt at each (stream row, position), from one pass."""
    rows = sorted({layer for layer, _ in cells})
    kept: dict[int, np.ndarray] = {}

    def keep(layer: int) -> Edit:
        return reader(lambda t: kept.__setitem__(layer, t[0].detach().to(device="cpu", dtype=torch.float32).numpy()))
    lm.forward(list(ids), sites={("residual", layer): keep(layer) for layer in rows}, last_only=True)
    return np.stack([kept[layer][position] for layer, position in cells])


def from_capture(residual: np.ndarray, cells: Sequence[Cell]) -> np.ndarray:
    """(n, D) the same vectors read from a capture's residual stream (L+1, T, D)."""
    return np.stack([residual[layer, position] for layer, position in cells]).astype(np.float32)


def _writes(vectors: np.ndarray, layers: Sequence[int], column: int) -> dict[Site, Edit]:
    """Edits that write row r's vector at `column` of the stream ("residual", layers[r])."""
    by_layer: dict[int, list[int]] = {}
    for row, layer in enumerate(layers):
        by_layer.setdefault(int(layer), []).append(row)

    def write(rows: list[int]) -> Edit:
        def edit(t: torch.Tensor) -> torch.Tensor:  # (B, T, D)
            out = t.clone()
            out[rows, column] = torch.as_tensor(vectors[rows], device=t.device, dtype=t.dtype)
            return out
        return edit
    return {("residual", layer): write(rows) for layer, rows in by_layer.items()}


def plain_run(lm: LanguageModel, identity: IdentityPrompt) -> tuple[np.ndarray, KV | None]:
    """(V,) the unpatched identity prompt's last logits, and the keys and values of the positions
    before the placeholder (None: none, or the model's cache cannot be carried)."""
    result = lm.forward(list(identity.ids), last_only=True, keep_kv=True)
    past = tuple((k[:, :identity.slot], v[:, :identity.slot]) for k, v in result.kv) if result.kv and identity.slot else None
    return result.logits, past


def _patched(lm: LanguageModel, identity: IdentityPrompt, vectors: np.ndarray, layers: Sequence[int],
             past: KV | None, keep_kv: bool) -> tuple[np.ndarray, tuple[KV | None, ...]]:
    """(n, V) last-position logits of n patched runs in one batch (from `past` where given), and each
    row's keys and values when asked for."""
    if len(vectors) != len(layers) or not len(layers):
        raise ValueError(f"one vector per layer is needed, got {len(vectors)} vectors and {len(layers)} layers")
    start = identity.slot if past is not None else 0
    n = len(layers)
    result = lm.forward(list(identity.ids[start:]), sites=_writes(vectors, layers, identity.slot - start),
                        last_only=True, past=past, keep_kv=keep_kv, batch=n)
    return np.atleast_2d(result.logits), _row_kv(result, n)


def _row_kv(result: Forward, n: int) -> tuple[KV | None, ...]:
    """Each of a pass's n rows' keys and values (a single row's come back as `kv`)."""
    return result.row_kv if n > 1 else (result.kv,)


def patched_logits(lm: LanguageModel, identity: IdentityPrompt, vectors: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """(n, V) float32 the identity prompt's last-position logits with row r's vector (D,) written into
    the stream ("residual", layers[r]) at the placeholder."""
    return _patched(lm, identity, np.asarray(vectors, dtype=np.float32), layers, plain_run(lm, identity)[1], False)[0]


def _carried(rows: tuple[KV | None, ...]) -> KV | None:
    """Rows' keys and values as one past, or None when any row's cannot be carried."""
    kept = [row for row in rows if row is not None]
    return stacked_kv(kept) if kept and len(kept) == len(rows) else None


def _continue(lm: LanguageModel, identity: IdentityPrompt, writes: dict[Site, Edit], first: np.ndarray,
              row_kv: tuple[KV | None, ...], n_new: int) -> list[list[int]]:
    """Greedy ids after each patched run: each row goes on from its own keys and values, where the
    patch already sits, or (a cache that cannot be carried) runs whole again with `writes` patching it."""
    new = [[int(np.argmax(row))] for row in first]
    kv = _carried(row_kv)
    for _ in range(n_new - 1):
        if kv is None:
            result = lm.forward([list(identity.ids) + ids for ids in new], sites=writes, last_only=True)
        else:
            result = lm.forward([[ids[-1]] for ids in new], last_only=True, past=kv, keep_kv=True)
            kv = _carried(_row_kv(result, len(new)))
        for ids, row in zip(new, np.atleast_2d(result.logits)):
            ids.append(int(np.argmax(row)))
    return new


def patchscope(lm: LanguageModel, vectors: np.ndarray, cells: Sequence[Cell], identity: IdentityPrompt,
               k: int = 5, n_new: int = 0) -> Patchscope:
    """Read each cell's vector (n, D) through the identity prompt: the top-k next tokens at its last
    position, and up to n_new greedy tokens continuing each patched run (0: none)."""
    layers = [layer for layer, _ in cells]
    vectors = np.asarray(vectors, dtype=np.float32)
    n_new = max(0, min(int(n_new), MAX_NEW))
    plain_logits, past = plain_run(lm, identity)
    logits, row_kv = _patched(lm, identity, vectors, layers, past, n_new > 1)
    probs = np.stack([probabilities(row, 1.0) for row in logits])  # (n, V)
    top = np.stack([top_tokens(p, k) for p in probs]).astype(np.int64)  # (n, k)
    plain = probabilities(plain_logits, 1.0)  # (V,)
    plain_top = top_tokens(plain, k).astype(np.int64)
    writes = _writes(vectors, layers, identity.slot)
    new = _continue(lm, identity, writes, logits, row_kv, n_new) if n_new else [[] for _ in cells]
    return Patchscope(
        identity=identity, cells=tuple((int(a), int(b)) for a, b in cells), top_ids=top,
        top_probs=np.take_along_axis(probs, top, axis=1).astype(np.float32),
        top_texts=tuple(tuple(readable_tokens(lm.tokenizer, [int(i) for i in row])) for row in top),
        continuations=tuple(continuation_text(lm, list(identity.ids), ids) if ids else "" for ids in new),
        plain_ids=plain_top, plain_probs=plain[plain_top].astype(np.float32),
    )
