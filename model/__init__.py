"""The model floor: load a causal LM, capture one forward pass, and the math on top of it.

No streamlit and no plotly here: everything returns plain numpy / dataclasses. Importing the package
costs no torch or transformers: the names below load their modules on first use.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .core.errors import CaptureError, ModelLoadError, PromptError, UnsupportedModelError, XrayError

if TYPE_CHECKING:
    from .core.capture import Capture
    from .core.description import ModelSummary
    from .engine.language_model import LanguageModel
    from .engine.loading import load_model

_LAZY = {  # name -> the submodule that defines it
    "Capture": "core.capture",
    "LanguageModel": "engine.language_model",
    "ModelSummary": "core.description",
    "load_model": "engine.loading",
}

__all__ = [
    "Capture",
    "CaptureError",
    "LanguageModel",
    "ModelLoadError",
    "ModelSummary",
    "PromptError",
    "UnsupportedModelError",
    "XrayError",
    "load_model",
]


def __getattr__(name: str):
    """Load a heavy export's module on first access (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
