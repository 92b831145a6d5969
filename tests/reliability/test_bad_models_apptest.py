"""Bad models typed into the sidebar: a clear message, and the model that worked keeps working."""
from __future__ import annotations

import gc
import re

import pytest

from model import LanguageModel

from apptest_helpers import ask_for_model, sidebar_errors, vectors_metric

pytestmark = pytest.mark.slow  # the real app and model through AppTest


def _tiny_folder(path, tokenizer, kind: str = "llama", seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    cfg = (GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2) if kind == "gpt2" else
           LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1))
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _bad_model(case: str, tmp_path, tokenizer, monkeypatch) -> str:
    """Make the bad model a user might type for `case`; returns what they type."""
    if case == "unknown hub id":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        return "no-such-org/no-such-model"
    if case == "hub unreachable":
        monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")
        return "gpt2-but-not-cached/x"
    if case == "missing path":
        return "/nonexistent/model/folder"
    if case == "truncated weights":
        weights = _tiny_folder(tmp_path, tokenizer) / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif case == "folder with no model":
        (tmp_path / "notes.txt").write_text("hello")
    elif case == "encoder-only (BERT)":
        from transformers import BertConfig

        config = BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64)
        config.save_pretrained(tmp_path)
    elif case == "needs trust_remote_code":
        (tmp_path / "config.json").write_text('{"model_type": "my_custom", "auto_map": {"AutoConfig": "cfg.XConfig"}}')
        (tmp_path / "cfg.py").write_text("raise SystemExit('remote code ran')\n")
    elif case == "too big for memory":
        from transformers import LlamaConfig

        config = LlamaConfig(hidden_size=16384, num_hidden_layers=200, intermediate_size=65536, vocab_size=256000)
        config.save_pretrained(tmp_path)
    return str(tmp_path)


EXPECTED = {
    "unknown hub id": "offline",
    "hub unreachable": "offline",
    "missing path": "No such file",
    "truncated weights": "could not be loaded|broken|unreadable",
    "folder with no model": "holds no model",
    "encoder-only (BERT)": "causal",
    "needs trust_remote_code": "trust_remote_code",
    "too big for memory": "GiB",
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_bad_model_shows_error_and_keeps_previous(case, tmp_path, tokenizer, monkeypatch):
    monkeypatch.delenv("XRAY_TRUST_REMOTE_CODE", raising=False)
    at = ask_for_model(_bad_model(case, tmp_path, tokenizer, monkeypatch))
    assert not at.exception
    errors = sidebar_errors(at)
    assert re.search(EXPECTED[case], errors), f"{case}: {errors!r}"
    assert "Still using" in " ".join(c.value for c in at.sidebar.caption)
    assert vectors_metric(at) == "5 × 576"  # the embedded model still answers
    at.sidebar.text_area(key="prompt").set_value("Still working after a bad model")
    assert vectors_metric(at.run()) == "6 × 576"


def test_model_cache_keeps_at_most_max_models(tmp_path, tokenizer):
    from model.core.settings import settings

    limit = settings().max_models
    folders = [str(_tiny_folder(tmp_path / f"m{i}", tokenizer, "gpt2", seed=i)) for i in range(limit + 2)]
    for folder in folders:
        at = ask_for_model(folder)
        assert not at.exception and at.session_state["active_model"] == folder
        assert vectors_metric(at) == "5 × 16"
    gc.collect()
    alive = [o.name for o in gc.get_objects() if type(o) is LanguageModel and o.name in folders]
    assert len(alive) <= limit, alive
