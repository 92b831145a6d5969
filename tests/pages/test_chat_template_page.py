"""The sidebar's chat template switch (issue 28, part 4), used as a person would: switch it on and the
prompt runs as the model's own chat turn (its special tokens shown as tokens, the next token the
assistant's first); a prompt edit stays wrapped; switching off brings the plain prompt back; the link
keeps it; a model without a template says so and runs the prompt as typed."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from browser_like import BrowserLike
from test_next_token_page import component_data, labels
from tiny_models import tiny_model

from pages.kit import captures

FRANCE, ITALY = "The capital of France is", "The capital of Italy is"
TEMPLATE_TOKEN = "&lt;|im_start|&gt;"  # <|im_start|> as escaped text in the token strip


def _strip(at) -> str:
    return " ".join(h.proto.body for h in at.get("html"))


def _param(at, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def _top(lm, ids: list[int]) -> int:
    return int(np.argmax(lm.forward(ids, last_only=True).logits))


def test_the_switch_wraps_the_prompt_and_every_edit_until_switched_off(open_page, default_lm) -> None:
    browser = BrowserLike(open_page("pages/next_token.py", prompt=FRANCE))
    at = browser.run()
    plain = component_data(at)
    assert labels(at)[0] == "·Paris" and TEMPLATE_TOKEN not in _strip(at)
    at.toggle(key="chat_template").set_value(True)
    browser.run()
    wrapped = default_lm.encode(FRANCE, chat=True)
    assert not at.exception and not at.warning
    assert TEMPLATE_TOKEN in _strip(at) and "<|im_start|>" not in _strip(at)  # the template's tokens, as text
    assert at.selectbox(key="position").value == len(wrapped) - 1  # the assistant's first token comes next
    assert component_data(at)["ids"][0] == _top(default_lm, wrapped) and component_data(at)["logits"] != plain["logits"]
    assert at.button(key="nt_append_greedy").disabled and _param(at, "chat") == "1"
    browser.prompt = ITALY  # an edit after the choice: still wrapped
    browser.run()
    assert at.toggle(key="chat_template").value and TEMPLATE_TOKEN in _strip(at)
    assert at.selectbox(key="position").value == len(default_lm.encode(ITALY, chat=True)) - 1
    assert component_data(at)["ids"][0] == _top(default_lm, default_lm.encode(ITALY, chat=True))
    at.toggle(key="chat_template").set_value(False)
    browser.run()
    assert TEMPLATE_TOKEN not in _strip(at) and labels(at)[0] == "·Rome"  # the plain prompt's capture
    assert at.selectbox(key="position").value == len(default_lm.encode(ITALY)) - 1
    assert not at.button(key="nt_append_greedy").disabled and _param(at, "chat") is None


def test_the_token_limit_counts_the_templates_tokens(open_page, default_lm) -> None:
    at = open_page("pages/next_token.py", prompt=FRANCE)
    at.number_input(key="token_limit").set_value(20).run()
    assert not at.warning and labels(at)[0] == "·Paris"
    at.toggle(key="chat_template").set_value(True).run()
    n, own = len(default_lm.encode(FRANCE, chat=True)), len(default_lm.encode(FRANCE))
    assert not at.exception and [w.value for w in at.warning] == [
        f"The prompt is {n} tokens long, {n - own} of them the chat template's; the limit is 20 tokens (the "
        "sidebar's token limit). Shorten it, raise the limit, or switch the chat template off (nothing was cut "
        "off silently)."]
    assert (at.session_state["prompt"], at.number_input(key="token_limit").value) == (FRANCE, 20)
    at.toggle(key="chat_template").set_value(False).run()
    assert not at.warning and labels(at)[0] == "·Paris"


def test_switching_back_reuses_the_plain_capture(open_page) -> None:
    at = open_page("pages/next_token.py", prompt=FRANCE)
    before = component_data(at)["logits"]
    at.toggle(key="chat_template").set_value(True).run()
    computed = captures.capture_cache().computed
    at.toggle(key="chat_template").set_value(False).run()
    assert component_data(at)["logits"] == before and captures.capture_cache().computed == computed


def test_a_shared_link_opens_with_the_template_on(open_page, default_lm) -> None:
    at = open_page("pages/next_token.py", prompt=FRANCE, chat="1", temperature="0.5")
    assert not at.exception and not at.warning and at.toggle(key="chat_template").value
    assert at.selectbox(key="position").value == len(default_lm.encode(FRANCE, chat=True)) - 1
    again = open_page("pages/next_token.py", **{k: _param(at, k) for k in at.query_params})  # the copied link
    assert again.toggle(key="chat_template").value and component_data(again) == component_data(at)
    at.switch_page("pages/generate.py").run()  # another page runs on the same wrapped tokens
    at.button(key="FormSubmitter:gen_form-Generate").click().run()
    assert not at.exception and at.toggle(key="chat_template").value
    assert at.code[0].value.startswith("<|im_start|>system") and at.button(key="gen_use").disabled


def test_opening_a_head_from_attribution_keeps_the_switch_on(open_page, default_lm) -> None:
    at = open_page("pages/attribution.py", prompt=FRANCE)
    at.toggle(key="chat_template").set_value(True).run()
    next(b for b in at.button if b.key and b.key.startswith("attr_open_")).click().run()  # a switch made by code
    assert not at.exception and any("Attention" in t.value for t in at.title)
    n = len(default_lm.encode(FRANCE, chat=True))
    assert at.toggle(key="chat_template").value and any(f" · {n} tokens · " in c.value for c in at.sidebar.caption)


def test_ablation_resamples_from_a_text_wrapped_like_the_prompt(open_page) -> None:
    """The resampling source pairs its positions with the prompt's: wrapped too, resampling the prompt
    from itself changes nothing (a plain source would be 30 tokens short)."""
    at = open_page("pages/ablation.py", prompt=FRANCE, chat="1")
    at.multiselect(key="abl_heads").set_value([(3, 1)]).run()
    at.radio(key="abl_how").set_value("resample").run()
    at.text_input(key="abl_source").set_value(FRANCE).run()
    assert not at.exception and not at.warning and at.metric[0].value == "0.000 bits"
    assert TEMPLATE_TOKEN in _strip(at)


def test_a_bad_link_value_says_so_and_keeps_the_rest(open_page) -> None:
    at = open_page(None, prompt=ITALY, chat="yes")  # the shell reads the link and says what it ignored
    assert "Ignored chat 'yes' from the link (expected 1 for the chat template, 0 for none)." in [w.value for w in at.warning]
    at.switch_page("pages/next_token.py").run()
    assert not at.toggle(key="chat_template").value and labels(at)[0] == "·Rome"


@pytest.fixture(scope="module")
def base_model(tokenizer, tmp_path_factory) -> str:
    """A tiny model folder whose tokenizer has no chat template (a base model's)."""
    path = tmp_path_factory.mktemp("no_template")
    tiny_model("llama", len(tokenizer)).save_pretrained(path)
    plain = copy.copy(tokenizer)
    plain.chat_template = None
    plain.save_pretrained(path)
    return str(path)


def _typed(folder: str) -> dict[str, str]:
    """A local folder typed into the sidebar's model box (a link may not name the server's folders)."""
    from pages.kit.models import OTHER_MODEL

    return {"model_choice": OTHER_MODEL, "model_custom": folder}


def test_a_model_without_a_template_runs_the_prompt_as_typed(open_page, base_model, tokenizer) -> None:
    at = open_page("pages/next_token.py", prompt=ITALY, temperature="0.5", state=_typed(base_model))
    at.toggle(key="chat_template").set_value(True).run()
    assert not at.exception and at.toggle(key="chat_template").value
    assert [w.value for w in at.sidebar.warning] == [f"{base_model} has no chat template, so the prompt runs as typed."]
    assert at.selectbox(key="position").value == len(tokenizer(ITALY)["input_ids"]) - 1  # not wrapped
    assert TEMPLATE_TOKEN not in _strip(at) and json.dumps(_strip(at))
    assert (at.session_state["prompt"], at.session_state["temperature"]) == (ITALY, 0.5)  # the rest is kept
    assert _param(at, "model") == base_model
