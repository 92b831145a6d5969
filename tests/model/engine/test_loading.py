"""load_model: devices, dtypes and a clear message for every model it cannot use."""
from __future__ import annotations

import pytest
import torch

from model import ModelLoadError, UnsupportedModelError, load_model
from model.engine.loading import check_causal_lm, estimate_bytes, resolve_device, resolve_dtype


def test_device_and_dtype_defaults():
    if not torch.cuda.is_available():
        assert resolve_device() in ("cpu", "mps")
        assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ModelLoadError, match="Unknown dtype"):
        resolve_dtype("float8", "cpu")


def test_unknown_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="no-such-org/no-such-model.*offline"):
        load_model("no-such-org/no-such-model")


def test_folder_without_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match="holds no model"):
        load_model(str(tmp_path))


def test_missing_path():
    with pytest.raises(ModelLoadError, match="No such file"):
        load_model("/nonexistent/model/folder")


def test_truncated_weights(tmp_path, tokenizer):
    from tiny_models import tiny_model

    model = tiny_model("llama", len(tokenizer))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="could not be loaded|broken|unreadable"):
        load_model(str(tmp_path))


def test_local_folder_loads_with_eager_attention(tmp_path, tokenizer):
    from tiny_models import tiny_model

    tiny_model("gpt2", len(tokenizer)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = load_model(str(tmp_path))
    cap = lm.capture("hello world")
    assert cap.attention.shape == (3, 4, cap.n_tokens, cap.n_tokens)
    assert cap.model_name == str(tmp_path)


def test_encoder_only_refused(tmp_path):
    from transformers import BertConfig

    with pytest.raises(UnsupportedModelError, match="causal"):
        check_causal_lm(BertConfig())
    BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="causal"):
        load_model(str(tmp_path))


def test_remote_code_refused(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "my_custom", "auto_map": {"AutoConfig": "configuration_x.XConfig"}}'
    )
    with pytest.raises(ModelLoadError, match="trust_remote_code|cannot read"):
        load_model(str(tmp_path))


def test_too_big_for_memory(tmp_path, monkeypatch):
    from transformers import LlamaConfig

    big = LlamaConfig(hidden_size=16384, num_hidden_layers=200, intermediate_size=65536, vocab_size=256000)
    assert estimate_bytes(big, torch.float32) > 2**40
    big.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="GiB"):
        load_model(str(tmp_path))


def test_a_file_that_is_not_a_model_is_named_as_such(tmp_path):
    """An existing file that is no model is not reported as missing."""
    from model.core.errors import ModelLoadError
    from model.engine.loading import _source

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file, not a model"):
        _source(str(tmp_path / "notes.txt"))
    with pytest.raises(ModelLoadError, match="No such file or folder"):
        _source(str(tmp_path / "missing"))
