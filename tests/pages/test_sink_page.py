"""Attention step by step on a model with learned attention sinks (a tiny gpt-oss): the four steps
are drawn and captions say how much of each row the sink took; no error."""
from __future__ import annotations

from page_charts import charts
from tiny_families import build


def test_step_by_step_page_names_the_sink(tokenizer, tmp_path, open_page) -> None:
    build("gpt_oss").save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    from pages.kit.models import OTHER_MODEL

    at = open_page("pages/head_pipeline.py", prompt="The cat sat on the mat",
                   state={"model_choice": OTHER_MODEL, "model_custom": str(tmp_path)})  # typed into the model box
    assert not at.exception and not at.error
    captions = " ".join(c.value for c in at.caption)
    assert "Attention sink" in captions and "the attention sink took the other" in captions
    assert len(charts(at)) == 4
