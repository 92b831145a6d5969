"""A capture's large arrays on recycled memory: when the last array over a buffer dies (its capture
evicted, nobody else holding a view), the buffer waits here for the next capture of about its size.

glibc maps every buffer of 32 MB or more on its own and unmaps it on free, so each capture's large
arrays (a 4,096-token capture keeps four of ~280 MB) were fresh pages, faulted in 4 KB at a time: 0.22 M
page faults at 4,096 tokens, 2-10 us each on this VM (bench/HISTORY.md, 2026-12-05). A capture whose
buffers come back from the pool faults in none of them.

A buffer is reused only once no array over it is alive: numpy keeps the buffer's exporter (a ctypes
array) alive through every view, every `torch.from_numpy` and every tensor view of those, and the
exporter's finalizer hands the buffer back. Idle buffers stay bounded: at most the capture cache's
budget, all of them given back to the C library when a request finds none of its size.
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from collections.abc import Callable

import numpy as np
import torch

from ..core.settings import settings

POOLED_BYTES = 32 << 20  # glibc's largest mmap threshold: smaller buffers come from its heap, already reused
SLACK = 16  # a buffer serves a request of at least 15/16 of its size: what the cache counts stays within ~6 %


def _cache_budget() -> int:
    return settings().cache_mb * 2**20


class ArrayPool:
    """Uninitialised float32 arrays; those of `pooled_bytes` or more on buffers that come back when unused."""

    def __init__(self, idle_budget: Callable[[], int] = _cache_budget, pooled_bytes: int = POOLED_BYTES) -> None:
        self.pooled_bytes = pooled_bytes
        self._idle: list[np.ndarray] = []  # uint8 buffers no array uses, oldest first
        self._idle_budget = idle_budget
        self._lock = threading.RLock()  # a finalizer may run on the thread that holds it (a collection)
        self.reused = 0  # requests served from an idle buffer (tests and benches read it)

    @property
    def idle_bytes(self) -> int:
        with self._lock:
            return sum(buffer.nbytes for buffer in self._idle)

    def empty(self, *shape: int) -> np.ndarray:
        """An uninitialised float32 array of `shape` (contents are whatever the buffer held)."""
        nbytes = int(np.prod(shape)) * 4
        if nbytes < max(1, self.pooled_bytes):
            return torch.empty(shape, dtype=torch.float32).numpy()
        buffer = self._take(nbytes)
        if buffer is None:
            buffer = torch.empty(nbytes, dtype=torch.uint8).numpy()
        # The buffer's first nbytes, alive while any array over them is (numpy's stubs know neither ctypes
        # array as a buffer).
        exporter = (ctypes.c_char * nbytes).from_buffer(buffer)  # type: ignore[arg-type]
        weakref.finalize(exporter, self._give_back, buffer).atexit = False  # at exit, nothing to keep
        return np.frombuffer(exporter, dtype=np.float32).reshape(shape)  # type: ignore[call-overload]

    def _take(self, nbytes: int) -> np.ndarray | None:
        """The smallest idle buffer that fits nbytes with little to spare; none fitting, every idle one goes."""
        with self._lock:
            fitting = [i for i, b in enumerate(self._idle) if nbytes <= b.nbytes <= nbytes + nbytes // (SLACK - 1)]
            if not fitting:
                self._idle.clear()
                return None
            self.reused += 1
            return self._idle.pop(min(fitting, key=lambda i: self._idle[i].nbytes))

    def _give_back(self, buffer: np.ndarray) -> None:
        with self._lock:
            self._idle.append(buffer)
            budget = self._idle_budget()
            while self._idle and sum(b.nbytes for b in self._idle) > budget:
                self._idle.pop(0)


POOL = ArrayPool()


def empty(*shape: int) -> np.ndarray:
    """An uninitialised float32 array for a capture to keep, from the process's pool."""
    return POOL.empty(*shape)
