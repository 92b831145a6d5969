"""Operator settings for a deployment: one object per process, read once by `settings()` from
environment variables, then from .streamlit/secrets.toml (the environment wins). Every value has a
safe default and a bad value falls back to it.

Tests that change XRAY_* variables call `settings.cache_clear()` after changing them (tests/conftest.py
also clears it around every test, so one test's variables never leak into the next).
"""
from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "default"  # how settings and URLs name the embedded model
PREFIX = "XRAY_"  # every operator setting's name starts with it


@dataclass(frozen=True)
class Settings:
    token_limit: int | None  # longest prompt a user may capture (XRAY_TOKEN_LIMIT); None: what memory allows
    cache_mb: int  # byte budget of the shared capture cache (XRAY_CACHE_MB)
    results_mb: int  # byte budget of the shared cache of derived results: lens, ablations... (XRAY_RESULTS_MB)
    max_models: int  # models kept loaded at once (XRAY_MAX_MODELS)
    allowed_models: tuple[str, ...]  # empty = any; else only these (XRAY_ALLOWED_MODELS, comma-separated)
    trust_remote_code: bool  # only ever from the operator (XRAY_TRUST_REMOTE_CODE=1), never the page
    device_map: str | None = None  # spread models over GPUs, CPU and disk: "auto", "balanced", "sequential" (XRAY_DEVICE_MAP)
    max_memory: dict[int | str, int | str] | None = None  # per device, e.g. {0: "20GiB", "cpu": "64GiB"} (XRAY_MAX_MEMORY)
    offload_dir: str | None = None  # where blocks that fit nowhere go (XRAY_OFFLOAD_DIR; default: the model cache)
    model_dir: str | None = None  # where the converted default model lives (XRAY_MODEL_DIR; default: the user cache)
    torch_threads: int | None = None  # torch's intra-op thread count (XRAY_TORCH_THREADS; default: all cores but one)


@functools.cache
def settings() -> Settings:
    """The operator's settings, read once per process: every reader shares this one object."""
    return _read({**_secrets(), **{k: v for k, v in os.environ.items() if k.startswith(PREFIX)}})


def _secrets() -> dict[str, str]:
    """XRAY_* values from Streamlit's secrets files (the user's, then the working folder's, which wins),
    the places `st.secrets` reads; a missing or malformed file gives nothing."""
    values: dict[str, str] = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"):
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        values.update({k: str(v) for k, v in table.items() if k.startswith(PREFIX)})
    return values


def _read(env: Mapping[str, str]) -> Settings:
    """Settings from a mapping of XRAY_* names to text."""
    def text(name: str) -> str | None:
        return env.get(PREFIX + name, "").strip() or None

    def number(name: str, default: int) -> int:
        try:
            return max(1, int(env.get(PREFIX + name, default)))
        except ValueError:
            return default

    return Settings(
        token_limit=_positive(env.get(PREFIX + "TOKEN_LIMIT", "")),
        cache_mb=number("CACHE_MB", 1536),
        results_mb=number("RESULTS_MB", 512),
        max_models=number("MAX_MODELS", 2),
        allowed_models=tuple(m.strip() for m in env.get(PREFIX + "ALLOWED_MODELS", "").split(",") if m.strip()),
        trust_remote_code=env.get(PREFIX + "TRUST_REMOTE_CODE", "") == "1",
        device_map=text("DEVICE_MAP"),
        max_memory=parse_max_memory(env.get(PREFIX + "MAX_MEMORY", "")),
        offload_dir=text("OFFLOAD_DIR"),
        model_dir=text("MODEL_DIR"),
        torch_threads=_positive(env.get(PREFIX + "TORCH_THREADS", "")),
    )


def _positive(text: str) -> int | None:
    """A positive whole number, else None."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None



def parse_max_memory(text: str) -> dict[int | str, int | str] | None:
    """"0=20GiB,1=20GiB,cpu=64GiB" -> {0: "20GiB", 1: "20GiB", "cpu": "64GiB"} (plain numbers are bytes);
    empty or malformed -> None (accelerate then uses what each device has free)."""
    limits: dict[int | str, int | str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        device, _, amount = (s.strip() for s in item.partition("="))
        if not device or not amount:
            return None
        limits[int(device) if device.isdigit() else device] = int(amount) if amount.isdigit() else amount
    return limits or None
