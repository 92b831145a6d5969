"""How the C allocator places a long pass's buffers: each one of 4 MB or more gets its own mapping.

glibc raises its mmap threshold to the size of each large buffer freed (up to 32 MB), after which
buffers of that size come from its heaps and stay with the process when freed. In a long pass the
per-layer activations then pile up around the keys and values each layer keeps: at 4,096 tokens,
~420 MB of peak memory above what the capture holds (bench/HISTORY.md, 2026-12-04 long prompts).
During a pass over LONG_PASS_TOKENS or more the threshold is fixed at 4 MB (activations of 9 MB
and up are mapped and unmapped on free); after it, at glibc's own ceiling of 32 MB. Shorter passes are
left alone: at 1,024 tokens a 4 MB threshold cost ~6 % more CPU in page faults for no memory gained.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LONG_PASS_TOKENS = 2048
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_DURING = 4 << 20
_AFTER = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where the dynamic threshold ends up


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's mallopt, or None under another C library."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    except OSError:
        return None


_MALLOPT = _mallopt()


@contextmanager
def long_pass_buffers(n_tokens: int) -> Iterator[None]:
    """Around a pass: large buffers mapped on their own when it is long (module docstring)."""
    if n_tokens < LONG_PASS_TOKENS or _MALLOPT is None:
        yield
        return
    _MALLOPT(_M_MMAP_THRESHOLD, _DURING)
    try:
        yield
    finally:
        _MALLOPT(_M_MMAP_THRESHOLD, _AFTER)
