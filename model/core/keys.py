"""Cache keys: plain strings joined one way, naming a model one way, so two sessions asking for the same
result on the same model share one entry and results of different models, devices or dtypes never mix."""
from __future__ import annotations

from typing import Protocol

SEP = "\x1f"  # ASCII's unit separator: never in a model name or a number (a typed prompt comes last)


class NamedModel(Protocol):
    """What naming a model needs (a LanguageModel has it)."""

    @property
    def name(self) -> str: ...

    @property
    def device(self) -> object: ...

    @property
    def dtype_name(self) -> str: ...


def cache_key(*parts: object) -> str:
    """One key from its parts, in order (each as str())."""
    return SEP.join(map(str, parts))


def model_key(lm: NamedModel) -> str:
    """A model as every key names it: name, device and dtype, since the same weights give other numbers
    on another device or in another dtype."""
    return cache_key(lm.name, lm.device, lm.dtype_name)
