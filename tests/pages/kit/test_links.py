"""Links carry the view (issue 26, item 7): position, tokens A and B, the patching pair and its
answers, the lesson's step and progress; a prompt too long for a link says so; a new prompt moves the
shared position to its last token unless the link names one."""
from __future__ import annotations

from browser_like import BrowserLike

IOI = "When Mary and John went to the store, John gave a drink to"


def _param(at, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def _token(lm, text: str) -> int:
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"][0]


def test_a_copied_attribution_link_opens_the_same_view(open_page, default_lm) -> None:
    browser = BrowserLike(open_page("pages/attribution.py", prompt=IOI))
    at = browser.run()
    browser.pick(at.selectbox(key="position"), at.selectbox(key="position").options[9])
    browser.run()
    box = at.selectbox(key="contrast_token")
    browser.pick(box, box.options[2])
    browser.run()
    chosen = {k: at.session_state[k] for k in ("position", "attr_token", "contrast_token")}
    link = dict(at.query_params)
    assert _param(at, "position") == "9" and _param(at, "b") == str(chosen["contrast_token"])
    again = open_page("pages/attribution.py", **{k: _param(at, k) for k in link})  # a new session opens the link
    assert not again.exception and not again.warning
    assert {k: again.session_state[k] for k in chosen} == chosen


def test_a_link_can_name_a_token_outside_the_top_ones(open_page, default_lm) -> None:
    rome = _token(default_lm, " Rome")
    at = open_page("pages/attribution.py", prompt=IOI, a=str(rome))
    assert at.session_state["attr_token"] == rome
    assert at.selectbox(key="attr_token").options[at.selectbox(key="attr_token").index].startswith("·Rome")


def test_bad_link_values_fall_back_with_a_notice(open_page) -> None:
    at = open_page(None, prompt=IOI, a="99999999", position="x")  # the shell reads the link and says what it ignored
    assert {"Ignored token A '99999999' from the link (this model has 49,152: 0-49,151).",
            "Ignored position 'x' from the link."} <= {w.value for w in at.warning}
    at.switch_page("pages/attribution.py").run()
    assert not at.exception and at.session_state["position"] == len(at.selectbox(key="position").options) - 1


def test_a_new_prompt_moves_the_position_to_its_last_token(open_page) -> None:
    browser = BrowserLike(open_page("pages/next_token.py", prompt=IOI))
    at = browser.run()
    browser.pick(at.selectbox(key="position"), at.selectbox(key="position").options[3])
    browser.run()
    assert at.session_state["position"] == 3
    browser.prompt = "The capital of France is"
    browser.run()
    assert at.session_state["position"] == 4  # the new prompt's last token, not the old index
    linked = open_page("pages/next_token.py", prompt=IOI, position="3")
    assert linked.session_state["position"] == 3  # the link's own position stays


def test_the_patching_pair_and_answers_ride_in_the_link(open_page, default_lm) -> None:
    at = open_page("pages/patching.py", clean="The capital of France is", corrupted="The capital of Italy is",
                   answer_a=" Paris", answer_b=" Rome")
    assert not at.exception
    assert (at.session_state["patch_clean"], at.session_state["patch_corrupted"]) == (
        "The capital of France is", "The capital of Italy is")
    assert (at.session_state["patch_a"], at.session_state["patch_b"]) == (
        _token(default_lm, " Paris"), _token(default_lm, " Rome"))
    assert (_param(at, "clean"), _param(at, "answer_b")) == ("The capital of France is", " Rome")


def test_a_prompt_too_long_for_a_link_says_so(open_page) -> None:
    at = open_page(None)
    at.text_area(key="prompt").input("word " * 900).run()
    assert "prompt" not in at.query_params
    assert any("more than a link carries (4,000)" in c.value for c in at.sidebar.caption)


def test_lesson_progress_survives_a_reload(open_page) -> None:
    at = open_page("pages/lesson.py", step="5", done="1,2")
    assert at.session_state["lesson_done"] == {1, 2}
    at.number_input(key="lesson_hidden_count").set_value(10).run()  # the default prompt: 5 tokens
    assert at.session_state["lesson_done"] == {1, 2, 5} and _param(at, "done") == "1,2,5"
    reloaded = open_page("pages/lesson.py", **{k: _param(at, k) for k in at.query_params})
    assert reloaded.session_state["lesson_done"] == {1, 2, 5}
    assert reloaded.session_state["lesson_step"] == 5
    radio = reloaded.selectbox(key="lesson_step")
    assert [o[:2] for o in radio.options[:5]] == ["✓ ", "✓ ", "3 ", "4 ", "✓ "]


def test_a_reload_leaves_the_default_token_following_the_prompt(open_page, default_lm) -> None:
    """Token A's default (the top token) stays out of the link, so a reload does not pin it: a new
    prompt then gets its own top token, as it does without the reload. A chosen A is still linked."""
    at = open_page("pages/logit_lens.py", prompt="The capital of France is")
    assert at.session_state["attr_token"] == _token(default_lm, " Paris") and _param(at, "a") is None
    browser = BrowserLike(open_page("pages/logit_lens.py", **{k: _param(at, k) for k in at.query_params}))  # reload
    browser.prompt = "Dogs bark loudly"
    again = browser.run()
    assert not again.exception
    box = again.selectbox(key="attr_token")
    assert box.index == 0 and "Paris" not in box.options[0]  # the new prompt's own top token
    browser.pick(box, box.options[1])
    browser.run()
    second = again.session_state["attr_token"]
    assert second != _token(default_lm, " Paris") and _param(again, "a") == str(second)


def test_token_a_follows_a_new_position_and_prompt_until_picked(open_page, default_lm) -> None:
    """A defaulted at one position (·the after "of") stayed ·the on the next prompt, where it was still
    among the top ten, and the link pinned it (a=...). The default follows; a picked or typed A stays."""
    browser = BrowserLike(open_page("pages/attribution.py", prompt="The capital of France is"))
    at = browser.run()
    browser.pick(at.selectbox(key="position"), at.selectbox(key="position").options[2])  # after "of"
    browser.run()
    top_there = at.session_state["attr_token"]
    browser.prompt = IOI
    browser.run()
    assert not at.exception
    mary = _token(default_lm, " Mary")
    assert at.session_state["attr_token"] == mary != top_there and _param(at, "a") is None
    box = at.selectbox(key="attr_token")
    browser.pick(box, box.options[1])
    browser.run()
    picked = at.session_state["attr_token"]
    browser.prompt = "When Mary and John went to the park, John gave a ball to"
    browser.run()
    assert at.session_state["attr_token"] == picked and _param(at, "a") == str(picked)
    browser.pick(at.selectbox(key="attr_token"), "banana")  # typed: far below 0.05 %
    browser.run()
    label = next(o for o in at.selectbox(key="attr_token").options if "banana" in o)
    assert label.endswith("(<0.1%)"), label  # not a false "0.0%"
