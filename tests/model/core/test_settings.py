"""The operator's settings: read once per process, the environment over .streamlit/secrets.toml, bad
values back to their defaults."""
from __future__ import annotations

from model.core.settings import settings


def test_read_once_until_cleared(monkeypatch):
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "8")
    first = settings()
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "9")
    assert settings() is first and first.token_limit == 8
    settings.cache_clear()
    assert settings().token_limit == 9


def test_environment_wins_over_secrets(monkeypatch, tmp_path):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('XRAY_CACHE_MB = 64\nXRAY_MAX_MODELS = 3\nOTHER = "x"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XRAY_MAX_MODELS", "1")
    monkeypatch.delenv("XRAY_CACHE_MB", raising=False)
    cfg = settings()
    assert (cfg.cache_mb, cfg.max_models) == (64, 1)


def test_bad_values_fall_back(monkeypatch):
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "many")
    monkeypatch.setenv("XRAY_TORCH_THREADS", "0")
    monkeypatch.setenv("XRAY_DEVICE_MAP", "  ")
    cfg = settings()
    assert (cfg.token_limit, cfg.torch_threads, cfg.device_map) == (None, None, None)  # None: what memory allows
