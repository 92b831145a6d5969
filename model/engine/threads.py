"""Thread settings for torch inside a shared server process, applied before torch is imported.

In the app, torch's OpenMP workers share the cores with Streamlit's threads and, on a laptop, the
browser. OpenMP's default is to spin-wait between parallel regions, so its workers burn the cores
the server and browser need and a capture is slowed by the very contention it causes (measured:
~1.6 s in the app against ~0.2 s alone; passive waiting alone gave 0.67 s, one thread 0.47 s).
These are process-wide environment variables read once when the OpenMP runtime starts, so they
must be set before the first `import torch`: call `configure()` first thing in the app shell.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ..core.settings import settings

LARGE_PASS_TOKENS = 128  # a pass over at least this many tokens (all rows) runs on every core

_operator: dict[str, bool | None] = {"chose": None}  # whether an operator set the thread count (then all_cores() keeps it)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Intra-op threads for a server that shares its cores: all but one core, at least one."""
    return max(1, _cores() - 1)


def long_work_threads() -> int:
    """Threads for one long computation during which the person only waits: every core, or the
    operator's own count. The calling thread's torch count decides when it is already larger."""
    import torch

    saved = torch.get_num_threads()  # this thread's count: torch's thread setting is per thread
    return saved if _operator["chose"] else max(saved, _cores())


@contextmanager
def all_cores() -> Iterator[None]:
    """Every core for one long computation during which the person only waits: the browser has
    nothing to draw until it ends, so the core left free for it would idle (a 40-token logit lens:
    1.9 s on one thread, 1.3 s on two). Small passes stay on fewer threads, where waking sleeping
    workers for every small operation costs more than it gains. An operator's own count is kept."""
    import torch

    saved, wanted = torch.get_num_threads(), long_work_threads()
    if wanted == saved:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def configure(threads: int | None = None) -> int:
    """Make torch's workers sleep instead of spin when idle and cap their number; returns the count.

    Before torch is imported this sets the OpenMP/MKL environment (an operator's own OMP_* or
    XRAY_TORCH_THREADS values win); after, it can only set torch's intra-op count."""
    asked = threads or settings().torch_threads or _env_int("OMP_NUM_THREADS")
    if _operator["chose"] is None:  # the first call decides (later ones see our own OMP_NUM_THREADS)
        _operator["chose"] = asked is not None
    chosen = asked or default_threads()
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("KMP_BLOCKTIME", "0")  # the same for Intel's OpenMP runtime
        os.environ["OMP_NUM_THREADS"] = str(chosen)
        os.environ.setdefault("MKL_NUM_THREADS", str(chosen))
        return chosen
    import torch

    torch.set_num_threads(chosen)
    return chosen


def _env_int(name: str) -> int | None:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def in_workers(work: Callable[[int], None], starts: range, workers: int) -> None:
    """work(start) for every chunk: on this thread, or spread over `workers` threads that each run
    torch on one thread (numpy's and torch's products release the GIL, so the chunks use every core)."""
    if workers == 1:
        for start in starts:
            work(start)
        return

    import torch

    def one_thread(start: int) -> None:
        torch.set_num_threads(1)  # this worker's own setting: the workers share the cores
        with torch.inference_mode():
            work(start)
    with ThreadPoolExecutor(workers, thread_name_prefix="xray-work") as pool:
        list(pool.map(one_thread, starts))
