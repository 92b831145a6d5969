"""Tiny random models of every causal-LM family the app supports (hidden 32, 2 blocks, 4 heads),
shared by the family matrix (tests/model) and the pages' refusal tests (tests/pages)."""
from __future__ import annotations

import torch

PROMPT = "The cat sat on the mat and the dog"  # every token id < VOCAB
VOCAB = 4096  # a small unembedding keeps 35 families fast; the tokenizer's ids above it are never used
SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=None)
GPT_STYLE = dict(n_embd=32, n_layer=2, n_head=4, n_positions=256)
FAMILIES: dict[str, dict] = {  # model_type -> what differs from SIZE (geometry, and transforms != 1)
    "llama": dict(num_key_value_heads=2),
    "mistral": dict(num_key_value_heads=2),
    "qwen2": dict(num_key_value_heads=2),
    "qwen3": dict(num_key_value_heads=2, head_dim=8),
    "phi": {},
    "phi3": {},
    "olmo": {},
    "olmo2": {},
    "granite": dict(logits_scaling=4.0, residual_multiplier=0.5, embedding_multiplier=2.0),
    "stablelm": dict(num_key_value_heads=4),
    "starcoder2": {},
    "mixtral": dict(num_local_experts=4, num_experts_per_tok=2, num_key_value_heads=2),
    "qwen2_moe": dict(num_key_value_heads=4, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                      shared_expert_intermediate_size=32),
    "qwen3_moe": dict(num_key_value_heads=2, head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32),
    "olmoe": dict(num_key_value_heads=4, num_experts=4, num_experts_per_tok=2),
    "granitemoe": dict(num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=2, logits_scaling=2.0),
    "smollm3": dict(num_key_value_heads=2),
    "helium": dict(num_key_value_heads=4, head_dim=8),
    "gpt2": GPT_STYLE,
    "gptj": dict(GPT_STYLE, rotary_dim=4),
    "gpt_bigcode": GPT_STYLE,
    "codegen": dict(GPT_STYLE, n_ctx=256, rotary_dim=4),
    "gpt_neo": dict(num_layers=2, num_heads=4, attention_types=[[["global", "local"], 1]], window_size=4),
    "gpt_neox": {},
    "opt": dict(ffn_dim=64, word_embed_proj_dim=32),
    "gemma": dict(head_dim=8, num_key_value_heads=2),
    "gemma2": dict(head_dim=8, num_key_value_heads=2, final_logit_softcapping=0.1),  # a cap that bites
    "gemma3_text": dict(head_dim=8, num_key_value_heads=2),
    "cohere": dict(logit_scale=0.5),
    "cohere2": dict(num_key_value_heads=4, sliding_window=4),
    "bloom": dict(n_layer=2, n_head=4),
    "falcon": {},
    "mpt": dict(d_model=32, n_heads=4, n_layers=2, max_seq_len=256),
    "persimmon": {},
    "gpt_oss": dict(num_key_value_heads=2, head_dim=8, num_local_experts=4, num_experts_per_tok=2, sliding_window=4,
                    rope_parameters=dict(rope_type="yarn", rope_theta=150000.0, factor=32.0, beta_fast=32.0,
                                         beta_slow=1.0, original_max_position_embeddings=8)),  # 8 x 32 = 256
}
SINK_SCALE = 2.0  # spread of the learned attention sinks (gpt-oss): init leaves them ~0.02, too close to 0


def build(family: str, vocab_size: int = VOCAB, seed: int = 0) -> torch.nn.Module:
    """A tiny random model of one family (eager attention: the capture reads its patterns)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(family, vocab_size=vocab_size, **{**SIZE, **FAMILIES[family]})
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    spread_sinks(model, seed)
    return model


def spread_sinks(model: torch.nn.Module, seed: int) -> None:
    """Give every learned attention sink a clearly nonzero logit, so a plain softmax would be visibly off."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            sinks = getattr(module, "sinks", None)
            if isinstance(sinks, torch.nn.Parameter):
                sinks.copy_(torch.randn(sinks.shape, generator=generator) * SINK_SCALE)  # (H,)
