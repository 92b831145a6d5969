"""How the C allocator places a long pass's buffers: each one of 4 MB or more gets its own mapping.

glibc raises its mmap threshold to the size of each large buffer freed (up to 32 MB), after which
buffers of that size come from its heaps and stay with the process when freed. In a long pass the
per-layer activations then pile up around the keys and values each layer keeps: at 4,096 tokens,
~420 MB of peak memory above what the capture holds (bench/HISTORY.md, 2026-12-04 long prompts).
During a pass whose stream alone takes LARGE_STREAM_BYTES or more per layer (4,096 tokens of the
default model: 9.4 MB) the threshold is fixed at 4 MB, so its activations are mapped and unmapped on
free; after it, at glibc's own ceiling of 32 MB. Smaller passes are left alone: the page faults cost
~10 % more time at 2,048 tokens (5.2 s against 4.7 s) for no memory a capture there needs. A capture
that long avoids both costs by running its pass in chunks (LanguageModel._chunk): each call's
activations are small enough for the heap to reuse (2.4 M page faults at 4,096 tokens -> 0.34 M).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LARGE_STREAM_BYTES = 8 << 20
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
def long_pass_buffers(stream_bytes: int) -> Iterator[None]:
    """Around a pass whose stream takes `stream_bytes` per layer: large buffers mapped on their own
    when that is large (module docstring)."""
    if stream_bytes < LARGE_STREAM_BYTES or _MALLOPT is None:
        yield
        return
    _MALLOPT(_M_MMAP_THRESHOLD, _DURING)
    try:
        yield
    finally:
        _MALLOPT(_M_MMAP_THRESHOLD, _AFTER)
