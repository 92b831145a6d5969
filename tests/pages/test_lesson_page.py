"""The Lesson page on the real default model: every step renders from a link (?step=N), tasks answer
right and wrong from the learner's own run, progress is kept, and the step survives in the URL."""
from __future__ import annotations

import re

import pytest
from apptest_session import open_app_page
from page_charts import charts, figures
from streamlit.testing.v1 import AppTest

from pages.lesson_steps.text import STEPS
from viz.labels import escape

FIGURE_FREE = {1}  # step 1 draws the token strip (HTML), not a chart


def open_lesson(step: str | None = None, **params: str) -> AppTest:
    """A fresh session on a link to the lesson carrying ?step= and `params` (prompt...)."""
    at = open_app_page("pages/lesson.py", **params, **({"step": step} if step is not None else {}))
    assert not at.exception, [e.value for e in at.exception]
    return at


def verdicts(at: AppTest) -> tuple[list[str], list[str]]:
    """(passed, not yet) verdict texts, unescaped."""
    def plain(text: str) -> str:
        return text.replace("\\", "")
    return [plain(s.value) for s in at.success], [plain(i.value) for i in at.info]


@pytest.mark.parametrize("step", range(1, len(STEPS) + 1))
def test_every_step_renders_from_a_link(step: int) -> None:
    at = open_lesson(step=str(step))
    assert at.session_state["lesson_step"] == step
    assert at.subheader[0].value == f"Step {step} of {len(STEPS)} · {STEPS[step - 1].title}"
    assert at.query_params["step"] in (str(step), [str(step)])  # the link keeps the step
    if step not in FIGURE_FREE:
        assert charts(at), f"step {step} drew no live figure"
    deeper = [link for link in at.get("page_link") if link.proto.label.startswith("Go deeper")]
    assert len(deeper) == 1 and deeper[0].proto.label.endswith(STEPS[step - 1].deeper_title)


def test_a_link_with_step_and_prompt_opens_that_step_on_that_prompt() -> None:
    at = open_lesson(step="5", prompt="one two three four")
    assert at.query_params["prompt"] in ("one two three four", ["one two three four"])
    assert at.number_input(key="lesson_hidden_count").label == "Hidden scores for these 4 tokens"


def test_mask_task_right_and_wrong_and_progress() -> None:
    at = open_lesson(step="5")  # the default prompt: 5 tokens, 10 scores above the diagonal
    at.number_input(key="lesson_hidden_count").set_value(5 * 5).run()  # wrong: every score
    assert not verdicts(at)[0] and any("too high" in t for t in verdicts(at)[1])
    assert 5 not in at.session_state["lesson_done"]
    at.number_input(key="lesson_hidden_count").set_value(5 * 4 // 2).run()
    assert any("Right: 10 hidden scores" in t for t in verdicts(at)[0])
    assert 5 in at.session_state["lesson_done"]
    assert at.selectbox(key="lesson_step").options[4].startswith("✓ 5")  # progress shows in the stepper
    assert at.selectbox(key="lesson_step").options[3].startswith("4 ·")


def test_an_answer_given_for_another_prompt_is_cleared() -> None:
    """The task's numbers are the prompt's: after a prompt edit the old answer is not graded against the
    new ones (a right 10 for five tokens would turn into a wrong answer for four), and the step stays done."""
    at = open_lesson(step="5")
    at.number_input(key="lesson_hidden_count").set_value(5 * 4 // 2).run()
    assert 5 in at.session_state["lesson_done"]
    at.sidebar.text_area(key="prompt").set_value("one two three four").run()
    assert not at.exception
    box = at.number_input(key="lesson_hidden_count")
    assert box.label == "Hidden scores for these 4 tokens" and box.value is None
    assert not any("too high" in t for t in verdicts(at)[1]) and 5 in at.session_state["lesson_done"]
    box.set_value(4 * 3 // 2).run()
    assert any("Right: 6 hidden scores" in t for t in verdicts(at)[0])


def test_a_bad_step_in_the_link_falls_back_with_a_notice() -> None:
    at = open_lesson(step="99")
    assert at.session_state["lesson_step"] == 1
    assert any("Ignored step '99'" in w.value for w in at.warning)


def test_tokens_task_right_and_wrong() -> None:
    at = open_lesson(step="1")
    at.text_input(key="lesson_word").set_value("cat").run()
    assert not verdicts(at)[0] and any("only 1 token" in t for t in verdicts(at)[1])
    at.text_input(key="lesson_word").set_value("antidisestablishmentarianism").run()
    assert any("tokens: the model never sees it whole" in t for t in verdicts(at)[0])


def test_temperature_task_follows_the_slider() -> None:
    at = open_lesson(step="11")  # the default prompt: " Paris" at 77% at T = 1
    assert any("still has 77.3%" in t for t in verdicts(at)[1])
    at.slider(key="temperature").set_value(2.0).run()
    assert any("At T = 2.00 the top token has" in t for t in verdicts(at)[0])


def test_make_the_model_say_paris() -> None:
    at = open_lesson(step="10")
    assert any("example prompt" in t for t in verdicts(at)[1])  # the default prompt does not count
    at = open_lesson(step="10", prompt="The capital of England is")
    assert any("not 'Paris'" in t for t in verdicts(at)[1])
    at = open_lesson(step="10", prompt="The Eiffel Tower is in the city of")
    assert not verdicts(at)[0] and 10 not in at.session_state["lesson_done"]  # a link never arrives solved
    assert any("Edit the prompt in the sidebar" in c.value for c in at.caption)
    at.session_state["prompt"] = "The Eiffel Tower stands in the city of"  # the learner's own edit
    at.run()
    assert any("most likely next token is 'Paris'" in t for t in verdicts(at)[0])
    assert 10 in at.session_state["lesson_done"]


def test_next_moves_on_and_presets_the_softmax_step() -> None:
    at = open_lesson(step="5")
    at.button(key="lesson_next").click().run()
    assert not at.exception and at.session_state["lesson_step"] == 6
    layer, head = at.session_state["layer"], at.session_state["head"]
    assert (layer, head) != (0, 0)  # the sink head chosen for this prompt, not the default
    at.switch_page("pages/head_pipeline.py").run()  # go deeper: the same head
    assert not at.exception
    assert (at.session_state["layer"], at.session_state["head"]) == (layer, head)


def test_no_task_passes_on_arrival(open_page) -> None:
    """Step 7 once passed on arrival (block 0 head 0 satisfies it); a teacher's link with a solving
    head must not arrive solved either. Acting on the step (another head) is what counts."""
    at = open_page("pages/lesson.py", step="7")
    assert not verdicts(at)[0] and 7 not in at.session_state["lesson_done"]
    assert any("Choose a block and a head" in c.value for c in at.caption)
    at.selectbox(key="head").set_value(3).run()  # the learner looks at another head (it does not show it)
    assert not verdicts(at)[0] and any("wins on both counts" in t for t in verdicts(at)[1])
    at.selectbox(key="head").set_value(0).run()  # and comes back: now it is their answer
    assert 7 in at.session_state["lesson_done"] and verdicts(at)[0]


def test_previous_and_next_keep_each_steps_own_head(open_page) -> None:
    at = open_page("pages/lesson.py", step="5")
    at.button(key="lesson_next").click().run()  # step 6: the preset (sink) head
    at.slider(key="layer").set_value(4).run()
    at.selectbox(key="head").set_value(2).run()  # the learner's own answer on step 6
    at.button(key="lesson_next").click().run()  # step 7
    at.slider(key="layer").set_value(9).run()
    at.button(key="lesson_prev").click().run()  # back on step 6: the learner's head, not the preset
    assert not at.exception
    assert at.session_state["lesson_step"] == 6 and (at.session_state["layer"], at.session_state["head"]) == (4, 2)
    at.button(key="lesson_next").click().run()
    assert (at.session_state["layer"], at.session_state["head"]) == (9, 2)  # step 7's own


def test_steering_task_follows_the_coefficient(default_lm) -> None:
    from model.analyses import steering as steer
    from model.analyses.sampling import probabilities
    from pages.lesson_steps.steering import BASE, block

    at = open_lesson(step="13")  # arrives at coefficient 0: drawn, not solved
    assert not verdicts(at)[0] and 13 not in at.session_state["lesson_done"]
    bars = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("Next token after the prompt")][0]
    assert bars["layout"]["title"]["text"].endswith("the likeliest tokens")  # nothing moved at coefficient 0
    assert "·Paris" in bars["data"][0]["y"] and bars["data"][0]["y"][0] == "·weddings"  # the topic's own first
    at.slider(key="lesson_steer_coef").set_value(2.0).run()
    passed = verdicts(at)[0]
    assert passed and "the direction carries the topic" in passed[0] and 13 in at.session_state["lesson_done"]
    layer = block(default_lm)
    direction = steer.actadd(default_lm, f"{BASE} weddings", BASE, layer)
    ids = default_lm.encode("The capital of France is")
    steered = probabilities(steer.steered_logits(default_lm, ids, steer.Steering(direction.vector, layer, 2.0),
                                                 last_only=True))  # checked against transformers in test_steering
    token = default_lm.tokenizer(" weddings", add_special_tokens=False)["input_ids"][0]
    quoted = float(re.search(r"to ([0-9.]+)% as the next token", passed[0]).group(1)) / 100
    assert quoted == pytest.approx(steered[token], abs=1e-6)  # the model's own number (to its 4 decimals)
    at.slider(key="lesson_steer_coef").set_value(0.0).run()
    assert any("At coefficient 0 nothing is added" in t for t in verdicts(at)[1])
    assert 13 in at.session_state["lesson_done"]  # progress never goes down


def test_a_topic_of_several_tokens_is_refused_and_a_topic_is_shown_as_text() -> None:
    """Step 13 checks one token's probability: a topic of several tokens is refused, saying why (it was
    graded on its first piece); a one-token topic with markdown in it is quoted as typed."""
    at = open_lesson(step="13")
    at.slider(key="lesson_steer_coef").set_value(4.0)
    at.text_input(key="lesson_topic").set_value("space travel").run()
    assert not at.exception and not verdicts(at)[0] and 13 not in at.session_state["lesson_done"]
    assert any("is 2 tokens for this model" in i.value.replace("\\", "") for i in at.info)
    at.text_input(key="lesson_topic").set_value("**").run()  # one token: ' **'
    (caption,) = [c.value for c in at.caption if c.value.startswith("The direction:")]
    assert r"'I love talking about \*\*'" in caption


def test_a_draw_outside_the_bars_is_named(default_lm) -> None:
    """Step 12: a seed whose draw is not among the top bars gets an orange bar of its own after them, with
    its rank; the caption names it, and the verdict names both tokens with a probability that never reads 0%."""
    from model.analyses.sampling import probabilities, sample_token, top_tokens
    from model.core.tokens import readable_tokens
    from pages.kit.session import DEFAULT_PROMPT

    logits = default_lm.capture(DEFAULT_PROMPT).logits[-1]
    p, shown = probabilities(logits, 1.5), set(top_tokens(logits, 10).tolist())
    seed = next(s for s in range(1000) if sample_token(p, s) not in shown)
    at = open_lesson(step="12", temperature="1.5")
    at.number_input(key="lesson_seed").set_value(seed).run()
    assert not at.exception
    name = readable_tokens(default_lm.tokenizer, [sample_token(p, seed)])[0]
    assert any(f"The seed's draw, {name} (" in c.value and "is not among the top 10" in c.value for c in at.caption)
    bars = next(f for f in figures(at) if f["data"][0].get("orientation") == "h")["data"][0]
    rank = 1 + int((logits > logits[sample_token(p, seed)]).sum())
    assert len(bars["y"]) == 12 and bars["y"][10] == f"{escape(name)} (#{rank:,})"  # 10 bars, the draw, the rest
    assert bars["marker"]["color"][10] == "#e8890c" and "#e8890c" not in bars["marker"]["color"][:10]
    passed = verdicts(at)[0]
    assert passed and f"draws {name}, not the favourite ·Paris" in passed[0] and "0.0%" not in passed[0]
