"""ModelFacts: what the page texts say about a model, read from its config and modules."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_model

from model import LanguageModel
from model.engine.facts import model_facts


def _facts(model: torch.nn.Module):
    return model_facts(LanguageModel(model, None, "tiny", "cpu", torch.float32))


def _tiny(model_type: str, **kw) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = AutoConfig.for_model(model_type, **kw)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


def test_gpt2_like():
    f = _facts(tiny_model("gpt2", 96))
    s = f.shape
    assert (s.n_heads, s.n_kv_heads, s.head_dim, s.d_model, f.d_mlp, s.vocab_size) == (4, 4, 8, 32, 128, 96)
    assert (f.positions, f.norm, f.tied_embeddings, f.parallel_blocks) == ("learned", "layer", True, False)
    assert (f.activation, f.gated_mlp, f.shape.grouped_query) == ("gelu_new", False, False)


def test_llama_like():
    f = _facts(tiny_model("llama", 96))
    assert (f.shape.n_heads, f.shape.n_kv_heads, f.shape.group_size, f.d_mlp) == (4, 2, 2, 64)
    assert (f.positions, f.norm, f.tied_embeddings, f.parallel_blocks) == ("rotary", "rms", False, False)
    assert (f.activation, f.gated_mlp, f.shape.grouped_query) == ("silu", True, True)


def test_the_block_shape_probe_runs_block_0_only_and_leaves_the_model_whole():
    """Two whole passes cost ~0.4 s of a newcomer's first page on a laptop CPU; block 0 tells all."""
    lm = LanguageModel(tiny_model("llama", 96), None, "tiny", "cpu", torch.float32)
    later_blocks = []
    handle = lm.layout.blocks[1].register_forward_hook(lambda *_: later_blocks.append(1))
    try:
        assert not model_facts(lm).parallel_blocks
    finally:
        handle.remove()
    assert later_blocks == []
    out = lm.forward([1, 2, 3])  # no probe hook left behind: the pass runs to the end
    with torch.inference_mode():
        ref = lm.model(torch.tensor([[1, 2, 3]])).logits[0].numpy()
    assert abs(out.logits - ref).max() < 1e-5


def test_parallel_block_and_alibi_found_from_the_model():
    """GPT-NeoX adds attention and MLP of one input (parallel); Bloom has no position vector or rotary
    module, only an ALiBi bias."""
    neox = _facts(_tiny("gpt_neox", vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64))
    assert (neox.positions, neox.norm, neox.parallel_blocks, neox.tied_embeddings) == ("rotary", "layer", True, False)
    sequential = _facts(_tiny("gpt_neox", vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, use_parallel_residual=False))
    assert not sequential.parallel_blocks
    bloom = _facts(_tiny("bloom", vocab_size=96, hidden_size=32, n_layer=2, n_head=4))
    assert (bloom.positions, bloom.norm, bloom.parallel_blocks) == ("alibi", "layer", False)


@pytest.mark.slow
def test_default_model(default_lm):
    f = default_lm.facts
    s = f.shape
    assert (s.n_heads, s.n_kv_heads, s.head_dim, s.d_model, f.d_mlp, s.vocab_size) == (9, 3, 64, 576, 1536, 49152)
    assert (f.positions, f.norm, f.tied_embeddings, f.parallel_blocks) == ("rotary", "rms", True, False)
    assert (f.activation, f.gated_mlp) == ("silu", True)


@pytest.mark.parametrize("family", ["gpt_oss", "granitemoe", "mixtral", "olmoe", "qwen2_moe", "qwen3_moe"])
def test_a_mixture_of_experts_has_the_width_of_one_expert(family, tokenizer):
    """Not the router's row per expert, nor a shared expert's one-row gate: what the text on the pages
    says the MLP widens each vector to."""
    from tiny_families import build

    lm = LanguageModel(build(family), tokenizer, f"tiny-{family}", "cpu", torch.float32)
    config = lm.model.config.get_text_config()
    assert lm.facts.d_mlp == (getattr(config, "moe_intermediate_size", None) or config.intermediate_size)
