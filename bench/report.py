"""Turn measured numbers into the printed table, the target checks and bench/README.md."""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .forward import LENGTHS, REPEATS, ROWS, ForwardResult

PACKAGES = ("torch", "transformers", "transformer-lens", "streamlit", "plotly", "numpy", "playwright")


@dataclass
class Check:
    """One target: the measured value, the limit as written in the brief, and whether it holds."""

    name: str
    measured: str
    target: str
    ok: bool | None  # None = could not be measured

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "MISS")


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    """Cores, CPU and GPU model, torch threads and the versions that shape the numbers."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU run)"
    info = {
        "CPU": f"{_cpu_model()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}",
        "GPU": gpu,
        "Python": sys.version.split()[0],
        "OS": platform.platform(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }
    info.update({p: _package(p) for p in PACKAGES})
    return info


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:,.1f}"


def forward_table(fwd: ForwardResult, cpu: bool = False) -> list[str]:
    """Markdown table: median ms and GFLOP/s per row and length (wall clock, or process CPU time)."""
    unit = "CPU ms" if cpu else "ms"
    head = "| row | " + " | ".join(f"{n} tok {unit} (GFLOP/s)" for n in LENGTHS) + " |"
    lines = [head, "|" + "---|" * (len(LENGTHS) + 1)]
    table = fwd.cpu_seconds if cpu else fwd.seconds
    for i, name in enumerate(ROWS, start=1):
        cells = []
        for n in LENGTHS:
            s = table.get((name, n))
            cells.append("n/a" if s is None else f"{ms(s)} ({fwd.flops[n] / s / 1e9:.1f})")
        lines.append(f"| {i}. {name} | " + " | ".join(cells) + " |")
    lines.append("| repeats (median of) | " + " | ".join(str(REPEATS[n]) for n in LENGTHS) + " |")
    return lines


def ratio(fwd: ForwardResult, a: str, b: str, n: int, cpu: bool = False) -> float | None:
    table = fwd.cpu_seconds if cpu else fwd.seconds
    sa, sb = table.get((a, n)), table.get((b, n))
    return None if sa is None or sb is None else sa / sb


def forward_checks(fwd: ForwardResult, cpu: bool = False) -> list[Check]:
    """Capture vs the output_attentions floor, and TransformerLens vs capture (wall or CPU time)."""
    checks, kind = [], " (CPU time)" if cpu else ""
    for n in (64, 256, 1024):
        r = ratio(fwd, ROWS[2], ROWS[1], n, cpu)
        checks.append(Check(f"capture / forward+outputs at {n} tokens{kind}", "n/a" if r is None else f"{r:.2f}x",
                            "<= 1.10x", None if r is None else r <= 1.10))
    for n in LENGTHS:
        r = ratio(fwd, ROWS[3], ROWS[2], n, cpu)
        need = 1.25 if n in (64, 256) else 1.0
        op = ">= 1.25x" if need > 1 else "> 1.00x"
        checks.append(Check(f"TransformerLens / capture at {n} tokens (our speed-up){kind}",
                            "n/a" if r is None else f"{r:.2f}x", op,
                            None if r is None else (r >= need if need > 1 else r > 1.0)))
    return checks


def table_text(rows: list[list[str]]) -> str:
    """Fixed-width console table from rows of cells (first row = header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def markdown_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def checks_markdown(checks: list[Check]) -> list[str]:
    return markdown_rows(["target", "measured", "limit", "verdict"],
                         [[c.name, c.measured, c.target, f"**{c.verdict}**"] for c in checks])
