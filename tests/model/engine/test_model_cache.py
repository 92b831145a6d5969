"""The embedded model's converted cache checks itself on each start and heals when broken.

The real cache (~/.cache/transformer-xray) is never touched: every test points XRAY_MODEL_DIR at a
temporary folder.
"""
from __future__ import annotations

import shutil

import pytest

from model import load_model
from model.core.settings import settings
from model.engine import default_model
from model.engine.default_model import _write_marker, cache_problem


@pytest.fixture
def saved(tmp_path, tokenizer):
    """A small model folder written the way the conversion writes it, marker last."""
    from tiny_models import tiny_model

    folder = tmp_path / "model"
    tiny_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _write_marker(folder, "test.gguf")
    return folder


def _truncate(path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_sound_folder_passes(saved):
    assert cache_problem(saved) is None


def test_truncated_weights_are_named(saved):
    _truncate(saved / "model.safetensors", 4096)
    assert "model.safetensors is 4,096 bytes" in cache_problem(saved)


def test_truncation_found_without_recorded_sizes(saved):
    """A marker from before sizes were recorded: the safetensors header still gives the length away."""
    (saved / default_model._DONE_MARKER).write_text("converted from test.gguf\n")
    assert cache_problem(saved) is None
    weights = saved / "model.safetensors"
    _truncate(weights, weights.stat().st_size - 1)
    assert "its header declares" in cache_problem(saved)
    _truncate(weights, 4)
    assert "broken header" in cache_problem(saved)


def test_missing_file_and_marker(saved):
    (saved / "tokenizer.json").unlink()
    assert cache_problem(saved) == "tokenizer.json is missing"
    (saved / default_model._DONE_MARKER).unlink()
    assert cache_problem(saved) == "it was never finished"


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """XRAY_MODEL_DIR on a temporary folder; the real converted folder is only read."""
    real = default_model.converted_dir()
    assert default_model.is_converted(), "the suite needs the embedded model converted once"
    monkeypatch.setenv("XRAY_MODEL_DIR", str(tmp_path / "cache"))
    settings.cache_clear()  # read once per process: read this test's folder
    assert default_model.converted_dir() != real
    return real


@pytest.mark.slow
def test_truncated_cache_is_rebuilt_from_the_gguf(tmp_cache):
    """As a full disk would leave it: the marker is there, the weights are cut short."""
    target = default_model.converted_dir()
    target.mkdir(parents=True)
    for path in tmp_cache.iterdir():
        if path.name != "model.safetensors":
            shutil.copy(path, target / path.name)
    with (tmp_cache / "model.safetensors").open("rb") as f:
        (target / "model.safetensors").write_bytes(f.read(1 << 20))
    assert "model.safetensors" in cache_problem()

    messages = []
    lm = load_model(progress=lambda message, fraction: messages.append((message, fraction)))

    assert cache_problem() is None
    assert (target / "model.safetensors").stat().st_size == (tmp_cache / "model.safetensors").stat().st_size
    assert messages[0][0].startswith("Rebuilding the broken model cache (model.safetensors is 1,048,576 bytes")
    assert messages[-1][1] == 1.0
    cap = lm.capture("The capital of France is")
    assert lm.tokenizer.decode([int(cap.logits[-1].argmax())]) == " Paris"


@pytest.mark.slow
def test_weights_damaged_in_place_are_rebuilt_once(tmp_cache, monkeypatch):
    """Same sizes, unreadable bytes (a dtype the header cannot name): the cheap checks pass, the load
    fails, and load_model rebuilds once. The conversion itself is the real one in the test above;
    here it copies the real converted folder to keep the test short."""
    target = default_model.converted_dir()
    shutil.copytree(tmp_cache, target)
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    head = int.from_bytes(data[:8], "little")
    assert b'"F32"' in data[8 : 8 + head]
    data[8 : 8 + head] = data[8 : 8 + head].replace(b'"F32"', b'"Q99"')
    weights.write_bytes(bytes(data))
    assert cache_problem() is None

    conversions = []

    def copy_real(source, out, progress):
        conversions.append(source)
        shutil.copytree(tmp_cache, out, dirs_exist_ok=True)

    monkeypatch.setattr(default_model, "_convert", copy_real)
    messages = []
    lm = load_model(progress=lambda message, fraction: messages.append(message))

    assert len(conversions) == 1
    assert messages[0].startswith("Rebuilding the broken model cache (") and "Q99" in messages[0]
    assert cache_problem() is None and b'"Q99"' not in weights.read_bytes()[:100_000]
    cap = lm.capture("The capital of France is")
    assert lm.tokenizer.decode([int(cap.logits[-1].argmax())]) == " Paris"
