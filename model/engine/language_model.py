"""A loaded causal LM plus its tokenizer: the one object the app shares between sessions.

Every forward pass goes through `LanguageModel.forward`, the one gateway: it holds the lock (the
hooks a pass registers and the attention implementation it swaps in, from model/engine/attention.py,
live on the shared modules), runs on the model's device in inference mode, restores the attention
implementation that was set before, and retries on a float32 CPU copy when the GPU runs out of
memory. The load-time probe, which runs before there is a layout to pass to `forward`, goes through
the same pass function under the same lock. The weights are never changed after loading.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TypeGuard

import numpy as np
import torch
from torch import nn

from ..core.capture import KV, Capture
from ..core.description import ModelFacts
from ..core.errors import CaptureError, PromptError, UnsupportedModelError
from ..core.logits import Logits, Predictions, RowStats, following_ids
from ..core.patterns import Patterns
from ..core.tokens import clean_prompt, readable_tokens
from . import limits, threads
from .allocator import LARGE_STREAM_BYTES, long_pass_buffers
from .attention import LISTEN, direct_attention, listening_kernel, swapped
from .batching import CaptureQueue, Request
from .devices import compute_device
from .facts import model_facts
from .few_rows import few_row_products
from .final_norm import NormFit, measure_final_norm
from .gradients import Differentiable, Target, differentiable, runs_fused
from .layout import Layout, find_layout
from .limits import TokenLimit
from .linear import weight_of
from .patch_sites import Edit, Site, editing, reader
from .placement import block_devices, dispatched
from .qk_recording import PatternRecording
from .recorder import Recorder
from .unembed import Unembedding, stream_stats

if TYPE_CHECKING:  # transformers loads on first use (model/__init__.py); its type is for the checker only
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

_CHARS_PER_TOKEN_CEILING = 64  # a prompt longer than limit x this is refused before tokenizing
# Captures of at least this many tokens run the fast kernel (sdpa) and keep each layer's queries and
# keys (Patterns on demand, O(T x d)); shorter ones run eager and keep its whole patterns, bit for bit
# what transformers' eager output_attentions gives (sdpa's float32 rounding moves deep layers' weights by
# ~2e-6 on the default model, past the 1e-6 the parity tests hold). Below 256 tokens the whole patterns
# take under ~30 MB on the default model and eager costs little more than sdpa.
PATTERNS_ON_DEMAND_TOKENS = 256
# From the same length a capture keeps the logits of its last KEPT_ROWS positions (what pages open on)
# and every position's statistics (Logits): at 4,096 tokens every row would take 0.8 GB of the default
# model's capture. Any other row is computed again from the final stream (`logits_at`).
KEPT_ROWS = 64
# A long capture's pass runs this many positions at a time through one cache (`LanguageModel._chunk`):
# an activation of a chunk of the default model is at most 3 MB, under the allocator's 4 MB mappings.
CAPTURE_CHUNK = 512
_OOM_DEVICE = "cpu (GPU out of memory)"

Hooks = Callable[[Layout], AbstractContextManager]  # installs hooks on a layout's modules for one pass
Attention = Callable[["PreTrainedModel", Layout, torch.Tensor], "str | None"]  # picks an implementation per pass


def fast_when_long(model: PreTrainedModel, layout: Layout, input_ids: torch.Tensor) -> str | None:
    """What a pass that reads no patterns runs by default: the family's sdpa kernel over
    PATTERNS_ON_DEMAND_TOKENS new positions or more, as a long capture does (eager's T x T scores per
    head made the MLP page's pass at 3,500 tokens 41 s against 15 s); the model's own eager below, whose
    numbers equal a short capture's bit for bit."""
    return fast_for(input_ids.shape[-1])(model, layout, input_ids)


def fast_for(n_tokens: int) -> Attention:
    """`fast_when_long`'s choice made by one prompt's length instead of each pass's: for passes over
    parts of that prompt (occluded rows a token shorter, the prompt before its last token) whose numbers
    are set against its own pass, so that all of them run one kernel."""
    def choose(model: PreTrainedModel, layout: Layout, input_ids: torch.Tensor) -> str | None:
        kind = type(model)
        fast = kind._can_set_attn_implementation() and kind._supports_sdpa
        return "sdpa" if n_tokens >= PATTERNS_ON_DEMAND_TOKENS and fast else None
    return choose


Objective = Callable[[torch.Tensor], torch.Tensor]  # logits (B, T, V) -> the scalar to differentiate


@dataclass(frozen=True)
class Forward:
    """What one gateway pass returns: float32 logits on the CPU, where the pass ran, and how long."""

    logits: np.ndarray  # (T, V) for the positions passed in, or (V,) for last_only
    device: str
    dtype: str
    seconds: float  # wall time of the model call and the logits' copy to the CPU
    kv: KV | None = None  # keys and values of every position so far (past + these), when asked for
    objective: float | None = None  # the value of `objective` on this pass, when one was given
    row_kv: tuple[KV | None, ...] = ()  # a pass over rows: each row's keys and values (padding included)


class LanguageModel:
    """A Hugging Face causal LM ready to be captured. Build it with `model.load_model`."""

    def __init__(self, model: PreTrainedModel, tokenizer, name: str, device: str, dtype: torch.dtype) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.dtype = dtype
        self.lock = threading.RLock()  # hold it to run the shared model or hook its modules
        self.layout = self._find_layout(model)
        self.summary = self.layout.summary
        self.block_devices = block_devices(model, self.layout.blocks)  # where each block's weights live
        self._cpu_twin: tuple[PreTrainedModel, Layout] | None = None
        self._queue = CaptureQueue(self.lock, self._capture_requests)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @cached_property
    def fitting_tokens(self) -> int:
        """The longest prompt whose capture fits in the memory free when first asked (model/engine/limits.py)."""
        return limits.fitting_tokens(self)

    def held_bytes(self, n_tokens: int) -> int:
        """Bytes a capture of n_tokens keeps, at least (model/engine/limits.py)."""
        return limits.held_bytes(self.summary, n_tokens)

    @property
    def token_limit(self) -> TokenLimit:
        """The longest prompt this model may capture here, and why: the operator's setting (read each
        time, as settings are) or what fits, capped by the model's context."""
        return limits.token_limit(self, self.fitting_tokens)

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer brings its own chat template (instruct models do, base models often not)."""
        return getattr(self.tokenizer, "chat_template", None) is not None

    def encode(self, prompt: str, max_tokens: int | None = None, *, chat: bool = False,
               limit_name: str = "the sidebar's token limit") -> list[int]:
        """Token ids of a prompt, or a PromptError that says why it cannot be captured. `max_tokens` (the
        sidebar's limit, or the `limit_name`d one of a page) may lower the model's own `token_limit`, never
        raise it. `chat` wraps the prompt as a user message in the model's own chat template, up to the
        assistant's first token; the limit applies to the wrapped ids."""
        limit = min(max_tokens or self.token_limit.tokens, self.token_limit.tokens)
        if not prompt:
            raise PromptError("The prompt is empty: type some text to see what the model does with it.")
        if len(prompt) > limit * _CHARS_PER_TOKEN_CEILING:
            raise PromptError(
                f"The prompt has {len(prompt):,} characters, far more than the limit of {limit:,} tokens "
                "allows. Shorten it."
            )
        text = clean_prompt(prompt)
        ids = self._chat_ids(text) if chat else self.tokenizer(text, add_special_tokens=True)["input_ids"]
        if not ids:
            raise PromptError("The prompt produced no tokens: type some visible text.")
        if len(ids) > limit:
            why = self.token_limit.reason if limit == self.token_limit.tokens else limit_name
            own = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if chat else 0
            template = f", {len(ids) - own:,} of them the chat template's" if chat and own < len(ids) else ""
            raise PromptError(
                f"The prompt is {len(ids):,} tokens long{template}; the limit is {limit:,} tokens ({why}). "
                + ("Shorten it, raise the limit, or switch the chat template off" if template else "Shorten it")
                + " (nothing was cut off silently)."
            )
        return ids

    def _chat_ids(self, prompt: str) -> list[int]:
        """The prompt as the model's chat template writes a user's turn and opens the assistant's. The
        template writes its own special tokens (a BOS among them, where it has one): none are added."""
        if not self.has_chat_template:
            raise PromptError(f"{self.name} has no chat template: switch the chat template off to run the prompt as typed.")
        messages = [{"role": "user", "content": prompt}]
        try:
            encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                         return_dict=True)
        except Exception as exc:  # noqa: BLE001  the model's own template code may fail in any way: a message
            raise PromptError(f"{self.name}'s chat template could not wrap the prompt ({exc}): "
                              "switch the chat template off to run the prompt as typed.") from exc
        return list(encoded["input_ids"])

    def forward(
        self,
        ids: Sequence[int] | Sequence[Sequence[int]],
        *,
        hooks: Hooks | None = None,
        sites: dict[Site, Edit] | None = None,
        attention: str | Attention | None = fast_when_long,
        last_only: bool = False,
        keep_rows: int | None = None,
        past: KV | None = None,
        keep_kv: bool = False,
        batch: int = 1,
        objective: Objective | None = None,
        chunk: int | None = None,
    ) -> Forward:
        """The one way to run the model: `sites` names the patch sites the pass reads or writes, each
        with its edit (model/engine/patch_sites.py), and `hooks(layout)` is entered around the pass after
        them (both for the CPU retry too, on the copy's modules); `attention` names an implementation
        to swap in (or picks one per model; by default the fast kernel for long passes, `fast_when_long`, and
        None keeps the model's eager); `past` holds the keys and values of positions before `ids`
        (from an earlier Forward or Capture; `stacked_kv` gives each row its own); `keep_kv` returns them
        for all positions. Logits come back as float32 numpy. `batch` > 1 runs that many copies of `ids`
        (and `past`) in one pass, for hooks that change each row differently; `ids` given as rows of
        equal length (different sequences, padded by the caller) run as one batch too, with `keep_kv`
        filling `row_kv`. A batch's logits gain a leading batch axis. `keep_rows` returns the last
        positions' logits only (the model skips the unembedding of the others where it can). `objective` (logits
        (B, T, V) tensor -> scalar) runs the pass with autograd and differentiates the scalar back to
        the input embeddings: tensor hooks the edits put on activations receive their gradients
        (parameters' .grad are never touched). `chunk` runs one sequence (no past, some rows of logits
        kept) in calls of about that many positions through one cache, each call's hooks hearing its
        positions only (Recorder and PatternRecording place them). Failures are CaptureErrors."""
        input_ids = _input_ids(ids, batch)
        if sites:
            hooks = _both(functools.partial(editing, edits=sites), *([hooks] if hooks else []))
        run = functools.partial(_run_model, hooks=hooks, attention=attention, last_only=last_only, keep_rows=keep_rows,
                                past=past, keep_kv=keep_kv, objective=objective, chunk=chunk)
        with self.lock:
            try:
                return run(self.model, self.layout, input_ids.to(self.device), device=self.device, dtype=self.dtype_name)
            except torch.OutOfMemoryError as exc:
                if dispatched(self.model):  # spread over devices: no single-CPU copy to fall back on
                    _free_gpu_memory()
                    raise CaptureError(f"Out of GPU memory for {len(ids):,} tokens: shorten the prompt.") from exc
                log.warning("GPU out of memory for %d tokens; retrying on the CPU", len(ids))
                _free_gpu_memory()
                try:  # the copy's own probe pass (when it is made) runs out of memory like the retry
                    model, layout = self._cpu_model()
                    return run(model, layout, input_ids, device=_OOM_DEVICE, dtype="float32")
                except (RuntimeError, MemoryError) as exc:  # the CPU copy ran out too: a message, not a crash
                    raise CaptureError(
                        f"Out of memory for {len(ids):,} tokens on the GPU and on the CPU: shorten the prompt."
                    ) from exc
            except RuntimeError as exc:
                raise CaptureError(f"The forward pass failed: {exc}") from exc

    @contextmanager
    def modules(self, *, inference: bool = True) -> Iterator[None]:
        """The door for running the model's own modules outside a whole pass (a norm, one MLP, the
        unembedding): the model's lock, in inference mode unless told otherwise. Analyses never take
        the lock themselves; a whole pass goes through `forward` or a capture."""
        with self.lock, (torch.inference_mode() if inference else contextlib.nullcontext()):
            yield

    @contextmanager
    def gradients(self, ids: Sequence[int], target: Target) -> Iterator[Differentiable]:
        """The door for methods that differentiate many times from the input embeddings (integrated
        gradients): holds the lock while the caller runs `target(rows)` on rows of embeddings of `ids`
        (model/engine/gradients.py) and its backward, which must run inside. Refuses, naming why, a model
        whose gradients cannot be exact, or a prompt whose backward would not fit even a block at a time."""
        description = f"{self.summary.architecture} ({self.model.config.model_type})"
        eager = not runs_fused(self.model)
        row = limits.backward_bytes(self.summary, self.facts.d_mlp, len(ids), eager=eager,
                                    experts_per_token=limits.experts_per_token(self.model.config))
        block, free = row // self.summary.n_layers, limits.free_ram()
        if block > limits.SAFETY * free:
            why = " (its attention has no fused kernel here: every head's T x T weights are kept)" if eager else ""
            raise PromptError(f"Gradients through {len(ids):,} tokens need about {block / 2**30:.1f} GB for one block "
                              f"of {self.summary.architecture}{why}, and {free / 2**30:.1f} GB is free: pick an "
                              "earlier position.")
        with self.lock, differentiable(self.model, ids, target, keeps_logits=_keeps_logits(type(self.model)),  # type: ignore[arg-type]
                                       description=description, blocks=self.layout.blocks,
                                       kept_rows=limits.backward_budget() // max(1, row)) as fn:
            yield fn

    def capture(self, prompt: str, max_tokens: int | None = None) -> Capture:
        """One forward pass with every layer hooked (no gradient): the prompt's Capture."""
        ids = self.encode(prompt, max_tokens)
        return self.capture_ids(ids, prompt=prompt)

    def capture_ids(self, ids: list[int], prompt: str | None = None, also: Hooks | None = None) -> Capture:
        """Capture a token sequence directly (used for generated continuations and tests). Captures
        that other sessions ask for meanwhile may share its pass (model/engine/batching.py). `also` installs
        more hooks on the same pass (a page's own recording, e.g. the MLP neurons), which then runs
        on its own: a page that needs both pays one pass over the prompt, not two."""
        if also is None:
            return self._queue.capture(ids, prompt)
        with self.lock:
            return self._capture_one(ids, prompt, also)

    def patterns(self, ids: list[int], eager: bool = False, start: Capture | None = None) -> Patterns:
        """Every layer's queries, keys and recipe for these tokens, from one pass: any head's pattern on
        demand, never all (O(layers x heads x T^2)) at once. The pass runs the fast kernel where the
        family has one (its float32 rounding moves deep layers' patterns by ~1e-6), or with `eager` the
        family's eager attention (the capture's patterns to the bit). `start`, a capture that keeps its
        queries and keys and shares leading tokens with ids, lends them: the pass runs the rest only
        (a generated step after a 3,500-token prompt: its few tokens, not a capture of the whole)."""
        shared = self._lendable(start, ids)
        recording = PatternRecording(self.summary.n_layers, past=shared)
        lent = start.kv if start is not None and shared else None  # shared_prefix lends nothing without them
        past = None if lent is None else tuple((k[:, :shared], v[:, :shared]) for k, v in lent)
        self.forward(ids[shared:], hooks=recording.hooks, attention=LISTEN if eager else listening_kernel,
                     last_only=True, past=past)
        if recording.problem is not None:
            raise UnsupportedModelError(f"Attention patterns on demand are not available for {self.summary.architecture} "
                                        f"({self.model.config.model_type}): {recording.problem}.")
        return recording.extended(start.attention) if start is not None and shared else recording.result()

    def _lendable(self, start: Capture | None, ids: list[int]) -> int:
        """How many leading positions of ids `start` can lend to `patterns`: the shared prefix when it keeps
        queries and keys (not whole patterns), short of the last token (a pass needs one)."""
        if start is None or start.attention.full is not None:
            return 0
        return min(self.shared_prefix(start, ids), len(ids) - 1)

    def patterns_rows(self, rows: Sequence[Sequence[int]], eager: bool = False) -> list[Patterns]:
        """`patterns` of several token sequences from one right-padded pass (a causal row's own positions
        never see the padding after them): each row's equals its own pass's to float rounding."""
        longest = max(len(r) for r in rows)
        recordings = [PatternRecording(self.summary.n_layers, row=b, n_tokens=len(r)) for b, r in enumerate(rows)]
        padded = [list(r) + [r[-1]] * (longest - len(r)) for r in rows]
        self.forward(padded, hooks=PatternRecording.together(recordings), attention=LISTEN if eager else listening_kernel,
                     last_only=True)
        problem = next((r.problem for r in recordings if r.problem is not None), None)
        if problem is not None:
            raise UnsupportedModelError(f"Attention patterns on demand are not available for {self.summary.architecture} "
                                        f"({self.model.config.model_type}): {problem}.")
        return [r.result() for r in recordings]

    def _capture_requests(self, requests: list[Request]) -> None:
        """Answer waiting capture requests: one alone exactly as ever, several in one padded pass (each
        on its own if the batch fails, so every request gets its own outcome)."""
        if len(requests) > 1:
            try:
                self._capture_rows(requests)
                return
            except Exception:  # noqa: BLE001  whatever broke the batch, each request gets its own outcome
                log.warning("A batch of %d captures failed; running them one by one", len(requests), exc_info=True)
        for request in requests:
            try:
                request.result = self._capture_one(request.ids, request.prompt)
            except Exception as exc:  # this request's own error, raised again in its own thread
                request.error = exc
            request.done.set()

    def _capture_one(self, ids: list[int], prompt: str | None, also: Hooks | None = None) -> Capture:
        """One prompt's capture: patterns on demand from the fast kernel when long enough and the family
        allows, else (and when its attention turns out not to be recomputable) eager's whole patterns."""
        if self._on_demand(len(ids)):
            capture = self._capture_listening(ids, prompt, also)
            if capture is not None:
                return capture
        recorder = Recorder(self.summary, len(ids))
        hooks = recorder.recording if also is None else _both(recorder.recording, also)
        keep = self._kept_rows(len(ids))
        result = self.forward(ids, hooks=hooks, attention=direct_attention, keep_kv=True, keep_rows=keep)
        recorder.check()
        logits = self._logits(ids, result.logits, keep)
        return self._assemble(ids, prompt, recorder, recorder.patterns(), logits, result, result.seconds)

    def _chunk(self, n_tokens: int, keep: int | None) -> int | None:
        """The positions a long capture's pass runs at a time, or None for one call. Whole, its activations
        of 4 MB and more are each mapped fresh and faulted in page by page (2.4 M faults at 4,096 tokens:
        1.16x a bare forward), or, left in the C heap, fragment it past the memory target (allocator.py);
        in chunks they stay small and are reused. Not where every row of logits is kept."""
        if keep is None or n_tokens * self.summary.d_model * 4 < LARGE_STREAM_BYTES:
            return None
        return CAPTURE_CHUNK

    def _on_demand(self, n_tokens: int) -> bool:
        """Whether a capture of n_tokens keeps queries and keys (long, and the family runs transformers'
        attention interface) rather than whole patterns."""
        return n_tokens >= PATTERNS_ON_DEMAND_TOKENS and listening_kernel(self.model, self.layout, _NO_IDS) is not None

    def _capture_listening(self, ids: list[int], prompt: str | None, also: Hooks | None,
                           chunked: bool = True) -> Capture | None:
        """The capture from one fast pass that keeps queries and keys; None when the family's attention
        cannot be recomputed from them (the caller records its whole patterns instead). A pass whose stream
        takes LARGE_STREAM_BYTES a layer runs CAPTURE_CHUNK positions at a time (`_chunk`); a family whose
        chunks do not add up runs it again whole."""
        keep = self._kept_rows(len(ids))
        chunk = self._chunk(len(ids), keep) if chunked and also is None else None
        recorder = Recorder(self.summary, len(ids), patterns=False)
        recording = PatternRecording(self.summary.n_layers, length=len(ids) if chunk else None)
        hooks = _both(recorder.recording, recording.hooks, *([also] if also else []))
        result = self.forward(ids, hooks=hooks, attention=listening_kernel, keep_kv=True, keep_rows=keep, chunk=chunk)
        if recording.problem is not None and chunk is not None:
            log.info("One pass for %s, not chunks: %s", self.summary.architecture, recording.problem)
            return self._capture_listening(ids, prompt, also, chunked=False)
        if recording.problem is not None:
            log.info("Whole patterns for %s: %s", self.summary.architecture, recording.problem)
            return None
        recorder.check()
        logits = self._logits(ids, result.logits, keep)
        return self._assemble(ids, prompt, recorder, recording.result(), logits, result, result.seconds)

    def _capture_rows(self, requests: list[Request]) -> None:
        """Several captures in one pass, right-padded: a causal model's real positions never see the
        padding after them, so every row equals its own capture to float rounding. A long batch keeps
        each row's own queries and keys (its first positions), as a capture of that length would."""
        longest = max(len(r.ids) for r in requests)
        rows = [r.ids + [r.ids[-1]] * (longest - len(r.ids)) for r in requests]  # (B, longest)
        on_demand = self._on_demand(longest)
        recorders = [Recorder(self.summary, len(r.ids), row=b, rows=len(requests), patterns=not on_demand)
                     for b, r in enumerate(requests)]
        recordings = [PatternRecording(self.summary.n_layers, row=b, n_tokens=len(r.ids)) for b, r in enumerate(requests)]
        hooks = _both(*(recorder.recording for recorder in recorders), *([PatternRecording.together(recordings)]
                                                                          if on_demand else []))
        result = self.forward(rows, hooks=hooks, keep_kv=True, attention=listening_kernel if on_demand else None)
        for b, (request, recorder, recording) in enumerate(zip(requests, recorders, recordings)):
            recorder.check()
            if on_demand and recording.problem is not None:
                raise CaptureError(f"Patterns on demand failed in a batch: {recording.problem}")
            T = len(request.ids)
            kv = result.row_kv[b]  # copies below: a capture must not hold the whole batch's arrays alive
            kv = None if kv is None else tuple((_frozen(k[:, :T]), _frozen(v[:, :T])) for k, v in kv)
            own = Forward(logits=_frozen(result.logits[b, :T]), device=result.device, dtype=result.dtype,
                          seconds=result.seconds, kv=kv)
            patterns = recording.result() if on_demand else recorder.patterns()
            logits = self._logits(request.ids, own.logits, self._kept_rows(T))
            request.result = self._assemble(request.ids, request.prompt, recorder, patterns, logits, own, own.seconds)
        for request in requests:
            request.done.set()

    def extend_capture(self, base: Capture, ids: list[int], prompt: str | None = None) -> Capture:
        """The capture of `ids`, running only the positions after the tokens it shares with `base`
        (from base's keys and values); shared positions are copied. Equals `capture_ids(ids)` to
        float tolerance. A base of another model, or without keys and values, gives a full capture."""
        start = time.perf_counter()
        shared = self.shared_prefix(base, ids)
        if shared == 0 or base.kv is None:  # shared_prefix is 0 without keys and values; the check narrows kv
            return self.capture_ids(ids, prompt)
        whole = base.attention.full is not None  # base kept whole patterns: short, or a family that must
        if whole == self._on_demand(len(ids)):
            return self.capture_ids(ids, prompt)  # the capture of ids keeps another kind of patterns than base
        recorder = Recorder(self.summary, len(ids), start=shared, patterns=whole)
        keep = self._kept_rows(len(ids))
        head = self._prefix_logits(base, shared, keep)
        if shared == len(ids):  # ids are a prefix of base: nothing new to run
            recorder.take_prefix(base)
            kv = tuple((k[:, :shared].copy(), v[:, :shared].copy()) for k, v in base.kv)  # copies: no view
            result = Forward(logits=head.rows, device=base.device, dtype=base.dtype,
                             seconds=0.0, kv=kv)  # keeps base's whole arrays alive past its eviction
            patterns = recorder.patterns() if whole else base.attention.prefix(shared)
            return self._assemble(ids, prompt, recorder, patterns, head, result, time.perf_counter() - start, base)
        past = tuple((k[:, :shared], v[:, :shared]) for k, v in base.kv)
        recording = PatternRecording(self.summary.n_layers, past=shared)
        hooks = recorder.recording if whole else _both(recorder.recording, recording.hooks)
        result = self.forward(ids[shared:], hooks=hooks, past=past, keep_kv=True, keep_rows=keep,
                              attention=None if whole else listening_kernel)
        if not whole and recording.problem is not None:
            return self.capture_ids(ids, prompt)
        recorder.check()
        recorder.take_prefix(base)
        patterns = recorder.patterns() if whole else recording.extended(base.attention)
        new = self._logits(ids[shared:], result.logits, keep)
        logits = head.extended(new, ids[shared], keep)
        return self._assemble(ids, prompt, recorder, patterns, logits, result, time.perf_counter() - start, base)

    def shared_prefix(self, base: Capture, ids: list[int]) -> int:
        """How many leading tokens of `ids` a capture can lend (0 when it is of another model or pass)."""
        if base.kv is None or base.model_name != self.name or (base.device, base.dtype) != (self.device, self.dtype_name):
            return 0
        n = min(base.n_tokens, len(ids))
        same = base.token_ids[:n] == np.asarray(ids[:n], dtype=np.int64)
        return n if same.all() else int(np.argmin(same))

    def _kept_rows(self, n_tokens: int) -> int | None:
        """How many rows of logits a capture of n_tokens keeps (None: every row): the last KEPT_ROWS
        from PATTERNS_ON_DEMAND_TOKENS on, where the model's logits follow from its final stream."""
        if n_tokens < PATTERNS_ON_DEMAND_TOKENS or self.unembedding.problem:
            return None
        return KEPT_ROWS

    @cached_property
    def unembedding(self) -> Unembedding:
        """Final stream rows -> logits, the model's own way (run it under `modules()`)."""
        return Unembedding(self.model, self.layout)

    def logits_at(self, cap: Capture, positions: int | Sequence[int]) -> np.ndarray:
        """Next-token logits at `positions` (V,) or (n, V): the capture's own rows where it kept them, else
        computed again from its final stream by the model's own final norm and unembedding (equal to
        the pass's rows to float rounding)."""
        if cap.model_name != self.name:
            raise ValueError(f"A capture of {cap.model_name} cannot be read with {self.name}")
        return self.logits_of(Predictions(cap.logits, cap.residual[-1]), positions)

    def predictions(self, ids: list[int], *, hooks: Hooks | None = None,
                    sites: dict[Site, Edit] | None = None) -> Predictions:
        """One pass with the hooks or site edits given, its next-token logits readable at any position
        (`logits_of`): every row of a short prompt as the pass gave them; from PATTERNS_ON_DEMAND_TOKENS
        the last KEPT_ROWS and the final stream, as a capture keeps them (a (T, V) array did not fit the
        results cache at 3,500 tokens: every rerun of the Ablation page ran its pass again, 10 s)."""
        keep = self._kept_rows(len(ids))
        final: list[np.ndarray] = []
        if keep is not None:
            last: Site = ("residual", self.summary.n_layers)
            sites = {**(sites or {}), last: _then_read((sites or {}).get(last), final)}
        result = self.forward(ids, hooks=hooks, sites=sites, keep_rows=keep)
        return Predictions(self._logits(ids, result.logits, keep), final[-1] if final else None)  # the pass that answered

    def logits_of(self, predictions: Predictions, positions: int | Sequence[int]) -> np.ndarray:
        """Logits at `positions` (V,) or (n, V) of a pass's Predictions: its own rows where it kept them,
        else from its final stream through the model's own final norm and unembedding."""
        logits, stream = predictions.logits, predictions.stream
        single = isinstance(positions, (int, np.integer))
        wanted = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        if wanted.size and not (-logits.n_tokens <= wanted.min() and wanted.max() < logits.n_tokens):
            raise IndexError(f"positions must be in 0..{logits.n_tokens - 1}, got {positions}")
        wanted %= logits.n_tokens
        kept = np.asarray([logits.kept(int(p)) for p in wanted], dtype=bool)
        out = np.empty((len(wanted), logits.shape[1]), dtype=np.float32)
        if kept.any():
            out[kept] = logits[wanted[kept]]
        if not kept.all():
            if stream is None:
                raise ValueError("These predictions keep neither those rows nor the final stream to compute them")
            out[~kept] = self._recomputed(stream[wanted[~kept]])
        out.setflags(write=False)
        return out[0] if single else out

    def _recomputed(self, stream: np.ndarray) -> np.ndarray:
        """(n, V) float32 logits of final-stream rows (n, D)."""
        with self.modules():
            return self.unembedding(stream).to(device="cpu", dtype=torch.float32).numpy()

    def _logits(self, ids: Sequence[int], rows: np.ndarray, keep: int | None) -> Logits:
        """A capture's Logits from the pass's rows (the last len(rows) positions; all of them unless
        `keep` was asked): every row, or the last `keep`."""
        following = following_ids(ids)
        if keep is None:
            return Logits(rows, following)
        kept = np.ascontiguousarray(rows[-keep:])
        return Logits(kept, following, len(ids) - len(kept))

    def logit_stats(self, cap: Capture) -> RowStats:
        """Every position's log-sum-exp, top tokens, and the next token's logit and rank: from the rows
        where the capture kept them all, else from its final stream through the model's own norm and
        unembedding, a chunk of rows at a time (never (T, V) at once), remembered in the capture. The
        pass does not compute them: the surprisal strip, the lens and the export ask when they need them."""
        logits = cap.logits
        if logits.known:
            return logits.stats
        if cap.model_name != self.name:
            raise ValueError(f"A capture of {cap.model_name} cannot be read with {self.name}")
        with self.modules(), threads.all_cores():
            early = stream_stats(self.unembedding, cap.residual[-1, :logits.start], logits.following[:logits.start],
                                 threads.long_work_threads())
        stats = RowStats.joined([early, RowStats.of_rows(logits.rows, logits.following[logits.start:])])
        logits.remember(stats)
        return stats

    def _prefix_logits(self, base: Capture, n: int, keep: int | None) -> Logits:
        """The logits of base's first n positions, holding every row (keep None) or the last `keep`."""
        cut = base.logits.prefix(n)
        want = n if keep is None else min(keep, n)
        if len(cut.rows) > want:
            return Logits(cut.rows[-want:].copy(), cut.following, n - want, cut.given)
        if len(cut.rows) == want:
            return cut
        rows = np.concatenate([self._recomputed(base.residual[-1, n - want:n - len(cut.rows)]), cut.rows])
        if want == n:
            return Logits(rows, cut.following)
        return Logits(rows, cut.following, n - want, cut.given)

    def _assemble(self, ids: list[int], prompt: str | None, recorder: Recorder, patterns: Patterns,
                  logits: Logits, result: Forward, seconds: float, base: Capture | None = None) -> Capture:
        """The capture of ids; `base`: the capture it extends (whose whole pass, scaled, prices its reruns)."""
        return Capture(
            prompt=prompt if prompt is not None else self.tokenizer.decode(ids),
            tokens=readable_tokens(self.tokenizer, ids),
            token_ids=np.asarray(ids, dtype=np.int64),
            attention=patterns,
            residual=recorder.residual,
            attn_out=recorder.attn_out,
            mlp_out=recorder.mlp_out,
            logits=logits,
            model_name=self.name,
            summary=self.summary,
            device=result.device,
            dtype=result.dtype,
            seconds=seconds,
            kv=result.kv,
            whole_seconds=None if base is None else base.pass_seconds * len(ids) / base.n_tokens,
        )

    def _find_layout(self, model: PreTrainedModel) -> Layout:
        """The layout of `model` (this one's, or its CPU copy's). Its load-time probe pass runs like
        every pass, through `_run_model` under the lock: no hooks, no swapped attention, no cache."""
        def run(layout: Layout, input_ids: torch.Tensor, hooks: Hooks) -> np.ndarray:
            with self.lock:
                return _run_model(model, layout, input_ids, hooks=hooks, attention=None, last_only=False, past=None,
                                  keep_kv=False, objective=None, device=str(input_ids.device),
                                  dtype=str(next(model.parameters()).dtype).removeprefix("torch.")).logits
        return find_layout(model, self.name, run)

    def _cpu_model(self) -> tuple[PreTrainedModel, Layout]:
        """A float32 CPU copy and its layout, made once, for retrying a pass the GPU had no memory for."""
        if self._cpu_twin is None:
            import copy

            twin = copy.deepcopy(self.model).to(device="cpu", dtype=torch.float32)
            self._cpu_twin = twin, self._find_layout(twin)
        return self._cpu_twin

    @cached_property
    def facts(self) -> ModelFacts:
        """What the page texts may say about this model (positions, norm, block shape...), read once."""
        return model_facts(self)

    @cached_property
    def norm_fit(self) -> NormFit:
        """The final norm's kind and numbers, measured once: the facts and attribution both read it."""
        return measure_final_norm(self)

    @cached_property
    def embedding_matrix(self) -> np.ndarray:
        """The input embedding matrix (V, D) as read-only float32 numpy, made once."""
        weight = weight_of(self.model.get_input_embeddings()).detach()
        matrix = weight.to(device="cpu", dtype=torch.float32).numpy()
        matrix.setflags(write=False)
        return matrix


_NO_IDS = torch.zeros((1, 1), dtype=torch.long)  # listening_kernel decides by the model alone


def _run_model(model: PreTrainedModel, layout: Layout, input_ids: torch.Tensor, *, hooks: Hooks | None,
               attention: str | Attention | None, last_only: bool, past: KV | None, keep_kv: bool,
               objective: Objective | None, device: str, dtype: str, keep_rows: int | None = None,
               chunk: int | None = None) -> Forward:
    """One pass of `model` with the hooks and attention asked for, undone in finally: no-grad, or
    with autograd up to the input embeddings when there is an objective."""
    name = attention(model, layout, input_ids) if callable(attention) else attention
    kept = 1 if last_only else keep_rows
    spans = _spans(input_ids, chunk, model, kept) if chunk and past is None and objective is None and kept \
        else [(0, input_ids.shape[-1])]
    cache = _cache(model, layout, past, input_ids.shape[0]) if past is not None or keep_kv or len(spans) > 1 else None
    kwargs = dict(input_ids=input_ids, use_cache=cache is not None, cache=cache)
    # A class is hashable; mypy checks type[X] against Hashable through X's own __hash__ (python/mypy#11470).
    if last_only and input_ids.shape[0] > 1 and _keeps_logits(type(model)):  # type: ignore[arg-type]
        # A batch unembeds the last position only. Not for single passes: their last row stays
        # bitwise equal to a capture's (a batch's rows differ in the last bits anyway).
        kwargs["logits_to_keep"] = 1
    elif keep_rows is not None and _keeps_logits(type(model)):  # type: ignore[arg-type]
        kwargs["logits_to_keep"] = keep_rows
    value = None
    with ExitStack() as stack:
        if hooks is not None:
            stack.enter_context(hooks(layout))
        if name is not None:
            stack.enter_context(swapped(model, name))
        if input_ids.numel() >= threads.LARGE_PASS_TOKENS:
            stack.enter_context(threads.all_cores())
        widest = max(hi - lo for lo, hi in spans) * input_ids.shape[0]
        stack.enter_context(long_pass_buffers(widest * layout.summary.d_model * 4))
        start = time.perf_counter()
        if objective is None:
            stack.enter_context(few_row_products(model, input_ids.numel()))
            with torch.inference_mode():
                for lo, hi in spans[:-1]:  # earlier chunks: their keys and values into the cache, one row of logits
                    model(**{**kwargs, "input_ids": input_ids[:, lo:hi], "logits_to_keep": 1})
                lo, hi = spans[-1]
                out = model(**{**kwargs, "input_ids": input_ids[:, lo:hi]})
        else:
            embedded = stack.enter_context(_differentiable_embeddings(model))
            with torch.enable_grad():
                out = model(**kwargs)
                scalar = objective(out.logits)
                torch.autograd.grad(scalar, embedded)
                value = float(scalar.detach())
        with torch.inference_mode():
            rows = out.logits[:, -1] if last_only else out.logits[:, -keep_rows:] if keep_rows else out.logits
            rows = rows[0] if input_ids.shape[0] == 1 else rows
            logits = rows.detach().to(device="cpu", dtype=torch.float32).numpy()
        seconds = time.perf_counter() - start
    logits.setflags(write=False)
    n_kv, rows = input_ids.shape[-1] + (past[0][0].shape[-2] if past else 0), input_ids.shape[0]
    kv = _kv(cache, layout, n_kv) if keep_kv and rows == 1 else None
    row_kv = tuple(_kv(cache, layout, n_kv, row) for row in range(rows)) if keep_kv and rows > 1 else ()
    return Forward(logits=logits, device=device, dtype=dtype, seconds=seconds, kv=kv, objective=value, row_kv=row_kv)


def _spans(input_ids: torch.Tensor, chunk: int, model: PreTrainedModel, kept: int) -> list[tuple[int, int]]:
    """[lo, hi) calls of about `chunk` positions, as even as can be, none shorter than the `kept` rows
    of logits the last must give; one call for a batch or a model that computes every position's
    logits (each chunk's would be kept)."""
    n = input_ids.shape[-1]
    if input_ids.shape[0] != 1 or n <= chunk or not _keeps_logits(type(model)):  # type: ignore[arg-type]
        return [(0, n)]
    calls = min(-(-n // chunk), max(1, n // kept))
    bounds = [n * i // calls for i in range(calls + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _then_read(edit: Edit | None, kept: list[np.ndarray]) -> Edit:
    """`edit` (or nothing), then a read of its result into `kept` as float32 numpy (a single row's (T, D))."""
    def keep(activation: torch.Tensor) -> None:
        kept.append(activation[0].detach().to(device="cpu", dtype=torch.float32).numpy().copy())
    read = reader(keep)
    return read if edit is None else (lambda t: read(edit(t)))


def _both(*hooks: Hooks) -> Hooks:
    """Several hooks installed on one pass, as one."""
    @contextmanager
    def installed(layout: Layout) -> Iterator[None]:
        with ExitStack() as stack:
            for install in hooks:
                stack.enter_context(install(layout))
            yield
    return installed


def _frozen(part: np.ndarray) -> np.ndarray:
    """A read-only copy of part of a larger array."""
    copy = part.copy()
    copy.setflags(write=False)
    return copy


def _is_rows(ids: Sequence[int] | Sequence[Sequence[int]]) -> TypeGuard[Sequence[Sequence[int]]]:
    """Whether ids are rows of ids (their first item says which form they have)."""
    return len(ids) > 0 and not isinstance(ids[0], (int, np.integer))


def _input_ids(ids: Sequence[int] | Sequence[Sequence[int]], batch: int) -> torch.Tensor:
    """(B, T) token ids: one sequence repeated `batch` times, or rows of equal length."""
    if _is_rows(ids):
        rows = [list(row) for row in ids]
        if batch != 1 or len({len(row) for row in rows}) != 1:
            raise ValueError("Rows of ids must all have one length (pad them) and cannot be repeated.")
        return torch.tensor(rows, dtype=torch.long)
    return torch.tensor([list(ids)] * batch, dtype=torch.long)


@functools.cache
def _keeps_logits(model_type: type[PreTrainedModel]) -> bool:
    """Whether a model class's forward can skip the unembedding of all but the last positions."""
    return "logits_to_keep" in inspect.signature(model_type.forward).parameters


@contextmanager
def _differentiable_embeddings(model: PreTrainedModel) -> Iterator[list[torch.Tensor]]:
    """Make the input embeddings a leaf that requires grad (whatever the parameters' flags), so a
    gradient pass reaches every activation after them; yields the list that receives the leaf."""
    leaves: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        leaf = output.detach().requires_grad_()
        leaves.append(leaf)
        return leaf

    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield leaves
    finally:
        handle.remove()


def _cache(model: PreTrainedModel, layout: Layout, past: KV | None, batch: int = 1):
    """A transformers DynamicCache for this model, filled with `past` (repeated over the batch, or one
    per row when its arrays carry a leading row axis, see `stacked_kv`) in the
    model's dtype, each layer's keys and values on the device its block computes on (blocks may live
    on different devices)."""
    from transformers import DynamicCache

    if past is None:
        return DynamicCache(config=model.config)
    dtype = next(model.parameters()).dtype
    devices = [compute_device(b) for b in layout.blocks]

    def rows(array: np.ndarray, device) -> torch.Tensor:  # (kv_heads, P, hd) -> (B, kv_heads, P, hd)
        if array.ndim == 4:  # already one past per row (stacked_kv): rows that went different ways
            return torch.tensor(array, device=device, dtype=dtype)
        return torch.tensor(array, device=device, dtype=dtype)[None].expand(batch, -1, -1, -1).contiguous()

    data = [(rows(k, d), rows(v, d)) for (k, v), d in zip(past, devices)]
    return DynamicCache(data, config=model.config)


def stacked_kv(rows: Sequence[KV]) -> KV:
    """Rows' own keys and values as one past (arrays (B, kv_heads, P, hd)): `forward(rows, past=...)` then
    continues each row from its own context, e.g. two continuations of one prompt that drew different
    tokens. All rows must cover the same number of positions."""
    return tuple((np.stack([row[layer][0] for row in rows]), np.stack([row[layer][1] for row in rows]))
                 for layer in range(len(rows[0])))


def _kv(cache, layout: Layout, n_tokens: int, row: int = 0) -> KV | None:
    """Every layer's keys and values as float32 numpy, or None unless each layer is a plain full cache
    of all n_tokens positions (a sliding window or recurrent state cannot be extended exactly)."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None) or []
    if len(layers) != layout.summary.n_layers:
        return None
    kv: list[tuple[np.ndarray, np.ndarray]] = []
    for layer in layers:
        if type(layer) is not DynamicLayer or layer.keys is None or layer.values is None \
                or layer.keys.shape[-2] != n_tokens:
            return None
        keys, values = (t[row].to(device="cpu", dtype=torch.float32).numpy() for t in (layer.keys, layer.values))
        for array in (keys, values):
            array.setflags(write=False)
        kv.append((keys, values))
    return tuple(kv)


def _free_gpu_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
