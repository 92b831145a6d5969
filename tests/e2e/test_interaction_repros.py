"""Issue 26's two repros, replayed in a real browser (fixed by pages/kit/pickers.py: every picker re-binds
its value each run, so the browser never sends an old label back).

1. Lesson: a word that passes step 1, then a word that does not. The stepper's label gained a ✓ in
   between; before the fix the browser sent the old label back and the page died with a ValueError
   (every widget and the Next button gone). Also: Next after the pass, and a reload that keeps the
   progress (it rides in the link, ?done=1).
2. Attribution: token B set to ·John, then another prompt. Before the fix both pickers kept the old
   prompt's percentages, and the next rerun read the stale B label as a typed text ("is more than one
   token"). The percentages are checked against plain transformers.
"""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from pages.lesson_steps.text import STEPS

from xray_app import PROMPT_BOX, exception_texts, open_tab, rerun, settle

pytestmark = pytest.mark.e2e
MAIN = '[data-testid="stMain"]'
STEP_1, STEP_2 = "1 · Text becomes tokens", "2 · The embedding matrix"
LONG_WORD, SHORT_WORD = "antidisestablishmentarianism", "cat"
OLD_PROMPT = "When Mary and John went to the store, John gave a drink to"
NEW_PROMPT = "When Mary and John went to the park, John gave a ball to"
TOKEN_A, TOKEN_B = "Token whose logit to split", "…and not token B (contrast)"


def _act(page, action) -> None:
    """Do something that reruns the app, then wait until the run has finished."""
    rerun(page, action)


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _no_exception(page, when: str) -> None:
    errors = exception_texts(page)
    assert not errors, f"{when}: the page shows an exception:\n{errors[0]}"


def _main_text(page) -> str:
    return page.locator(MAIN).inner_text()


def _combobox(page, label: str):
    return page.locator(f'{MAIN} {_input(label)}').first


def _input(label: str) -> str:
    return f'input[role="combobox"][aria-label="{label}"]'


def _selectbox(page, label: str):
    return page.locator(f'{MAIN} [data-testid="stSelectbox"]').filter(has=page.locator(_input(label))).first


def _shown(page, label: str) -> str:
    """The text a selectbox shows (the label of its current option)."""
    return _combobox(page, label).input_value().strip()


def _choose(page, label: str, option: re.Pattern[str]) -> None:
    """Open a selectbox and click the first listed option whose text matches `option`."""
    box = _selectbox(page, label)
    box.scroll_into_view_if_needed()
    box.click()
    choice = page.locator('[role="listbox"] [role="option"]').filter(has_text=option).first
    choice.wait_for(timeout=10_000)
    _act(page, choice.click)


def _stepper(page) -> str:
    """What the lesson's stepper shows: the current step's label (a ✓ marks a finished task)."""
    box = _combobox(page, "Step")
    if box.count():
        return box.input_value().strip()
    checked = page.locator(f'{MAIN} [data-testid="stRadioOption"][data-selected="true"]').first  # the stepper before the fix
    return checked.inner_text().strip() if checked.count() else ""


def _marked(page) -> bool:
    """Does the stepper carry step 1's ✓ (shown, or, in the radio of before the fix, on any option)?"""
    radio = page.locator(f'{MAIN} [data-testid="stRadioOption"]').filter(has_text=f"✓ {STEP_1}")
    return _stepper(page) == f"✓ {STEP_1}" or radio.count() > 0


def _type_word(page, word: str) -> None:
    box = page.get_by_role("textbox", name="A word to cut")
    box.fill(word)
    _act(page, lambda: box.press("Enter"))


def _wait_for(page, what: str, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s; the page reads:\n{_main_text(page)[:1500]}")
        time.sleep(0.2)


def _until(condition, timeout: float = 10.0) -> None:
    """Give the page a moment to show what is expected (settle() can return between two runs);
    the asserts that follow say what it shows instead."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def _pass_step_one(page) -> None:
    _wait_for(page, "the stepper", lambda: _stepper(page) == STEP_1)  # no task passes on arrival
    _type_word(page, LONG_WORD)
    _wait_for(page, "the ✓ on step 1", lambda: _marked(page))
    assert page.locator(f'{MAIN} [data-testid="stAlertContentSuccess"]').count() == 1
    _no_exception(page, "after the passing word")


def test_lesson_a_second_word_after_a_pass(app):
    url, browser = app
    page = open_tab(browser, f"{url}/lesson?step=1")
    _pass_step_one(page)
    _type_word(page, SHORT_WORD)  # before the fix: ValueError, and every widget gone
    _wait_for(page, f"the verdict on {SHORT_WORD!r} (or an exception)",
              lambda: "only 1 token" in _main_text(page) or exception_texts(page))
    _no_exception(page, f"after typing {SHORT_WORD!r}")
    assert page.get_by_role("button", name="Next →").count() == 1
    assert "only 1 token" in _main_text(page)
    assert _stepper(page) == f"✓ {STEP_1}"  # a pass stays done
    _wait_for(page, "done=1 in the link", lambda: _query(page).get("done") == "1")
    assert _query(page)["step"] == "1"

    page.reload()
    settle(page, timeout=180)
    _no_exception(page, "after a reload")
    assert _stepper(page) == f"✓ {STEP_1}"
    assert f"1 of {len(STEPS)} tasks done" in _main_text(page)
    page.close()


def test_lesson_next_after_a_pass(app):
    url, browser = app
    page = open_tab(browser, f"{url}/lesson?step=1")
    _pass_step_one(page)
    _act(page, page.get_by_role("button", name="Next →").click)
    _no_exception(page, "after Next")
    assert f"Step 2 of {len(STEPS)}" in _main_text(page)
    _until(lambda: _stepper(page) == STEP_2)
    assert _stepper(page) == STEP_2, f"the stepper shows {_stepper(page)!r} on step 2"
    _wait_for(page, "step=2&done=1 in the link",
              lambda: (_query(page).get("step"), _query(page).get("done")) == ("2", "1"))

    page.reload()
    settle(page, timeout=180)
    _no_exception(page, "after a reload")
    assert f"Step 2 of {len(STEPS)}" in _main_text(page)
    assert f"1 of {len(STEPS)} tasks done" in _main_text(page)
    _selectbox(page, "Step").click()  # the stepper's list: step 1 keeps its ✓
    assert page.get_by_role("option", name=f"✓ {STEP_1}").count() == 1
    page.keyboard.press("Escape")
    page.close()


_LM = None


def _truth(prompt: str, pos: int | None = None) -> tuple[list[str], dict[str, float]]:
    """(tokens, next-token probability by readable token) at `pos` (default: the last), from plain
    transformers on the default model."""
    import torch

    from model import load_model
    from model.core.tokens import readable_tokens

    global _LM
    _LM = lm = _LM or load_model(device="cpu")  # loaded once, after the app has started
    ids = lm.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = lm.model(ids).logits[0, -1 if pos is None else pos]
    p = torch.softmax(logits.double(), dim=-1)
    top = torch.topk(p, 10).indices.tolist()
    names = readable_tokens(lm.tokenizer, top)
    return readable_tokens(lm.tokenizer, ids[0].tolist()), {n: float(p[i]) for n, i in zip(names, top)}


def _check_pickers(page, p: dict[str, float], where: str) -> None:
    """Token A reads ·Mary and B ·John, each with the probability plain transformers give."""
    want = {TOKEN_A: ("·Mary", f"({p['·Mary']:.1%})"), TOKEN_B: ("·John", f"({p['·John']:.1%})")}
    ok = lambda: all(_shown(page, k).startswith(n) and _shown(page, k).endswith(v) for k, (n, v) in want.items())
    _until(ok)
    shown = {k: _shown(page, k) for k in want}
    print(f"\n  at {where}: A {shown[TOKEN_A]!r}, B {shown[TOKEN_B]!r}; "
          f"transformers: {want[TOKEN_A][1]}, {want[TOKEN_B][1]}")
    for key, (name, value) in want.items():
        assert shown[key].startswith(name) and shown[key].endswith(value), \
            f"at {where}, '{key}' shows {shown[key]!r}; transformers say {name} {value}"


def test_attribution_pickers_follow_a_new_prompt(app):
    url, browser = app
    page = open_tab(browser, f"{url}/attribution?prompt={OLD_PROMPT.replace(' ', '+')}")
    assert _shown(page, TOKEN_A).startswith("·Mary")
    _choose(page, TOKEN_B, re.compile(r"^\s*·John"))
    assert _shown(page, TOKEN_B).startswith("·John")

    box = page.locator(PROMPT_BOX).first
    box.fill(NEW_PROMPT)
    _act(page, lambda: box.press("Control+Enter"))
    _no_exception(page, "after the new prompt")
    tokens, p = _truth(NEW_PROMPT)
    _check_pickers(page, p, "the new prompt")  # before the fix: ·Mary (92.3%) and ·John (0.2%), the old prompt's

    comma = tokens.index(",")  # "…went to the park," – the next name is Mary or John
    _, at_comma = _truth(NEW_PROMPT, comma)
    assert {"·Mary", "·John"} <= set(at_comma), f"both names should be likely after the comma: {at_comma}"
    _choose(page, "Position", re.compile(rf"\({comma}\)"))  # one more rerun: the browser sends B's label back
    _no_exception(page, "after moving the position")
    assert _shown(page, "Position").startswith(",") and f"({comma})" in _shown(page, "Position")
    assert "is more than one token" not in _main_text(page)  # before the fix: the stale label read as typed text
    _check_pickers(page, at_comma, "the comma")
    page.close()
