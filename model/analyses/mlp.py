"""Inside one block's MLP: its parts (found by the engine, model/engine/mlp_parts.py), the inputs
computed from a capture's streams or recorded on demand through the "mlp_in" patch site, the neurons
replayed from them (one block at every position, or every block at one position), and the MLP
replayed stage by stage for one position. An MLP that cannot be rebuilt exactly (mixture of experts,
fused gate and up) is refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.capture import Capture
from ..core.errors import CaptureError
from ..engine.language_model import LanguageModel
from ..engine.layout import Layout
from ..engine.linear import weight_of
from ..engine.mlp_parts import MlpParts, find_parts
from ..engine.patch_sites import Edit, Site, editing, reader


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
    """What the chosen blocks' MLPs read, for every position. float32. Their neurons are replayed from
    it when a view asks (`block_neurons`, `neurons_at`): keeping them too took 3.7x the memory (at
    3,500 tokens 887 MB against 242 MB, more than the whole cache of derived results)."""

    layers: tuple[int, ...]
    inputs: np.ndarray  # (n, T, D) each chosen MLP's input (the stream after the block's MLP norm)

    def __post_init__(self) -> None:
        self.inputs.setflags(write=False)

    def of(self, layer: int) -> int:
        """The row that holds a block, or a ValueError naming the recorded blocks."""
        if layer not in self.layers:
            raise ValueError(f"block {layer} was not recorded (have {list(self.layers)})")
        return self.layers.index(layer)


class MlpRecording:
    """Keeps the chosen blocks' MLP inputs during one pass over a whole prompt:
    a pass of its own (record_mlp), or riding along the prompt's capture (`hooks` passed as the
    capture's `also`), which spares a page that needs both a second pass over the prompt."""

    def __init__(self, lm: LanguageModel, layers: Sequence[int]) -> None:
        self.layers = tuple(sorted({int(layer) for layer in layers}))
        for layer in self.layers:
            mlp_parts(lm, layer)  # refuses an MLP it cannot open before running anything
        self._inputs: dict[int, np.ndarray] = {}

    @property
    def recorded(self) -> bool:
        """Whether a pass has run with these hooks (a capture served from a cache runs none)."""
        return bool(self._inputs)

    def hooks(self, layout: Layout) -> AbstractContextManager[None]:
        """The recording edits for one pass (batch of one) over `layout`'s modules."""
        edits: dict[Site, Edit] = {("mlp_in", layer): _keep(self._inputs, layer) for layer in self.layers}
        return editing(layout, edits)

    def result(self, n_tokens: int) -> MlpActivations:
        """The recorded inputs of a pass over `n_tokens` tokens; a CaptureError if one is missing."""
        try:
            inputs = np.stack([self._inputs[layer] for layer in self.layers])
        except (KeyError, ValueError) as exc:
            raise CaptureError("The MLP hooks did not record every chosen block.") from exc
        if inputs.shape[1] != n_tokens:
            raise CaptureError(f"The MLP hooks recorded {inputs.shape[1]} positions, not {n_tokens}.")
        return MlpActivations(layers=self.layers, inputs=inputs)


def _keep(store: dict[int, np.ndarray], layer: int) -> Edit:
    """Read a site: keep its activation (row 0 of the batch) as float32 numpy under `layer`."""
    def keep(x: torch.Tensor) -> None:
        store[layer] = x[0].detach().to(device="cpu", dtype=torch.float32).numpy().copy()
    return reader(keep)


def record_mlp(lm: LanguageModel, token_ids: Sequence[int], layers: Sequence[int]) -> MlpActivations:
    """One pass through the gateway that keeps the chosen blocks' MLP inputs (not part of every
    capture: at 256 tokens all 30 blocks of the default model are 17 MB)."""
    recording = MlpRecording(lm, layers)
    lm.forward(list(token_ids), hooks=recording.hooks, last_only=True)  # logits unread: one unembedding row
    return recording.result(len(token_ids))


def inputs_from_capture(lm: LanguageModel, cap: Capture, layers: Sequence[int]) -> MlpActivations | None:
    """Every chosen block's MLP input from the capture's own streams, without a pass: a norm of the block
    applied to the stream after its attention (sequential blocks) or to the block's input (parallel ones),
    the one that rebuilds the MLP write the capture holds at its first and last positions. None for a
    16-bit capture (its streams were rounded in the pass) or a block no norm rebuilds (a norm after the
    MLP, for one): record_mlp then runs a pass."""
    if cap.dtype != "float32":
        return None
    inputs = []
    for layer in sorted({int(layer) for layer in layers}):
        found = _input_of(lm, cap, layer)
        if found is None:
            return None
        inputs.append(found)
    return MlpActivations(layers=tuple(sorted({int(layer) for layer in layers})), inputs=np.stack(inputs))


def _input_of(lm: LanguageModel, cap: Capture, layer: int) -> np.ndarray | None:
    """(T, D) block `layer`'s MLP input: the first norm x stream pairing whose MLP output at the first and
    last positions is the captured MLP write (to float rounding), applied to every position."""
    parts, block = mlp_parts(lm, layer), lm.layout.blocks[layer]
    weight = weight_of(parts.down)
    probe = [0, cap.n_tokens - 1]
    target = cap.mlp_out[layer, probe].astype(np.float64)
    tol = 1e-4 * float(np.abs(target).max()) + 1e-7  # relative: float32 rounding is ~1e-6 of the write
    with lm.modules():
        for norm in _norms(block):
            for stream in _streams(cap, layer, slice(None)):
                x = norm(torch.tensor(stream[probe], device=weight.device, dtype=weight.dtype))
                out = _numpy(parts.down(_hidden(parts, x))).astype(np.float64) * lm.layout.writes.scale
                if np.abs(out - target).max() <= tol:
                    return _numpy(norm(torch.tensor(stream, device=weight.device, dtype=weight.dtype)))
    return None


def block_neurons(lm: LanguageModel, acts: MlpActivations, layer: int) -> np.ndarray:
    """(T, d_mlp) one block's neurons at every position: its MLP's own modules on the recorded input,
    the operations its pass ran on the same rows (what its down projection read). Read-only: pages
    share it through the cache of derived results."""
    neurons = _neurons(lm, layer, acts.inputs[acts.of(layer)])
    neurons.setflags(write=False)
    return neurons


def neurons_at(lm: LanguageModel, acts: MlpActivations, position: int) -> np.ndarray:
    """(n, d_mlp) every recorded block's neurons at one position."""
    return np.stack([_neurons(lm, layer, acts.inputs[i, position:position + 1])[0] for i, layer in enumerate(acts.layers)])


def _neurons(lm: LanguageModel, layer: int, inputs: np.ndarray) -> np.ndarray:
    """(rows, d_mlp) the neurons of rows of block `layer`'s MLP input."""
    parts = mlp_parts(lm, layer)
    weight = weight_of(parts.down)
    with lm.modules():
        return _numpy(_hidden(parts, torch.tensor(inputs, device=weight.device, dtype=weight.dtype)))


def _hidden(parts: MlpParts, x: torch.Tensor) -> torch.Tensor:
    """act(gate(x)) * up(x), or act(up(x)) without a gate: what the down projection reads."""
    up = parts.up(x)
    return parts.act(parts.gate(x)) * up if parts.gate is not None else parts.act(up)


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
    tol = 1e-4 if normed.dtype == torch.float32 else 2e-2  # a half-precision norm rounds to ~3 digits
    for child in _norms(lm.layout.blocks[layer]):
        for stream in _streams(cap, layer, position):
            x = torch.tensor(stream).to(normed.device, normed.dtype)
            y = child(x)
            if torch.allclose(y, normed, atol=tol, rtol=tol):
                return stream.astype(np.float32), type(child).__name__
    return None, ""


def _norms(block: nn.Module) -> list[nn.Module]:
    """The block's norms (by module or class name): one of them makes its MLP's input."""
    return [child for name, child in block.named_children() if "norm" in (name + type(child).__name__).lower()]


def _streams(cap: Capture, layer: int, rows: int | slice) -> tuple[np.ndarray, np.ndarray]:
    """The streams a block's MLP norm may read, at `rows`: after its attention (sequential blocks), and
    the block's input (parallel blocks)."""
    return cap.residual[layer, rows] + cap.attn_out[layer, rows], cap.residual[layer, rows]


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
