"""The app's shared cache of Captures, bounded by bytes: memory stays bounded however many prompts
its users type, two sessions asking for the same prompt compute it once, and a prompt that shares
its first tokens with a cached one runs only the positions after them.

Before a capture runs, the captures it will push out go first (at least its long arrays' worth,
`LanguageModel.held_bytes`; an extension keeps its base), so that its pass reuses their memory: their
large arrays' buffers wait in model/engine/array_pool.py for it. At 2,000 tokens on this 2-core VM a
capture, once the cache was full, then faulted in no page instead of ~100 K (bench/HISTORY.md,
2026-12-05).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.capture import Capture
from ..core.settings import settings
from .lru import BoundedLRU

if TYPE_CHECKING:  # the type only: the cache itself needs no torch
    from .language_model import Hooks, LanguageModel


class CaptureCache(BoundedLRU[Capture]):
    """Least-recently-used captures within a byte budget (XRAY_CACHE_MB by default)."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        super().__init__(budget_bytes or settings().cache_mb * 2**20)

    def get_or_extend(self, key: str, lm: LanguageModel, *, prompt: str | None = None,
                      ids: Sequence[int] | None = None, max_tokens: int | None = None,
                      also: Hooks | None = None, chat: bool = False) -> Capture:
        """The capture for key. On a miss, the prompt (tokenized with max_tokens, wrapped in the chat
        template with `chat`: the key must say so) or the ids are captured from the cached capture
        sharing the most leading tokens with them, or whole; `also` rides along a whole capture's pass
        only (an extension runs the new positions alone)."""
        def compute() -> Capture:
            token_ids = list(ids) if ids is not None else lm.encode(prompt or "", max_tokens, chat=chat)
            base = self.longest_shared(lm, token_ids)
            self.make_room(lm.held_bytes(len(token_ids)), keep=base)  # module docstring
            if base is None:
                return lm.capture_ids(token_ids, prompt, also=also)
            return lm.extend_capture(base, token_ids, prompt)

        return self.get_or_compute(key, compute)

    def longest_shared(self, lm: LanguageModel, ids: Sequence[int]) -> Capture | None:
        """The cached capture of lm that shares the most leading tokens with ids, if any shares one."""
        best, best_n = None, 0
        for cap in self.values():
            n = lm.shared_prefix(cap, list(ids))
            if n > best_n:
                best, best_n = cap, n
        return best
