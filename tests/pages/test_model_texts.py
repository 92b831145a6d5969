"""The pages' explanations state facts of the loaded model, not of the default one: rendered on a
GPT-2-like and a Llama-like tiny model, the sentences about head width, key/value sharing, positions,
norm, tied embeddings and vocabulary differ as the two models do."""
from __future__ import annotations

import pytest
from apptest_session import open_app_page
from tiny_models import tiny_model

PAGES = ["overview", "attention", "head_pipeline", "ablation", "next_token", "attribution", "logit_lens",
         "embeddings", "meaning"]


@pytest.fixture(scope="module")
def texts(tmp_path_factory, tokenizer) -> dict[str, dict[str, str]]:
    """kind -> page -> every markdown text and tooltip the page shows, for a tiny saved model."""
    out = {}
    for kind in ("gpt2", "llama"):
        folder = tmp_path_factory.mktemp(kind)
        tiny_model(kind, len(tokenizer)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        out[kind] = _page_texts(str(folder))
    return out


def _page_texts(folder: str | None, pages: list[str] = PAGES) -> dict[str, str]:
    """Each page's markdown and metric tooltips, for a model folder (None: the default model)."""
    from pages.kit import models

    at = open_app_page(state={"model_choice": models.OTHER_MODEL, "model_custom": folder} if folder else None)
    found = {}
    for page in pages:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        found[page] = "\n".join([m.value for m in at.markdown] + [m.proto.help for m in at.metric])
    return found


def test_head_width_and_vocabulary(texts, tokenizer):
    for kind in texts:
        assert "8 numbers in this model" in texts[kind]["ablation"]  # 32 wide, 4 heads
        assert "square root of their length (8 here)" in texts[kind]["head_pipeline"]
        assert f"({len(tokenizer):,} of them for this model)" in texts[kind]["next_token"]
        assert "64" not in texts[kind]["ablation"] and "64 here" not in texts[kind]["head_pipeline"]


def test_key_value_sharing(texts):
    gpt2, llama = texts["gpt2"], texts["llama"]
    for page in ("attention", "head_pipeline"):
        assert "each of the 4 heads of a block has its own queries, keys and values" in gpt2[page]
        assert "grouped-query" not in gpt2[page]
        assert "share 2 sets of keys and values, 2 query heads per set (grouped-query attention)" in llama[page]
    assert "4 heads, each with its own keys and values" in gpt2["overview"]
    assert "4 query heads share 2 key/value heads" in llama["overview"]


def test_positions(texts):
    gpt2, llama = texts["gpt2"], texts["llama"]
    assert "rotary" in llama["head_pipeline"] and "rotary" not in gpt2["head_pipeline"]
    assert "learned position vector added to each token's embedding" in gpt2["head_pipeline"]
    assert "adds no position vector" in llama["meaning"] and "cosine 1" in llama["meaning"]
    assert "plus a learned vector for its position" in gpt2["meaning"] and "cosine 1)" not in gpt2["meaning"]
    assert "plus a learned vector for its position" in gpt2["embeddings"]
    assert "both copies start at the same point" in llama["embeddings"]
    assert "both copies start at the same point" not in gpt2["embeddings"]
    assert "embedding (with its position vector)" in gpt2["attribution"]


def test_norm_tied_embeddings_and_block(texts):
    gpt2, llama = texts["gpt2"], texts["llama"]
    assert "root mean square: RMSNorm" in llama["attribution"] and "RMS" not in gpt2["attribution"]
    assert "standard deviation, after subtracting its mean: LayerNorm" in gpt2["attribution"]
    assert "final norm**: LayerNorm" in gpt2["logit_lens"] and "final norm**: RMSNorm" in llama["logit_lens"]
    assert "(tied embeddings)" in gpt2["logit_lens"] and "untied embeddings" in llama["logit_lens"]
    assert "tied embeddings" in gpt2["next_token"] and "separate from the embedding table" in llama["next_token"]
    assert "from 32 to 128 numbers, applies GELU (tanh approximation)" in gpt2["overview"]
    assert "from 32 to 64 numbers, applies SiLU-gated" in llama["overview"]
    assert "attention, then an MLP" in gpt2["overview"] and "side by side" not in gpt2["overview"]


def test_default_model_keeps_its_sentences():
    """The embedded model's texts still say what held for it before they were derived."""
    texts = _page_texts(None, ["ablation", "head_pipeline", "next_token", "attribution", "meaning"])
    assert "64 numbers in this model" in texts["ablation"]
    assert "(64 here)" in texts["head_pipeline"] and "rotary position embedding" in texts["head_pipeline"]
    assert "9 query heads of a block share 3 sets of keys and values" in texts["head_pipeline"]
    assert "(49,152 of them for this model)" in texts["next_token"]
    assert "root mean square: RMSNorm" in texts["attribution"]
    assert "adds no position vector" in texts["meaning"]
