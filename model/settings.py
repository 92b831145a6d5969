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
    max_models: int  # models kept loaded at once (XRAY_MAX_MODELS)
    allowed_models: tuple[str, ...]  # empty = any; else only these (XRAY_ALLOWED_MODELS, comma-separated)
    trust_remote_code: bool  # only ever from the operator (XRAY_TRUST_REMOTE_CODE=1), never the page


def load_settings() -> Settings:
    allowed = tuple(m.strip() for m in os.environ.get("XRAY_ALLOWED_MODELS", "").split(",") if m.strip())
    return Settings(
        token_limit=_int("XRAY_TOKEN_LIMIT", 512),
        cache_mb=_int("XRAY_CACHE_MB", 1024),
        max_models=_int("XRAY_MAX_MODELS", 2),
        allowed_models=allowed,
        trust_remote_code=os.environ.get("XRAY_TRUST_REMOTE_CODE", "") == "1",
    )
