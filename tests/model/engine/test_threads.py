"""threads.configure: before torch is imported it sets passive OpenMP waiting and the thread count
torch then really uses; an operator's own values win. Checked in fresh interpreters."""
from __future__ import annotations

import os
import subprocess
import sys


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "KMP_", "XRAY_TORCH"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**clean, **env})
    return out.stdout.strip().splitlines()[-1]


PROBE = ("from model.engine.threads import configure; n = configure({arg}); import os, torch; "
         "print(n, torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])")


def test_configure_before_torch_sets_threads_and_passive_waiting():
    assert _run(PROBE.format(arg="2")) == "2 2 PASSIVE"
    assert _run(PROBE.format(arg="1")) == "1 1 PASSIVE"


def test_operator_values_win():
    assert _run(PROBE.format(arg=""), XRAY_TORCH_THREADS="1", OMP_WAIT_POLICY="ACTIVE") == "1 1 ACTIVE"


def test_default_leaves_a_core_free():
    from model.engine.threads import default_threads

    cores = len(os.sched_getaffinity(0))
    assert default_threads() == max(1, cores - 1)
    assert _run(PROBE.format(arg="")).split()[:2] == [str(max(1, cores - 1))] * 2


WIDEN = ("from model.engine.threads import configure, all_cores; configure({arg}); import torch; a = torch.get_num_threads(); "
         "ctx = all_cores(); ctx.__enter__(); inner = all_cores(); inner.__enter__(); b = torch.get_num_threads(); "
         "inner.__exit__(None, None, None); c = torch.get_num_threads(); ctx.__exit__(None, None, None); "
         "configure(); print(a, b, c, torch.get_num_threads())")


def test_all_cores_widens_for_a_long_pass_and_restores_after_it():
    cores = len(os.sched_getaffinity(0))
    base = max(1, cores - 1)
    assert _run(WIDEN.format(arg="")) == f"{base} {max(cores, base)} {max(cores, base)} {base}"


def test_all_cores_keeps_an_operators_count():
    assert _run(WIDEN.format(arg=""), XRAY_TORCH_THREADS="1") == "1 1 1 1"
