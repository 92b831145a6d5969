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

THREADS_ENV = "XRAY_TORCH_THREADS"  # operator override of the intra-op thread count


def default_threads() -> int:
    """Intra-op threads for a server that shares its cores: all but one core, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def configure(threads: int | None = None) -> int:
    """Make torch's workers sleep instead of spin when idle and cap their number; returns the count.

    Before torch is imported this sets the OpenMP/MKL environment (an operator's own OMP_* or
    XRAY_TORCH_THREADS values win); after, it can only set torch's intra-op count."""
    chosen = threads or _env_int(THREADS_ENV) or _env_int("OMP_NUM_THREADS") or default_threads()
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
