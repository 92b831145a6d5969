"""A loaded causal LM plus its tokenizer: the one object the app shares between sessions.

It is never mutated after loading; captures are serialized by a lock because the hooks they
register are global to the shared modules.
"""
from __future__ import annotations

import logging
import threading
from functools import cached_property

import numpy as np
import torch
from torch import nn

from .capture import Capture, run_capture
from .errors import CaptureError, PromptError
from .layout import find_layout
from .settings import load_settings
from .tokens import clean_prompt, readable_tokens

log = logging.getLogger(__name__)

_CHARS_PER_TOKEN_CEILING = 64  # a prompt longer than limit x this is refused before tokenizing


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
        self._cpu_twin: nn.Module | None = None

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

    def capture(self, prompt: str, max_tokens: int | None = None) -> Capture:
        """One forward pass with every layer hooked (no gradient): the prompt's Capture."""
        ids = self.encode(prompt, max_tokens)
        return self.capture_ids(ids, prompt=prompt)

    def capture_ids(self, ids: list[int], prompt: str | None = None) -> Capture:
        """Capture a token sequence directly (used for generated continuations and tests)."""
        input_ids = torch.tensor([ids], dtype=torch.long)
        device, dtype = self.device, self.dtype_name
        with self.lock:
            try:
                recorder, logits, seconds = run_capture(self.model, self.layout, input_ids.to(self.device))
            except torch.OutOfMemoryError:
                log.warning("GPU out of memory for %d tokens; retrying on the CPU", len(ids))
                _free_gpu_memory()
                try:
                    recorder, logits, seconds = run_capture(self._cpu_model(), self.layout_cpu, input_ids)
                except (RuntimeError, MemoryError) as exc:  # the CPU copy ran out too: a message, not a crash
                    raise CaptureError(
                        f"Out of memory for {len(ids):,} tokens on the GPU and on the CPU: shorten the prompt."
                    ) from exc
                device, dtype = "cpu (GPU out of memory)", "float32"
            except RuntimeError as exc:
                raise CaptureError(f"The forward pass failed: {exc}") from exc
        return Capture(
            prompt=prompt if prompt is not None else self.tokenizer.decode(ids),
            tokens=readable_tokens(self.tokenizer, ids),
            token_ids=np.asarray(ids, dtype=np.int64),
            attention=recorder.attention,
            residual=recorder.residual,
            attn_out=recorder.attn_out,
            mlp_out=recorder.mlp_out,
            logits=logits,
            model_name=self.name,
            config=self.summary,
            device=device,
            dtype=dtype,
            seconds=seconds,
        )

    def _cpu_model(self) -> nn.Module:
        """A float32 CPU copy, made once, for retrying a pass the GPU had no memory for."""
        if self._cpu_twin is None:
            import copy

            self._cpu_twin = copy.deepcopy(self.model).to(device="cpu", dtype=torch.float32)
            self.layout_cpu = find_layout(self._cpu_twin, self.name)
        return self._cpu_twin

    @cached_property
    def embedding_matrix(self) -> np.ndarray:
        """The input embedding matrix (V, D) as read-only float32 numpy, made once."""
        weight = self.model.get_input_embeddings().weight.detach()
        matrix = weight.to(device="cpu", dtype=torch.float32).numpy()
        matrix.setflags(write=False)
        return matrix


def _free_gpu_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
