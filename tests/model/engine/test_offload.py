"""A model spread over devices (device_map through accelerate): blocks on the CPU and on disk give
the same capture and analyses as the same model in one piece."""
from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_model

from model import load_model
from model.analyses.ablation import ablated_logits
from model.analyses.attribution import direct_logit_attribution
from model.analyses.head_pipeline import head_pipeline
from model.analyses.logit_lens import logit_lens

PROMPT = "The spy was a mole. The spy was"
BLOCK_0 = 50_000  # bytes: room for block 0 of the tiny Llama (~37 KB), not for block 1 too


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tokenizer):
    """(whole, spread): one tiny Llama loaded in one piece, and with a CPU budget that sends blocks to disk."""
    folder = tmp_path_factory.mktemp("tiny")
    tiny_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    matrix = len(tokenizer) * 32 * 4  # the embedding; accelerate also keeps room for the largest module (as big)
    # float32 both (a GPU machine would pick bfloat16, whose halved blocks all fit the CPU budget)
    spread = load_model(str(folder), device_map="auto", max_memory={"cpu": 2 * matrix + BLOCK_0},
                        offload_folder=str(tmp_path_factory.mktemp("offload")), dtype="float32")
    return load_model(str(folder), device="cpu", dtype="float32"), spread


def test_blocks_live_on_cpu_and_disk(pair):
    _, spread = pair
    assert spread.block_devices == ("cpu", "disk", "disk")
    assert spread.device == "cpu"  # where the token ids go: the embeddings' device
    assert spread.model.hf_device_map["lm_head"] == "cpu"  # read directly by the analyses: never on disk


def test_capture_parity(pair):
    whole, spread = pair
    a, b = whole.capture(PROMPT), spread.capture(PROMPT)
    for name in ("attention", "residual", "attn_out", "mlp_out", "logits"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), atol=1e-6, err_msg=name)
    longer = spread.encode(PROMPT + " a mole")
    np.testing.assert_allclose(spread.extend_capture(b, longer).logits, whole.capture_ids(longer).logits, atol=1e-5)


def test_analyses_parity(pair):
    whole, spread = pair
    a, b = whole.capture(PROMPT), spread.capture(PROMPT)
    lens = logit_lens(spread, b)
    np.testing.assert_allclose(lens.top_ids[-1], np.asarray(b.logits).argmax(-1))
    token = int(b.logits[-1].argmax())
    attr = direct_logit_attribution(spread, b, b.n_tokens - 1, token)
    assert attr.total == pytest.approx(float(b.logits[-1, token]), abs=1e-3)
    ids = b.token_ids.tolist()
    np.testing.assert_allclose(ablated_logits(spread, ids, [(1, 2)]).logits.rows,
                               ablated_logits(whole, ids, [(1, 2)]).logits.rows, atol=1e-5)
    np.testing.assert_allclose(head_pipeline(spread, b.token_ids, 2).weights, a.attention[2], atol=1e-6)
    assert spread.facts == whole.facts


def test_unknown_device_map_is_named(tmp_path):
    from model import ModelLoadError

    with pytest.raises(ModelLoadError, match="Unknown device map 'everywhere'"):
        load_model(str(tmp_path), device_map="everywhere")
