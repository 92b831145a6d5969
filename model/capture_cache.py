"""The app's shared cache of Captures, bounded by bytes: memory stays bounded however many prompts
its users type, and two sessions asking for the same prompt compute it once.
"""
from __future__ import annotations

from .capture import Capture
from .lru import BoundedLRU
from .settings import load_settings


class CaptureCache(BoundedLRU[Capture]):
    """Least-recently-used captures within a byte budget (XRAY_CACHE_MB by default)."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        super().__init__(budget_bytes or load_settings().cache_mb * 2**20)
