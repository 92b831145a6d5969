"""The final norm as numbers, measured once per loaded model: centred or not (a LayerNorm removes the
mean, so shifting every component leaves its output unchanged; an RMSNorm's output changes), then its
effective gain and bias fitted on probe vectors and checked on another. The model's facts read the
kind, attribution the numbers; the math is read off the module, not its class name: Gemma's (1 + w)
gain, OLMo's parameter-free LayerNorm, Cohere's bias-free LayerNorm all come out right, and a norm
that fits no such formula keeps why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..core.description import Norm
from ..core.errors import UnsupportedModelError
from .devices import compute_device
from .probe import tolerance

if TYPE_CHECKING:
    from .language_model import LanguageModel

_CHECK_TOLERANCE = 1e-3  # our formula vs the norm module on probe vectors (relative; more in half precision)
_DEFAULT_EPS = 1e-5  # when the module names no epsilon (it barely matters for streams far from zero)


@dataclass(frozen=True)
class FinalNorm:
    """The final norm as numbers: y = weight * (x - mean [layer only]) / scale(x) + bias."""

    kind: Norm
    weight: np.ndarray  # (D,)
    bias: np.ndarray  # (D,) zeros when the norm has none
    eps: float

    def scale(self, x: np.ndarray) -> float:
        """The divisor the norm applies to the stream x (D,): RMS or standard deviation."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "none":
            return 1.0
        if self.kind == "layer":
            x = x - x.mean()
        return float(np.sqrt(np.mean(x * x) + self.eps))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The norm itself, from these numbers (D,) -> (D,)."""
        x = np.asarray(x, dtype=np.float64)
        centred = x - x.mean() if self.kind == "layer" else x
        return self.weight * centred / self.scale(x) + self.bias


@dataclass(frozen=True)
class NormFit:
    """What one measurement found: the norm's kind always, its numbers where a formula fits."""

    kind: Norm
    norm: FinalNorm | None
    problem: str = ""  # why no formula fits, when norm is None

    def numbers(self) -> FinalNorm:
        """The fitted norm, or an UnsupportedModelError saying why there is none."""
        if self.norm is None:
            raise UnsupportedModelError(self.problem)
        return self.norm


def _numpy(t: torch.Tensor | None, size: int) -> np.ndarray:
    if t is None:
        return np.zeros(size, dtype=np.float64)
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def _in_dtype(lm: LanguageModel, x: np.ndarray) -> np.ndarray:
    """x rounded to the model's dtype (what the module really sees), as float64."""
    return torch.tensor(x).to(lm.dtype).to(torch.float64).numpy()


def _run(lm: LanguageModel, module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The module on rows x (N, D) already in the model's dtype, back as float64."""
    with lm.modules():
        out = module(torch.tensor(x).to(device=compute_device(module), dtype=lm.dtype))
    return out.detach().to(device="cpu", dtype=torch.float64).numpy()


def _fit_gain(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate least squares y = g * z + b over the probe rows: (g, b), each (D,)."""
    zc, yc = z - z.mean(axis=0), y - y.mean(axis=0)
    gain = (zc * yc).sum(axis=0) / (zc * zc).sum(axis=0)
    return gain, y.mean(axis=0) - gain * z.mean(axis=0)


def _snap(fitted: np.ndarray, options: list[np.ndarray], tol: float) -> np.ndarray:
    """The module's own numbers where one of them is what the fit found (exact, not a fit's rounding)."""
    for option in options:
        if option.shape == fitted.shape and np.abs(option - fitted).max() <= tol * max(1.0, np.abs(fitted).max()):
            return option
    return fitted


def measure_final_norm(lm: LanguageModel) -> NormFit:
    """Probe the final norm once (LanguageModel.norm_fit keeps the answer): its kind, then its gain and
    bias fitted on five probe vectors and checked on a sixth."""
    module, D = lm.layout.final_norm, lm.summary.d_model
    if module is None:
        return NormFit("none", FinalNorm("none", np.ones(D), np.zeros(D), 0.0))
    tol = max(_CHECK_TOLERANCE, tolerance(lm.dtype))
    rng = np.random.default_rng(0)
    probes = _in_dtype(lm, rng.normal(size=(6, D)) * 3 + 0.5)  # (6, D): 5 to fit, 1 to check
    out = _run(lm, module, probes)
    shifted = _run(lm, module, _in_dtype(lm, probes + 4.0))  # a LayerNorm removes the mean: no change
    kind: Norm = "layer" if np.abs(shifted - out).max() <= tol * max(1.0, np.abs(out).max()) else "rms"
    eps = next((float(v) for v in (getattr(module, a, None) for a in ("variance_epsilon", "eps", "epsilon"))
                if isinstance(v, (int, float))), _DEFAULT_EPS)
    unit = FinalNorm(kind, np.ones(D), np.zeros(D), eps)
    z = np.stack([unit.apply(p) for p in probes])  # (6, D) the norm before its gain and bias
    gain, bias = _fit_gain(z[:5], out[:5])
    weight = _numpy(getattr(module, "weight", None), D) if getattr(module, "weight", None) is not None else None
    gains = [weight, 1.0 + weight] if weight is not None else []
    given = getattr(module, "bias", None)
    norm = FinalNorm(kind, _snap(gain, [*gains, np.ones(D)], tol),
                     _snap(bias, [_numpy(given, D) if given is not None else np.zeros(D), np.zeros(D)], tol), eps)
    if np.abs(norm.apply(probes[5]) - out[5]).max() > tol * max(1.0, np.abs(out[5]).max()):
        return NormFit(kind, None, (
            f"The final norm of {lm.summary.architecture} ({type(module).__name__}) is neither an RMSNorm nor a "
            "LayerNorm with a gain and bias per feature, so its logit cannot be split block by block here."))
    return NormFit(kind, norm)
