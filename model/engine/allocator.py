"""The C allocator's one setting the app changes: every large buffer gets its own mapping.

glibc raises its mmap threshold to the size of each large buffer freed (up to 32 MB), after which
buffers of that size come from its heaps and stay with the process when freed; a long pass's
per-layer activations then pile up around the buffers a capture keeps. At 4,096 tokens that was
~350 MB of peak memory above what the capture holds (bench/HISTORY.md, 2026-12-04 long prompts).
A fixed threshold also stops the adjustment: a buffer of 1 MB or more is mapped, and unmapped on free.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
LARGE_BYTES = 1 << 20  # from this size a buffer is its own mapping


def return_large_frees() -> bool:
    """Fix glibc's mmap threshold at LARGE_BYTES; False where the C library is not glibc (nothing changes)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        mallopt = None
    if mallopt is None:
        log.info("No mallopt in this C library: large buffers keep its default placement")
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BYTES))
