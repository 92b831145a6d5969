"""Issue 26's repros, acted in sequence in a browser-like session: a picker's label always belongs to
the current prompt, and no old label is ever read back as typed text or as a step."""
from __future__ import annotations

import pytest
import torch
from browser_like import BrowserLike

from viz.labels import percent

IOI = "When Mary and John went to the store, John gave a drink to"
PARK = "When Mary and John went to the park, John gave a ball to"


def _percent(lm, prompt: str, token: int) -> str:
    """transformers' own next-token probability at the last position, as a label prints it."""
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        p = torch.softmax(lm.model(ids).logits[0, -1].double(), -1)
    return f"({percent(float(p[token]))})"


def _label(at, key: str) -> str:
    box = at.selectbox(key=key)
    return box.options[box.index]


def test_attribution_pickers_follow_a_prompt_edit(open_page, default_lm) -> None:
    browser = BrowserLike(open_page("pages/attribution.py", prompt=IOI))
    at = browser.run()
    mary, john = (default_lm.tokenizer(" " + n, add_special_tokens=False)["input_ids"][0] for n in ("Mary", "John"))
    browser.pick(at.selectbox(key="contrast_token"), next(o for o in at.selectbox(key="contrast_token").options
                                                          if o.startswith("·John")))
    browser.run()
    assert (at.session_state["attr_token"], at.session_state["contrast_token"]) == (mary, john)
    browser.prompt = PARK
    browser.run()
    assert not at.exception
    assert (at.session_state["attr_token"], at.session_state["contrast_token"]) == (mary, john)
    assert _label(at, "attr_token").endswith(_percent(default_lm, PARK, mary))
    assert _label(at, "contrast_token").endswith(_percent(default_lm, PARK, john))
    assert browser.shown[at.selectbox(key="attr_token").id] == _label(at, "attr_token")  # what the browser shows
    browser.run()  # the next action reads the labels back: no false "more than one token"
    assert not any("more than one token" in c.value for c in at.caption)
    assert at.session_state["contrast_token"] == john


def test_token_a_can_be_typed(open_page, default_lm) -> None:
    browser = BrowserLike(open_page("pages/attribution.py", prompt=IOI))
    at = browser.run()
    browser.pick(at.selectbox(key="attr_token"), "Rome")
    browser.run()
    rome = default_lm.tokenizer(" Rome", add_special_tokens=False)["input_ids"][0]
    assert at.session_state["attr_token"] == rome
    assert _label(at, "attr_token").startswith("·Rome") and _label(at, "attr_token").endswith(
        _percent(default_lm, IOI, rome))
    browser.pick(at.selectbox(key="attr_token"), "the quick brown fox")
    browser.run()
    assert any("more than one token" in c.value for c in at.caption)
    assert not at.exception
    browser.pick(at.selectbox(key="attr_token"), "a pasted paragraph " * 40)
    browser.run()
    note = next(c.value for c in at.caption if "more than one token" in c.value)
    assert len(note) < 120 and "…" in note  # quoted short, not echoed whole


def test_patching_answers_follow_an_edited_corrupted_prompt(open_page, default_lm) -> None:
    browser = BrowserLike(open_page("pages/patching.py"))
    at = browser.run()
    before = _label(at, "patch_a")
    at.text_input(key="patch_corrupted").input("When Mary and John went to the store, Mary gave a book to")
    browser.run()
    at.text_input(key="patch_clean").input("When Mary and John went to the store, John gave a book to")
    browser.run()
    assert not at.exception
    a = at.session_state["patch_a"]
    label = _label(at, "patch_a")
    clean = _percent(default_lm, "When Mary and John went to the store, John gave a book to", a).strip("()")
    corrupted = _percent(default_lm, "When Mary and John went to the store, Mary gave a book to", a).strip("()")
    assert label.endswith(f"(clean {clean} · corrupted {corrupted})") and label != before


def test_mlp_neuron_label_is_the_effect_the_page_shows(open_page) -> None:
    browser = BrowserLike(open_page("pages/mlp.py", prompt=IOI))
    at = browser.run()
    browser.prompt = PARK
    browser.run()
    assert not at.exception
    effect = next(m.value for m in at.metric if m.label.startswith("Direct effect on"))
    assert _label(at, "mlp_neuron").endswith(f"(effect {effect})")


@pytest.mark.parametrize("then", ["cat", "slider"])
def test_lesson_step_after_a_passed_task(open_page, then: str) -> None:
    """The repro: /lesson?step=1, a word that passes (✓ appears), then another action."""
    at = open_page(None)
    at.query_params["step"] = "1"
    at.switch_page("pages/lesson.py")
    browser = BrowserLike(at)
    browser.run()
    at.text_input(key="lesson_word").input("antidisestablishmentarianism")
    browser.run()
    assert _label_of_radio(at).startswith("✓ 1")
    if then == "cat":
        at.text_input(key="lesson_word").input("cat")
    else:
        at.button(key="lesson_next").click()
    browser.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["lesson_done"] == {1}
    assert at.session_state["lesson_step"] == (1 if then == "cat" else 2)
    assert at.query_params["done"] in ("1", ["1"])  # a reload keeps the progress


def _label_of_radio(at) -> str:
    radio = at.selectbox(key="lesson_step")
    return radio.options[radio.index]


def test_lesson_step_12_writes_right_after_the_seed_passes(open_page) -> None:
    """The repro on step 12: a seed that passes, then "Write 8 tokens" at once."""
    browser = BrowserLike(open_page("pages/lesson.py", step="12", temperature="1.5"))
    at = browser.run()
    for seed in range(40):  # the learner tries seeds until one draws another token than the favourite
        at.number_input(key="lesson_seed").set_value(seed)
        browser.run()
        if 12 in at.session_state["lesson_done"]:
            break
    assert 12 in at.session_state["lesson_done"]
    at.button(key="lesson_generate").click()
    browser.run()
    assert not at.exception
    assert any(t.value.startswith("…") for t in at.text)  # the continuation is shown


def test_a_refused_text_leaves_the_choice_before_it(open_page, default_lm) -> None:
    """Typing "<b>" (several tokens) into B explained the refusal but also reset B to none."""
    browser = BrowserLike(open_page("pages/attribution.py", prompt=IOI))
    at = browser.run()
    john = default_lm.tokenizer(" John", add_special_tokens=False)["input_ids"][0]
    browser.pick(at.selectbox(key="contrast_token"), next(o for o in at.selectbox(key="contrast_token").options
                                                          if o.startswith("·John")))
    browser.run()
    browser.pick(at.selectbox(key="contrast_token"), "the quick brown fox")
    browser.run()
    assert any("more than one token" in c.value for c in at.caption)
    assert at.session_state["contrast_token"] == john
