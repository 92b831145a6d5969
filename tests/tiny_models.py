"""Deliberately tiny random causal LMs for tests (no hub), importable from any test folder:
`from tiny_models import tiny_model` (several conftest.py files share the module name "conftest")."""
from __future__ import annotations

import torch


def tiny_model(kind: str, vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A deliberately tiny random causal LM (no hub): 'gpt2' or 'llama' (grouped-query attention)."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    if kind == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab_size, n_embd=32, n_layer=3, n_head=4, n_positions=256, bos_token_id=1, eos_token_id=2
        )
    elif kind == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        )
    else:
        raise ValueError(kind)
    cfg._attn_implementation = "eager"
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
