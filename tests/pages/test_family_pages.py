"""Where a view refuses a model family, its page says so by name and reason; never a traceback."""
from __future__ import annotations

import pytest
from apptest_session import open_app_page
from page_charts import charts
from streamlit.testing.v1 import AppTest
from tiny_families import build


@pytest.fixture(scope="module")
def folders(tokenizer, tmp_path_factory) -> dict[str, str]:
    """Tiny Gemma 2 (soft-capped logits) and BLOOM (ALiBi) saved as local model folders."""
    out = {}
    for family in ("gemma2", "bloom"):
        path = tmp_path_factory.mktemp(family)
        build(family).save_pretrained(path)
        tokenizer.save_pretrained(path)
        out[family] = str(path)
    return out


def _page(model: str, page: str) -> AppTest:
    """The page on a local folder typed into the sidebar's model box (a link may not name the server's folders)."""
    from pages.kit.models import OTHER_MODEL

    at = open_app_page(page, prompt="The cat sat on the mat", state={"model_choice": OTHER_MODEL, "model_custom": model})
    assert not at.exception
    return at


def _messages(at: AppTest) -> str:
    return " ".join(el.value for el in [*at.info, *at.warning, *at.error])


def test_attribution_page_explains_gemma2_soft_cap(folders) -> None:
    at = _page(folders["gemma2"], "pages/attribution.py")
    assert "Gemma2ForCausalLM soft-caps its logits" in _messages(at)
    assert not charts(at)


def test_step_by_step_page_explains_bloom(folders) -> None:
    at = _page(folders["bloom"], "pages/head_pipeline.py")
    text = _messages(at)
    assert "BloomForCausalLM (bloom)" in text and "ALiBi" in text


def test_lens_page_draws_for_gemma2(folders) -> None:
    at = _page(folders["gemma2"], "pages/logit_lens.py")
    assert charts(at) and not at.error
