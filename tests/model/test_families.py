"""The family matrix: a tiny random model of every causal-LM family we support (hidden 32, 2 blocks,
the default tokenizer's first 4096 tokens, which cover the prompt), each view checked against transformers' own outputs, or refused with a
message naming the family and the reason. One model per family, built once for the module."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model import LanguageModel, UnsupportedModelError, load_model
from model.ablation import ablated_logits
from model.attribution import direct_logit_attribution, final_norm
from model.generation import Decoding, generate
from model.head_pipeline import head_pipeline
from model.head_scores import head_stats, head_type_scores, induction_scores
from model.logit_lens import logit_lens

PROMPT = "The cat sat on the mat and the dog"  # every token id < VOCAB
VOCAB = 4096  # a small unembedding keeps 34 families fast; the tokenizer's ids above it are never used
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
}
# Views that refuse, and a phrase their message must hold (besides the architecture's name).
NO_STEP_BY_STEP = {"bloom": "ALiBi", "falcon": "attention interface", "mpt": "attention interface",
                   "gpt_neo": "attention interface"}
NO_ATTRIBUTION = {"gemma2": "soft-caps"}


def build(family: str, vocab_size: int = VOCAB, seed: int = 0) -> torch.nn.Module:
    """A tiny random model of one family (eager attention: the capture reads its patterns)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(family, vocab_size=vocab_size, **{**SIZE, **FAMILIES[family]})
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_lm(request, tokenizer) -> LanguageModel:
    return LanguageModel(build(request.param), tokenizer, f"tiny-{request.param}", "cpu",
                         torch.float32)


@pytest.fixture(scope="module")
def family_run(family_lm):
    """The capture and transformers' own outputs for the same tokens."""
    cap = family_lm.capture(PROMPT)
    with torch.no_grad():
        ref = family_lm.model(torch.tensor(cap.token_ids)[None], output_attentions=True, output_hidden_states=True,
                              use_cache=False)
    return cap, ref


def _family(lm: LanguageModel) -> str:
    return lm.model.config.model_type


def test_capture_equals_transformers(family_run):
    cap, ref = family_run
    np.testing.assert_allclose(cap.attention, np.stack([a[0].numpy() for a in ref.attentions]), atol=1e-6)
    hidden = np.stack([h[0].numpy() for h in ref.hidden_states])  # (L+1, T, D); the last is after the norm
    np.testing.assert_allclose(cap.residual[:-1], hidden[:-1], atol=1e-5)
    np.testing.assert_allclose(cap.logits, ref.logits[0].numpy(), atol=1e-5)


def test_stream_is_the_sum_of_what_blocks_write(family_lm, family_run):
    """attn_out and mlp_out are what each block adds (parallel blocks, post-norms, multipliers...)."""
    cap, _ = family_run
    assert family_lm.layout.writes.exact
    np.testing.assert_allclose(cap.residual[1:], cap.residual[:-1] + cap.attn_out + cap.mlp_out, atol=1e-5)


def test_logit_lens_last_row_is_the_models_prediction(family_lm, family_run):
    cap, _ = family_run
    targets = np.full(cap.n_tokens, 7)
    lens = logit_lens(family_lm, cap, target_ids=targets)
    probs = torch.softmax(torch.from_numpy(cap.logits.astype(np.float64)), dim=-1).numpy()  # (T, V)
    np.testing.assert_allclose(lens.target_probs[-1], probs[:, 7], rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(lens.top_ids[-1], cap.logits.argmax(-1))


def test_step_by_step_pattern_equals_capture(family_lm, family_run):
    cap, _ = family_run
    family = _family(family_lm)
    if family in NO_STEP_BY_STEP:
        with pytest.raises(UnsupportedModelError, match=NO_STEP_BY_STEP[family]) as refused:
            head_pipeline(family_lm, cap.token_ids, 1)
        assert family_lm.summary.architecture in str(refused.value) and f"({family})" in str(refused.value)
        return
    pipe = head_pipeline(family_lm, cap.token_ids, 1)
    np.testing.assert_allclose(pipe.pattern, cap.attention[1], atol=1e-6)
    np.testing.assert_allclose(pipe.softmax(0), cap.attention[1, 0], atol=1e-5)


def test_attribution_sums_to_the_logit(family_lm, family_run):
    cap, _ = family_run
    family, last = _family(family_lm), cap.n_tokens - 1
    if family in NO_ATTRIBUTION:
        with pytest.raises(UnsupportedModelError, match=NO_ATTRIBUTION[family]) as refused:
            direct_logit_attribution(family_lm, cap, last, 7)
        assert family_lm.summary.architecture in str(refused.value)
        return
    for token in (7, int(cap.logits[last].argmax())):
        a = direct_logit_attribution(family_lm, cap, last, token)
        size = max(1e-3, abs(a.logit))
        assert a.total == pytest.approx(a.logit, abs=1e-4 * size)
        assert abs(a.rest) < 1e-4 * size  # every part is accounted for by the embedding, attention and MLPs


def test_ablation_nothing_is_exact_and_one_head_matters(family_lm, family_run):
    cap, _ = family_run
    ids = [int(i) for i in cap.token_ids]
    np.testing.assert_allclose(ablated_logits(family_lm, ids, []), cap.logits, atol=1e-5)
    assert np.abs(ablated_logits(family_lm, ids, [(0, 1)]) - cap.logits).max() > 1e-5


def test_head_scores_and_generation_run(family_lm, family_run):
    cap, _ = family_run
    L, H = family_lm.summary.n_layers, family_lm.summary.n_heads
    assert all(v.shape == (L, H) for v in head_stats(cap).values())
    assert all(v.shape == (L, H) for v in head_type_scores(cap.attention, cap.token_ids).values())
    assert induction_scores(family_lm, half=6, samples=1).shape == (L, H)
    steps = generate(family_lm, [int(i) for i in cap.token_ids], 2, Decoding(greedy=True))
    assert steps[0].token_id == int(cap.logits[-1].argmax())  # greedy: the capture's own top prediction
    if len(steps) == 2:  # the second step ran from the keys and values of the first: same as a full pass
        full = family_lm.forward(list(steps[1].context), last_only=True).logits
        np.testing.assert_allclose(steps[1].logits, full, atol=1e-4)


@pytest.mark.parametrize("family", ["gpt_neox", "opt"])
def test_saved_family_loads_from_a_folder(family, tokenizer, tmp_path):
    """Pythia (GPT-NeoX) and OPT load through load_model like a downloaded model would."""
    build(family).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), device="cpu")
    assert lm.layout.writes.exact and lm.layout.logit_map.problem is None
    assert lm.capture(PROMPT).attention.shape[:2] == (2, 4)


def test_a_norm_of_unknown_math_is_refused(tokenizer):
    """A final norm that is no RMSNorm or LayerNorm (here: divide by the largest entry) is refused."""

    class MaxNorm(torch.nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(size))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.weight * x / x.abs().amax(dim=-1, keepdim=True)

    model = build("llama")
    model.model.norm = MaxNorm(32)
    lm = LanguageModel(model, tokenizer, "tiny-maxnorm", "cpu", torch.float32)
    with pytest.raises(UnsupportedModelError, match="MaxNorm"):
        final_norm(lm)
