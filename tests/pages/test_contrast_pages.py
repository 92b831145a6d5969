"""Contrast mode ("why A and not B?") and per-head attribution on the real default model through
AppTest: with a rival token B, Attribution, Logit lens, Ablation and the MLP page all report
logit(A) − logit(B), and the top heads open on the Attention page."""
from __future__ import annotations

import pytest
from apptest_session import open_app_page
from page_charts import figures, values
from streamlit.testing.v1 import AppTest

IOI = "When Mary and John went to the store, John gave a drink to"


def _specs(at: AppTest) -> list[dict]:
    return figures(at)


def _open(page: str, prompt: str | None = IOI) -> AppTest:
    at = open_app_page(page, **({"prompt": prompt} if prompt is not None else {}))
    assert not at.exception
    return at


def _versus_john(at: AppTest) -> AppTest:
    box = at.selectbox(key="contrast_token")
    box.select_index(next(i for i, label in enumerate(box.options) if label.startswith("·John"))).run()
    assert not at.exception
    return at


def test_contrast_on_attribution_splits_mary_versus_john() -> None:
    at = _versus_john(_open("pages/attribution.py"))
    bars, heads = _specs(at)[:2]
    assert "logit(·Mary) − logit(·John)" in bars["layout"]["title"]["text"]
    rows = at.dataframe[0].value
    shares = dict(zip(rows["part"], rows["logit share"]))
    assert shares["sum of the shares"] == pytest.approx(shares["model's own logit difference"], abs=1e-3)
    assert (len(heads["data"][0]["y"]), len(heads["data"][0]["x"])) == (30, 9)  # blocks x heads
    top = at.dataframe[2].value
    assert (top["block"][0], top["head"][0]) == (23, 3)  # the head that most separates Mary from John


def test_top_head_button_opens_it_on_the_attention_page() -> None:
    at = _open("pages/attribution.py", None)
    button = next(b for b in at.button if b.key and b.key.startswith("attr_open_"))
    layer, head = (int(x) for x in button.key.removeprefix("attr_open_").split("_"))
    button.click().run()
    assert not at.exception
    assert at.session_state["layer"] == layer and at.session_state["head"] == head
    assert any("Attention" in t.value for t in at.title)


def test_logit_lens_reads_mary_minus_john_at_every_depth() -> None:
    at = _versus_john(_open("pages/logit_lens.py"))
    line = _specs(at)[-1]
    assert "logit(·Mary) − logit(·John)" in line["layout"]["title"]["text"]
    assert len(line["data"][0]["x"]) == 31  # the embedding and after each of the 30 blocks
    assert 5.5 < values(line["data"][0]["y"])[-1] < 6.7  # the model's own difference (+6.12 measured)


def test_ablation_reports_the_difference_before_and_after() -> None:
    at = _versus_john(_open("pages/ablation.py"))
    at.multiselect(key="abl_heads").set_value([(23, 3)]).run()
    assert not at.exception
    metric = next(m for m in at.metric if m.label == "logit(·Mary) − logit(·John)")
    assert float(metric.value) < 6.12 and float(metric.delta) < 0  # the head that separates them most, switched off


def test_mlp_page_takes_the_same_contrast() -> None:
    at = _versus_john(_open("pages/mlp.py"))
    assert any("logit(·Mary) − logit(·John)" in c.value for c in at.caption)


def test_a_typed_rival_is_one_token_or_refused(tokenizer) -> None:
    """What the B box makes of typed text (AppTest cannot type new options; the browser check is
    tools/shots_mlp.py): a word inside a sentence gets its leading space, several tokens are refused."""
    from pages.kit.contrast import single_token

    rome = tokenizer(" Rome", add_special_tokens=False)["input_ids"]
    assert len(rome) == 1 and single_token(tokenizer, "Rome") == rome[0] == single_token(tokenizer, " Rome")
    assert single_token(tokenizer, ",") == tokenizer(",", add_special_tokens=False)["input_ids"][0]  # not a word: as typed
    assert single_token(tokenizer, "Constantinople-ish") is None
