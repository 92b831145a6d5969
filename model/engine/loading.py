"""load_model: the embedded default, a hub id, or a local folder (safetensors or GGUF), on the best
device, with eager attention (sdpa returns no attention patterns), and clear errors otherwise.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..core.errors import ModelLoadError, UnsupportedModelError
from . import default_model
from .default_model import Progress
from .devices import input_device
from .language_model import LanguageModel
from .placement import plan_device_map

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_DEVICE_MAP_MODES = ("auto", "balanced", "balanced_low_0", "sequential")
_MEMORY_HEADROOM = 0.8  # refuse a model whose weights need more than this share of free memory


def resolve_device(device: str | None = None) -> str:
    """The device asked for, else CUDA, else Apple MPS, else CPU."""
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"Device '{device}' was asked for but CUDA is not available here.")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """float32 on CPU by default; bfloat16 (or float16 where bf16 is missing) on a GPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype:
        if dtype not in _DTYPES:
            raise ModelLoadError(f"Unknown dtype '{dtype}'; choose one of {', '.join(_DTYPES)}.")
        return _DTYPES[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def _source(name_or_path: str) -> tuple[str, dict]:
    """Where from_pretrained should look, and the extra kwargs (gguf_file) for a GGUF source."""
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
        if ggufs and not has_weights:
            return str(path), {"gguf_file": ggufs[0].name}
        if not (path / "config.json").is_file() and not ggufs:
            raise ModelLoadError(
                f"The folder '{path}' holds no model: expected config.json with safetensors weights, "
                "or a .gguf file."
            )
        return str(path), {}
    if path.exists():
        raise ModelLoadError(f"'{name_or_path}' is a file, not a model: give its folder, or a .gguf file.")
    if name_or_path.startswith(("/", "./", "../", "~")):
        raise ModelLoadError(f"No such file or folder: '{name_or_path}'.")
    return name_or_path, {}


def hub_reachable(timeout: float = 2.0) -> bool:
    """Can we open a connection to the hub? Checked once up front instead of retrying for ~25 s."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_config(source: str, extra: dict, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        try:
            return AutoConfig.from_pretrained(
                source, trust_remote_code=trust_remote_code, local_files_only=True, **extra
            )
        except OSError:
            if Path(source).is_dir() or not hub_reachable():
                raise
            return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, **extra)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"'{source}' runs its own code from the hub (trust_remote_code). That is off for "
                "safety; an operator can allow it explicitly."
            ) from exc
        raise ModelLoadError(f"'{source}' has a configuration transformers cannot read: {exc}") from exc
    except OSError as exc:
        raise ModelLoadError(_not_found_message(source, exc)) from exc


def _not_found_message(source: str, exc: Exception) -> str:
    offline = not Path(source).is_dir() and not hub_reachable()
    why = "this machine is offline and the model is not in the local Hugging Face cache" if offline else (
        "it is not a local folder, and the Hugging Face hub did not provide it (unknown id, private, "
        "or no network)"
    )
    return f"Cannot load '{source}': {why}. Use a local folder, or the embedded default model."


def check_causal_lm(config) -> None:
    """Refuse encoder-only and encoder-decoder models with a message instead of a traceback."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.model_type
    encoder_only = kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or encoder_only or getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(
            f"This app needs a causal (decoder-only) language model; '{kind}' is not one "
            "(e.g. BERT reads the whole text at once and has no next-token prediction)."
        )


def estimate_bytes(config, dtype: torch.dtype) -> int:
    """Rough weight memory from the config: embeddings plus attention and MLP matrices per layer."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    d, n_layers, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    ffn = getattr(cfg, "intermediate_size", None) or 4 * d
    tied = getattr(cfg, "tie_word_embeddings", True)
    params = vocab * d * (1 if tied else 2) + n_layers * (4 * d * d + 3 * d * ffn)
    return int(params * torch.finfo(dtype).bits // 8)


def _free_bytes(device: str) -> int | None:
    """Memory free for weights on `device` now: RAM for the CPU, the card's free memory for CUDA."""
    if device == "cpu":
        import psutil

        return psutil.virtual_memory().available
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free
    return None  # MPS shares RAM with the system and reports no reliable free figure


def _check_memory(config, dtype: torch.dtype, device: str) -> None:
    """Refuse before loading a model whose weights cannot fit: a GPU would otherwise fail halfway
    through the load with an out-of-memory error."""
    free = _free_bytes(device)
    need = estimate_bytes(config, dtype)
    if free is not None and need > _MEMORY_HEADROOM * free:
        where = "memory" if device == "cpu" else f"memory on {device}"
        raise ModelLoadError(
            f"This model needs about {need / 2**30:.1f} GiB for its weights but only {free / 2**30:.1f} GiB "
            f"of {where} is free. Choose a smaller model, or spread it over devices (XRAY_DEVICE_MAP=auto)."
        )


def load_model(
    name_or_path: str | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    trust_remote_code: bool = False,
    progress: Progress | None = None,
    device_map: str | None = None,
    max_memory: dict[int | str, int | str] | None = None,
    offload_folder: str | None = None,
) -> LanguageModel:
    """Load a causal LM for capturing. None is the embedded default (converted once, offline).

    `device_map` ("auto", "balanced", "sequential") spreads the blocks over the GPUs, then the CPU,
    then `offload_folder` on disk, within `max_memory` per device ({0: "20GiB", "cpu": "60GiB"});
    without it the whole model goes to `device`."""
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    spread = None if device_map is None else _spread(device_map, max_memory, offload_folder)
    if name_or_path is not None:
        source, extra = _source(name_or_path)
        return _load(source, extra, name_or_path, device, torch_dtype, trust_remote_code, spread)
    source = str(default_model.ensure_converted(progress))
    try:
        return _load(source, {}, default_model.DEFAULT_NAME, device, torch_dtype, False, spread)
    except ModelLoadError as exc:  # passed the cheap checks, yet unreadable (bytes damaged in place)
        default_model.rebuild(str(exc), progress)
        return _load(source, {}, default_model.DEFAULT_NAME, device, torch_dtype, False, spread)


def _spread(mode: str, max_memory: dict | None, offload_folder: str | None) -> dict:
    if mode not in _DEVICE_MAP_MODES:
        raise ModelLoadError(f"Unknown device map '{mode}'; choose one of {', '.join(_DEVICE_MAP_MODES)}.")
    folder = offload_folder or str(default_model.cache_root() / "offload")
    return {"mode": mode, "max_memory": max_memory, "offload_folder": folder}


def _load(source: str, extra: dict, name: str, device: str, dtype: torch.dtype,
          trust_remote_code: bool, spread: dict | None) -> LanguageModel:
    config = _load_config(source, extra, trust_remote_code)
    check_causal_lm(config)
    if spread is None:
        _check_memory(config, dtype, device)
        model, tokenizer = _from_pretrained(source, extra, dtype, trust_remote_code)
        model.to(device)
        return LanguageModel(model, tokenizer, name, device, dtype)
    plan = plan_device_map(config, dtype, spread["mode"], spread["max_memory"])
    folder = Path(spread["offload_folder"]) / hashlib.sha1(source.encode()).hexdigest()[:12]  # one per model
    if "disk" in plan.values():
        folder.mkdir(parents=True, exist_ok=True)
    model, tokenizer = _from_pretrained(source, extra, dtype, trust_remote_code, device_map=plan,
                                        offload_folder=str(folder))
    return LanguageModel(model, tokenizer, name, input_device(model), dtype)


def _from_pretrained(source: str, extra: dict, dtype: torch.dtype, trust_remote_code: bool, **placement):
    """The model (eager attention) and its tokenizer; `placement` is device_map and offload_folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, **extra)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, attn_implementation="eager", trust_remote_code=trust_remote_code, **extra,
            **placement,
        )
    except OSError as exc:
        raise ModelLoadError(_not_found_message(source, exc)) from exc
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"'{source}' could not be loaded: {_short(exc)}") from exc
    except Exception as exc:  # safetensors raises its own error types for truncated files
        raise ModelLoadError(f"'{source}' has broken or unreadable weights: {_short(exc)}") from exc
    return model, tokenizer


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
