"""The model floor: load a causal LM, capture one forward pass, and the math on top of it.

No streamlit and no plotly here: everything returns plain numpy / dataclasses.
"""
from .capture import Capture
from .errors import CaptureError, ModelLoadError, PromptError, UnsupportedModelError, XrayError
from .language_model import LanguageModel
from .layout import ModelSummary
from .loading import load_model

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
