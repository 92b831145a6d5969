"""Inside one block's MLP: its parts found generically (up, optional gate, activation, down), the
hidden activations recorded on demand for chosen blocks, and the MLP replayed stage by stage for one
position. An MLP this cannot rebuild exactly (mixture of experts, fused gate and up) is refused.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.capture import Capture
from ..core.errors import CaptureError, UnsupportedModelError
from ..engine.language_model import LanguageModel
from ..engine.layout import Layout
from ..engine.linear import is_projection, weight_of, widths

_CHECK_TOLERANCE = 1e-4  # our recomposition vs the MLP module on a probe (relative)
_EXPERT_HINTS = ("expert", "router", "moe", "switch")


@dataclass(frozen=True)
class MlpParts:
    """One MLP's modules: out = down(act(gate(x)) * up(x)), or down(act(up(x))) when there is no gate."""

    up: nn.Module
    gate: nn.Module | None
    act: nn.Module
    down: nn.Module
    width: int  # d_mlp: how many neurons


def _activation(mlp: nn.Module) -> nn.Module:
    """The parameter-free child that is not dropout or identity: the activation function."""
    for child in mlp.children():
        if next(child.parameters(), None) is None and not isinstance(child, (nn.Dropout, nn.Identity)):
            return child
    raise UnsupportedModelError(f"{type(mlp).__name__} has no activation module of its own to replay.")


def _refuse(mlp: nn.Module, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"The MLP of this model ({type(mlp).__name__}) cannot be opened neuron by neuron: {why}.")


def _candidates(mlp: nn.Module, d_model: int) -> tuple[list[tuple[str, nn.Module]], list[nn.Module]]:
    """(name, projection) pairs reading the stream, and the projections writing back to it."""
    label = (type(mlp).__name__ + " " + " ".join(n for n, _ in mlp.named_children())).lower()
    if any(h in label for h in _EXPERT_HINTS):
        raise _refuse(mlp, "it is a mixture of experts, where each token goes through different neurons")
    readers, writers = [], []
    for name, child in mlp.named_children():
        if is_projection(child):
            inp, out = widths(child)
            if inp == d_model and out != d_model:
                readers.append((name, child))
            elif out == d_model and inp != d_model:
                writers.append(child)
    return readers, writers


def _compose(parts: MlpParts, x: torch.Tensor) -> torch.Tensor:
    """The MLP rebuilt from its parts, (..., D) -> (..., D)."""
    inner = parts.act(parts.gate(x)) * parts.up(x) if parts.gate is not None else parts.act(parts.up(x))
    return parts.down(inner)


def _matches(parts: MlpParts, mlp: nn.Module, probe: torch.Tensor) -> bool:
    try:
        ref = mlp(probe)
    except TypeError as exc:  # Bloom's and MPT's MLP add the residual stream inside: they need it passed in
        raise _refuse(mlp, "its forward needs more than the stream it reads (it adds the residual itself), "
                           "so it cannot be replayed on its own") from exc
    ours = _compose(parts, probe)
    return bool((ours - ref).abs().max() <= _CHECK_TOLERANCE * max(1.0, float(ref.abs().max())))


# One answer per MLP module for as long as it lives: the probe runs the module, and the MLP page asked
# for every block's parts three times per prompt (~0.5 s of a 40-token edit on one core).
_FOUND: weakref.WeakKeyDictionary[nn.Module, MlpParts | str] = weakref.WeakKeyDictionary()  # parts, or why not


def find_parts(mlp: nn.Module, d_model: int) -> MlpParts:
    """The up/gate/down projections and activation of one MLP module, checked on a probe vector once
    per module (a refusal is remembered too)."""
    found = _FOUND.get(mlp)
    if found is None:
        try:
            found = _find_parts(mlp, d_model)
        except UnsupportedModelError as exc:
            found = str(exc)
        _FOUND[mlp] = found
    if isinstance(found, str):
        raise UnsupportedModelError(found)
    return found


def _find_parts(mlp: nn.Module, d_model: int) -> MlpParts:
    readers, writers = _candidates(mlp, d_model)
    if len(writers) != 1 or len(readers) not in (1, 2):
        raise _refuse(mlp, f"expected one or two projections into the hidden layer and one out, found "
                           f"{len(readers)} and {len(writers)}")
    down = writers[0]
    width = widths(down)[0]
    if any(widths(m)[1] != width for _, m in readers):
        raise _refuse(mlp, "its gate and up projections are fused into one matrix or differ in width")
    act = _activation(mlp)
    readers.sort(key=lambda nm: "gate" not in nm[0])  # a child named gate first, if any
    options = [(readers[0][1], None)] if len(readers) == 1 else [
        (readers[1][1], readers[0][1]), (readers[0][1], readers[1][1])]  # (up, gate): both ways round
    weight = weight_of(down)
    probe = torch.randn(3, d_model, generator=torch.Generator().manual_seed(0)).to(weight.device, weight.dtype)
    with torch.inference_mode():
        for up, gate in options:
            parts = MlpParts(up=up, gate=gate, act=act, down=down, width=width)
            if _matches(parts, mlp, probe):
                return parts
    raise _refuse(mlp, "it does not compute down(activation(gate) × up) or down(activation(up))")


def mlp_parts(lm: LanguageModel, layer: int) -> MlpParts:
    """The parts of block `layer`'s MLP (run under the model's lock: the probe uses the shared modules)."""
    if not 0 <= layer < lm.summary.n_layers:
        raise ValueError(f"layer must be in 0..{lm.summary.n_layers - 1}, got {layer}")
    with lm.modules(inference=False):
        return find_parts(lm.layout.mlps[layer], lm.summary.d_model)


def activation_name(lm: LanguageModel, parts: MlpParts) -> str:
    """The activation as the model's config and module name it, e.g. 'SwiGLU: silu(gate) × up'."""
    cfg = lm.model.config.get_text_config() if hasattr(lm.model.config, "get_text_config") else lm.model.config
    name = next((getattr(cfg, k) for k in ("hidden_act", "activation_function", "hidden_activation")
                 if isinstance(getattr(cfg, k, None), str)), type(parts.act).__name__)
    if parts.gate is None:
        return f"{name} ({type(parts.act).__name__})"
    glu = {"silu": "SwiGLU", "swish": "SwiGLU", "gelu": "GeGLU"}.get(name.split("_")[0], "gated")
    return f"{glu}: {name}(gate) × up"


@dataclass(frozen=True)
class MlpActivations:
    """What the chosen blocks' MLPs read and their hidden neurons, for every position. float32."""

    layers: tuple[int, ...]
    inputs: np.ndarray  # (n, T, D) each chosen MLP's input (the stream after the block's MLP norm)
    hidden: np.ndarray  # (n, T, d_mlp) what the down projection reads: one value per neuron

    def __post_init__(self) -> None:
        self.inputs.setflags(write=False)
        self.hidden.setflags(write=False)

    def of(self, layer: int) -> int:
        """The row that holds a block, or a ValueError naming the recorded blocks."""
        if layer not in self.layers:
            raise ValueError(f"block {layer} was not recorded (have {list(self.layers)})")
        return self.layers.index(layer)


class MlpRecording:
    """Keeps the chosen blocks' MLP inputs and hidden activations during one pass over a whole prompt:
    a pass of its own (record_mlp), or riding along the prompt's capture (`hooks` passed as the
    capture's `also`), which spares a page that needs both a second pass over the prompt."""

    def __init__(self, lm: LanguageModel, layers: Sequence[int]) -> None:
        self.layers = tuple(sorted({int(layer) for layer in layers}))
        for layer in self.layers:
            mlp_parts(lm, layer)  # refuses an MLP it cannot open before running anything
        self._inputs: dict[int, np.ndarray] = {}
        self._hidden: dict[int, np.ndarray] = {}

    @property
    def recorded(self) -> bool:
        """Whether a pass has run with these hooks (a capture served from a cache runs none)."""
        return bool(self._inputs or self._hidden)

    @contextmanager
    def hooks(self, layout: Layout) -> Iterator[None]:
        """Install the recording hooks for one pass (batch of one) over `layout`'s modules."""
        handles = []
        try:
            for layer in self.layers:
                parts = find_parts(layout.mlps[layer], layout.summary.d_model)
                handles.append(layout.mlps[layer].register_forward_pre_hook(_keep(self._inputs, layer), with_kwargs=True))
                handles.append(parts.down.register_forward_pre_hook(_keep(self._hidden, layer), with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def result(self, n_tokens: int) -> MlpActivations:
        """The recorded activations of a pass over `n_tokens` tokens; a CaptureError if one is missing."""
        try:
            inputs = np.stack([self._inputs[layer] for layer in self.layers])
            hidden = np.stack([self._hidden[layer] for layer in self.layers])
        except (KeyError, ValueError) as exc:
            raise CaptureError("The MLP hooks did not record every chosen block.") from exc
        if inputs.shape[1] != n_tokens or hidden.shape[1] != n_tokens:
            raise CaptureError(f"The MLP hooks recorded {inputs.shape[1]} positions, not {n_tokens}.")
        return MlpActivations(layers=self.layers, inputs=inputs, hidden=hidden)


def _keep(store: dict[int, np.ndarray], layer: int):
    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else next(iter(kwargs.values()))
        store[layer] = x[0].detach().to(device="cpu", dtype=torch.float32).numpy().copy()
    return hook


def record_mlp(lm: LanguageModel, token_ids: Sequence[int], layers: Sequence[int]) -> MlpActivations:
    """One pass through the gateway that keeps the chosen blocks' MLP inputs and hidden activations
    (not part of every capture: at 256 tokens all 30 blocks of the default model are 47 MB)."""
    recording = MlpRecording(lm, layers)
    lm.forward(list(token_ids), hooks=recording.hooks, last_only=True)  # logits unread: one unembedding row
    return recording.result(len(token_ids))


@dataclass(frozen=True)
class MlpSteps:
    """One position through one block's MLP, stage by stage (float32, from the model's own modules)."""

    layer: int
    position: int
    activation: str  # e.g. "SwiGLU: silu(gate) × up"
    stream: np.ndarray | None  # (D,) the stream the MLP's norm reads; None where that norm is not found
    norm_name: str  # the norm module's class, or "" when not found
    normed: np.ndarray  # (D,) the MLP's input
    gate: np.ndarray | None  # (d_mlp,) the gate projection (gated MLPs only)
    up: np.ndarray  # (d_mlp,)
    activated: np.ndarray  # (d_mlp,) act(gate), or act(up) without a gate
    hidden: np.ndarray  # (d_mlp,) what the down projection reads: one value per neuron
    out: np.ndarray  # (D,) the MLP's output, added to the stream
    after: np.ndarray | None  # (D,) stream + out


def _norm_before(lm: LanguageModel, cap: Capture, layer: int, position: int, normed: torch.Tensor
                 ) -> tuple[np.ndarray | None, str]:
    """The stream and norm that produce the MLP's input: after attention (sequential blocks) or the
    block's input (parallel blocks), whichever a norm of the block maps onto `normed`."""
    block = lm.layout.blocks[layer]
    tol = 1e-4 if normed.dtype == torch.float32 else 2e-2  # a half-precision norm rounds to ~3 digits
    streams = (cap.residual[layer, position] + cap.attn_out[layer, position], cap.residual[layer, position])
    for name, child in block.named_children():
        if "norm" not in (name + type(child).__name__).lower():
            continue
        for stream in streams:
            x = torch.tensor(stream).to(normed.device, normed.dtype)
            y = child(x)
            if torch.allclose(y, normed, atol=tol, rtol=tol):
                return stream.astype(np.float32), type(child).__name__
    return None, ""


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float32).numpy()


def mlp_steps(lm: LanguageModel, cap: Capture, acts: MlpActivations, layer: int, position: int) -> MlpSteps:
    """Replay block `layer`'s MLP at one position from its recorded input, with the model's modules."""
    if not 0 <= position < cap.n_tokens:
        raise ValueError(f"position must be in 0..{cap.n_tokens - 1}, got {position}")
    parts = mlp_parts(lm, layer)
    weight = weight_of(parts.down)
    x = torch.tensor(acts.inputs[acts.of(layer), position]).to(weight.device, weight.dtype)  # (D,)
    with lm.modules():
        stream, norm_name = _norm_before(lm, cap, layer, position, x)
        up = parts.up(x)  # (d_mlp,)
        gate = parts.gate(x) if parts.gate is not None else None  # (d_mlp,)
        activated = parts.act(gate if gate is not None else up)  # (d_mlp,)
        hidden = activated * up if gate is not None else activated  # (d_mlp,)
        out = _numpy(parts.down(hidden))  # (D,)
    return MlpSteps(
        layer=layer, position=position, activation=activation_name(lm, parts),
        stream=stream, norm_name=norm_name, normed=_numpy(x),
        gate=_numpy(gate) if gate is not None else None, up=_numpy(up), activated=_numpy(activated),
        hidden=_numpy(hidden), out=out, after=stream + out if stream is not None else None,
    )
