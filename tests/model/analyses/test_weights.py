"""Weights at a glance: every parameter in exactly one kind, shapes from the config, tied or not."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_model

from model import LanguageModel
from model.analyses.weights import KINDS, tally_weights


def _layout(model, tokenizer, name: str):
    """The layout a LanguageModel finds for `model` (its probe pass runs through the gateway)."""
    return LanguageModel(model, tokenizer, name, "cpu", torch.float32).layout


def _by_kind(tally) -> dict:
    return {k.kind: k for k in tally.kinds}


def _check_total(model, tally) -> None:
    assert tally.total == sum(p.numel() for p in model.parameters())
    assert sum(k.params for k in tally.kinds) == tally.total
    assert [k.kind for k in tally.kinds] == [k for k in KINDS if k in _by_kind(tally)]  # lesson order


def test_llama_like_kinds_shapes_and_total(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    tally = tally_weights(model, _layout(model, tokenizer, "tiny-llama"))
    _check_total(model, tally)
    kinds, V = _by_kind(tally), len(tokenizer)
    assert kinds["query"].shapes == ((32, 32),) and kinds["query"].tensors == 3
    assert kinds["key"].shapes == kinds["value"].shapes == ((16, 32),)  # 2 key/value heads of 8
    assert kinds["attention output"].shapes == ((32, 32),)
    assert kinds["MLP gate"].shapes == kinds["MLP up"].shapes == ((64, 32),)
    assert kinds["MLP down"].shapes == ((32, 64),)
    assert kinds["norms"].tensors == 2 * 3 + 1  # two per block and the final norm
    assert kinds["embedding"].shapes == ((V, 32),) and kinds["embedding"].params == V * 32
    assert not tally.tied and kinds["unembedding"].params == V * 32
    assert "other" not in kinds


def test_gpt2_like_fused_qkv_tied_unembedding(tokenizer):
    model = tiny_model("gpt2", len(tokenizer))
    tally = tally_weights(model, _layout(model, tokenizer, "tiny-gpt2"))
    _check_total(model, tally)
    kinds = _by_kind(tally)
    assert kinds["query, key and value (fused)"].shapes[0] == (32, 96)  # Conv1D: (in, 3 x out)
    assert kinds["query, key and value (fused)"].tensors == 6  # weight and bias, 3 blocks
    assert kinds["position embedding"].shapes == ((256, 32),)
    assert kinds["MLP up"].shapes[0] == (32, 128) and kinds["MLP down"].shapes[0] == (128, 32)
    assert tally.tied and kinds["unembedding"].params == 0 and "tied" in kinds["unembedding"].note
    assert "query" not in kinds and "MLP gate" not in kinds and "other" not in kinds


def test_untying_moves_the_unembedding_out_of_the_embedding(tokenizer):
    """A wrong answer to 'tied?': an untied copy must count its own matrix."""
    model = tiny_model("gpt2", len(tokenizer))
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    tally = tally_weights(model, _layout(model, tokenizer, "tiny-gpt2"))
    _check_total(model, tally)
    assert not tally.tied and _by_kind(tally)["unembedding"].params == len(tokenizer) * 32


def test_default_model(default_lm):
    tally = tally_weights(default_lm.model, default_lm.layout)
    _check_total(default_lm.model, tally)
    kinds = _by_kind(tally)
    assert tally.tied and kinds["embedding"].shapes == ((49152, 576),)
    assert kinds["query"].shapes == ((576, 576),) and kinds["query"].tensors == 30
    assert kinds["key"].shapes == kinds["value"].shapes == ((192, 576),)  # 3 key/value heads of 64
    assert kinds["MLP gate"].shapes == kinds["MLP up"].shapes == ((1536, 576),)
    assert kinds["MLP down"].shapes == ((576, 1536),)
    assert kinds["norms"].tensors == 61
    assert tally.total == pytest.approx(134.5e6, rel=0.01)
