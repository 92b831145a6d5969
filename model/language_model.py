"""A loaded causal LM plus its tokenizer: the one object the app shares between sessions.

Every forward pass goes through `LanguageModel.forward`, the one gateway: it holds the lock (the
hooks a pass registers and the attention implementation it swaps in live on the shared modules),
runs on the model's device in inference mode, restores the attention implementation that was set
before, and retries on a float32 CPU copy when the GPU runs out of memory. The weights are never
changed after loading.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterator

import numpy as np
import torch
from torch import nn

from .capture import Capture
from .recorder import Recorder, direct_attention
from .errors import CaptureError, PromptError
from .layout import Layout, find_layout
from .settings import load_settings
from .tokens import clean_prompt, readable_tokens

log = logging.getLogger(__name__)

_CHARS_PER_TOKEN_CEILING = 64  # a prompt longer than limit x this is refused before tokenizing
_OOM_DEVICE = "cpu (GPU out of memory)"

Hooks = Callable[[Layout], AbstractContextManager]  # installs hooks on a layout's modules for one pass
Attention = Callable[[nn.Module, Layout, torch.Tensor], "str | None"]  # picks an implementation per pass


@dataclass(frozen=True)
class Forward:
    """What one gateway pass returns: float32 logits on the CPU, where the pass ran, and how long."""

    logits: np.ndarray  # (T, V), or (V,) for last_only
    device: str
    dtype: str
    seconds: float  # wall time of the model call and the logits' copy to the CPU


class LanguageModel:
    """A Hugging Face causal LM ready to be captured. Build it with `model.load_model`."""

    def __init__(self, model: nn.Module, tokenizer, name: str, device: str, dtype: torch.dtype) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.dtype = dtype
        self.layout = find_layout(model, name)
        self.summary = self.layout.summary
        self.lock = threading.RLock()  # hold it to run the shared model or hook its modules
        self._cpu_twin: tuple[nn.Module, Layout] | None = None

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def encode(self, prompt: str, max_tokens: int | None = None) -> list[int]:
        """Token ids of a prompt, or a PromptError that says why it cannot be captured."""
        limit = max_tokens or load_settings().token_limit
        if not prompt:
            raise PromptError("The prompt is empty: type some text to see what the model does with it.")
        if len(prompt) > limit * _CHARS_PER_TOKEN_CEILING:
            raise PromptError(
                f"The prompt has {len(prompt):,} characters, far more than the limit of {limit:,} tokens "
                "allows. Shorten it."
            )
        ids = self.tokenizer(clean_prompt(prompt), add_special_tokens=True)["input_ids"]
        if not ids:
            raise PromptError("The prompt produced no tokens: type some visible text.")
        if len(ids) > limit:
            raise PromptError(
                f"The prompt is {len(ids):,} tokens long; the limit is {limit:,} tokens. "
                "Shorten it (nothing was cut off silently)."
            )
        return ids

    def forward(
        self,
        ids: Sequence[int],
        *,
        hooks: Hooks | None = None,
        attention: str | Attention | None = None,
        last_only: bool = False,
    ) -> Forward:
        """The one way to run the model: `hooks(layout)` is entered around the pass (for the CPU
        retry too, with the copy's layout); `attention` names an implementation to swap in (or picks
        one per model); the logits come back as float32 numpy. Failures are CaptureErrors."""
        input_ids = torch.tensor([list(ids)], dtype=torch.long)
        with self.lock:
            try:
                return _run_model(self.model, self.layout, input_ids.to(self.device), hooks, attention, last_only,
                                  self.device, self.dtype_name)
            except torch.OutOfMemoryError:
                log.warning("GPU out of memory for %d tokens; retrying on the CPU", len(ids))
                _free_gpu_memory()
                model, layout = self._cpu_model()
                try:
                    return _run_model(model, layout, input_ids, hooks, attention, last_only, _OOM_DEVICE, "float32")
                except (RuntimeError, MemoryError) as exc:  # the CPU copy ran out too: a message, not a crash
                    raise CaptureError(
                        f"Out of memory for {len(ids):,} tokens on the GPU and on the CPU: shorten the prompt."
                    ) from exc
            except RuntimeError as exc:
                raise CaptureError(f"The forward pass failed: {exc}") from exc

    def capture(self, prompt: str, max_tokens: int | None = None) -> Capture:
        """One forward pass with every layer hooked (no gradient): the prompt's Capture."""
        ids = self.encode(prompt, max_tokens)
        return self.capture_ids(ids, prompt=prompt)

    def capture_ids(self, ids: list[int], prompt: str | None = None) -> Capture:
        """Capture a token sequence directly (used for generated continuations and tests)."""
        recorder = Recorder(self.summary, len(ids))
        result = self.forward(ids, hooks=recorder.recording, attention=direct_attention)
        recorder.check()
        return Capture(
            prompt=prompt if prompt is not None else self.tokenizer.decode(ids),
            tokens=readable_tokens(self.tokenizer, ids),
            token_ids=np.asarray(ids, dtype=np.int64),
            attention=recorder.attention,
            residual=recorder.residual,
            attn_out=recorder.attn_out,
            mlp_out=recorder.mlp_out,
            logits=result.logits,
            model_name=self.name,
            config=self.summary,
            device=result.device,
            dtype=result.dtype,
            seconds=result.seconds,
        )

    def _cpu_model(self) -> tuple[nn.Module, Layout]:
        """A float32 CPU copy and its layout, made once, for retrying a pass the GPU had no memory for."""
        if self._cpu_twin is None:
            import copy

            twin = copy.deepcopy(self.model).to(device="cpu", dtype=torch.float32)
            self._cpu_twin = twin, find_layout(twin, self.name)
        return self._cpu_twin

    @cached_property
    def embedding_matrix(self) -> np.ndarray:
        """The input embedding matrix (V, D) as read-only float32 numpy, made once."""
        weight = self.model.get_input_embeddings().weight.detach()
        matrix = weight.to(device="cpu", dtype=torch.float32).numpy()
        matrix.setflags(write=False)
        return matrix


def _run_model(model: nn.Module, layout: Layout, input_ids: torch.Tensor, hooks: Hooks | None,
               attention: str | Attention | None, last_only: bool, device: str, dtype: str) -> Forward:
    """One no-grad pass of `model` with the hooks and attention asked for, undone in finally."""
    name = attention(model, layout, input_ids) if callable(attention) else attention
    with ExitStack() as stack:
        if hooks is not None:
            stack.enter_context(hooks(layout))
        if name is not None:
            stack.enter_context(_attention_implementation(model, name))
        start = time.perf_counter()
        with torch.inference_mode():
            out = model(input_ids=input_ids, use_cache=False)
            rows = out.logits[0, -1] if last_only else out.logits[0]
            logits = rows.to(device="cpu", dtype=torch.float32).numpy()
        seconds = time.perf_counter() - start
    logits.setflags(write=False)
    return Forward(logits=logits, device=device, dtype=dtype, seconds=seconds)


@contextmanager
def _attention_implementation(model: nn.Module, name: str) -> Iterator[None]:
    """Swap the model's attention implementation for one pass and restore the one it had."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(name)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def _free_gpu_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
