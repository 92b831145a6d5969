"""Operator settings for a deployment, read from environment variables (app.py also copies them
from .streamlit/secrets.toml). Every value has a safe default and a bad value falls back to it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MODEL = "default"  # how settings and URLs name the embedded model


def _int(name: str, default: int, low: int = 1) -> int:
    try:
        return max(low, int(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    token_limit: int  # longest prompt a user may capture (XRAY_TOKEN_LIMIT)
    cache_mb: int  # byte budget of the shared capture cache (XRAY_CACHE_MB)
    results_mb: int  # byte budget of the shared cache of derived results: lens, ablations... (XRAY_RESULTS_MB)
    max_models: int  # models kept loaded at once (XRAY_MAX_MODELS)
    allowed_models: tuple[str, ...]  # empty = any; else only these (XRAY_ALLOWED_MODELS, comma-separated)
    trust_remote_code: bool  # only ever from the operator (XRAY_TRUST_REMOTE_CODE=1), never the page
    device_map: str | None = None  # spread models over GPUs, CPU and disk: "auto", "balanced", "sequential" (XRAY_DEVICE_MAP)
    max_memory: dict[int | str, int | str] | None = None  # per device, e.g. {0: "20GiB", "cpu": "64GiB"} (XRAY_MAX_MEMORY)
    offload_dir: str | None = None  # where blocks that fit nowhere go (XRAY_OFFLOAD_DIR; default: the model cache)


def load_settings() -> Settings:
    allowed = tuple(m.strip() for m in os.environ.get("XRAY_ALLOWED_MODELS", "").split(",") if m.strip())
    return Settings(
        token_limit=_int("XRAY_TOKEN_LIMIT", 512),
        cache_mb=_int("XRAY_CACHE_MB", 1024),
        results_mb=_int("XRAY_RESULTS_MB", 512),
        max_models=_int("XRAY_MAX_MODELS", 2),
        allowed_models=allowed,
        trust_remote_code=os.environ.get("XRAY_TRUST_REMOTE_CODE", "") == "1",
        device_map=os.environ.get("XRAY_DEVICE_MAP", "").strip() or None,
        max_memory=parse_max_memory(os.environ.get("XRAY_MAX_MEMORY", "")),
        offload_dir=os.environ.get("XRAY_OFFLOAD_DIR", "").strip() or None,
    )


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
