"""A seeded random walk over every page's widgets, as a person clicks: pickers, sliders, numbers, words,
buttons, prompt edits in the middle, lesson steps passed and revisited. The browser's habit of keeping a
picker's label is emulated (browser_like.py), so stale labels come back as they do in Chromium.

After every action: no exception; every picker's shown label is this run's label of its value; labels
that carry numbers agree with plain transformers on the current prompt; lesson progress never goes down.
"""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from apptest_session import APP
from browser_like import BrowserLike
from streamlit.testing.v1 import AppTest

PROMPTS = (
    "When Mary and John went to the store, John gave a drink to",
    "The capital of France is",
    "The cat sat on the mat. The cat sat on the",
    "def add(a, b):\n    return a +",
)
WORDS = ("antidisestablishmentarianism", "cat", "Rome", " Paris", "king - man + woman", "Paris - France + Italy", "")
# Cancel only acts while exact patching runs (a click in between is a no-op); the prompt-set runs over a
# whole set take 10 s to minutes each and have their own test (test_prompt_sets_page.py).
SKIPPED_BUTTONS = ("patch_cancel", "set_run_exact", "set_run_ablation", "set_run_types", "set_run_estimate",
                   "set_run_exact_block")
ACTIONS_PER_PAGE = 7
PERCENT = re.compile(r"\((\d+\.\d)%\)$")


def _page_paths() -> list[str]:
    """Every page app.py registers (pages/<name>.py), read from its source: importing app.py would run it."""
    with open(APP) as source:
        return re.findall(r'st\.Page\("(pages/[a-z_]+\.py)"', source.read())


class Reference:
    """Next-token probabilities from plain transformers (float64 softmax), per prompt: what a label's
    percentage must say."""

    def __init__(self, lm) -> None:
        self.lm = lm
        self._probs: dict[str, np.ndarray] = {}

    def probs(self, prompt: str) -> np.ndarray:  # (T, V)
        if prompt not in self._probs:
            ids = self.lm.tokenizer(prompt, add_special_tokens=True, return_tensors="pt")["input_ids"]
            with torch.inference_mode():
                logits = self.lm.model(ids).logits[0].double()
            self._probs[prompt] = torch.softmax(logits, -1).numpy()
        return self._probs[prompt]


def _widgets(at: AppTest) -> list:
    kinds = ("selectbox", "radio", "slider", "select_slider", "number_input", "text_input", "text_area",
             "button", "multiselect", "checkbox", "toggle")  # a picker's value goes through BrowserLike.pick
    return [w for kind in kinds for w in at.main.get(kind) if not getattr(w, "disabled", False)
            and getattr(w, "key", None) not in SKIPPED_BUTTONS]


def _shown(widget, value) -> str | None:
    """The label a select_slider shows for a value, or None where its format function refuses it."""
    try:
        return widget.format_func(value)
    except Exception:  # noqa: BLE001  a page's format function may take other values only
        return None


def _act(browser: BrowserLike, widget, rng: random.Random) -> str:
    """One person-like action on `widget`; returns what was done (for the failure message)."""
    kind, key = widget.type, getattr(widget, "key", None)
    if kind in ("selectbox", "radio"):
        if widget.proto.accept_new_options if kind == "selectbox" else False:
            if rng.random() < 0.25:
                typed = rng.choice(("Rome", "Mary", "the quick brown fox"))
                browser.pick(widget, typed)
                return f"typed {typed!r} into {key}"
        if not widget.options:
            return "nothing"
        label = rng.choice(widget.options)
        browser.pick(widget, label)
        return f"picked {label!r} in {key}"
    if kind in ("slider", "select_slider"):
        if kind == "select_slider":  # options are the shown labels; set_value takes the value behind one
            label = rng.choice(list(widget.options))
            value = next((i for i in range(len(widget.options)) if _shown(widget, i) == label), label)
        else:
            low, high, step = widget.min, widget.max, widget.step or 1
            value = low + step * rng.randint(0, max(0, int(round((high - low) / step))))
            value = round(value, 2) if isinstance(low, float) else int(value)
            if isinstance(widget.value, (tuple, list)):
                value = (low, value)
        widget.set_value(value)
        return f"slid {key} to {value}"
    if kind == "number_input":
        low = widget.min if widget.min is not None else 0
        high = widget.max if widget.max is not None else low + 100
        value = rng.randint(int(low), int(min(high, low + 60)))
        widget.set_value(value)
        return f"typed {value} into {key}"
    if kind in ("text_input", "text_area"):
        value = rng.choice(WORDS)
        widget.input(value)
        return f"wrote {value!r} in {key}"
    if kind == "button":
        widget.click()
        return f"clicked {key or widget.label}"
    if kind == "multiselect":
        chosen = rng.sample(list(widget.options), k=min(len(widget.options), rng.randint(0, 2)))
        widget.set_value(chosen)
        return f"chose {chosen} in {key}"
    widget.set_value(not widget.value)
    return f"flipped {key}"


def _check_labels(browser: BrowserLike, reference: Reference, where: str) -> None:
    """Every picker shows this run's label of its value; labels with a percentage match transformers."""
    at = browser.at
    prompt = browser.prompt
    for widget in browser.pickers():
        if widget.value is None:
            continue
        assert widget.index is not None, f"{where}: {widget.key} holds {widget.value!r}, no option"
        assert browser.shown[widget.id] == widget.options[widget.index], \
            f"{where}: {widget.key} shows {browser.shown[widget.id]!r}, its value's label is {widget.options[widget.index]!r}"
        if widget.key in ("attr_token", "contrast_token") and (match := PERCENT.search(widget.options[widget.index])):
            position = at.session_state["position"]
            truth = reference.probs(prompt)[position, widget.value]
            assert float(match.group(1)) == pytest.approx(100 * truth, abs=0.051), \
                f"{where}: {widget.key} says {match.group(1)}%, transformers {100 * truth:.2f}%"
        if widget.key == "position":
            n_tokens = reference.probs(prompt).shape[0]
            assert widget.value < n_tokens and widget.options[widget.index].endswith(
                f"({widget.value})" + (" · last" if widget.value == n_tokens - 1 else ""))
        if widget.key == "lesson_step":
            done = at.session_state["lesson_done"]
            for step, label in enumerate(widget.options, start=1):
                assert label.startswith("✓ ") == (step in done), f"{where}: step label {label!r} vs done {done}"


def _lesson_moves(at: AppTest) -> list[Callable[[], str]]:
    """Actions that pass lesson tasks (so the walk also revisits passed steps)."""
    def word() -> str:
        at.text_input(key="lesson_word").input("antidisestablishmentarianism")
        return "passed step 1"

    def hidden() -> str:
        box = at.number_input(key="lesson_hidden_count")
        n = int(box.label.split("these ")[1].split(" ")[0])
        box.set_value(n * (n - 1) // 2)
        return "passed step 5"

    def warm() -> str:
        at.slider(key="temperature").set_value(2.0)
        return "moved step 11's temperature"

    def steer() -> str:
        at.slider(key="lesson_steer_coef").set_value(2.0)
        return "passed step 13"

    keys = {w.key for w in _widgets(at)}
    return [move for move, key in ((word, "lesson_word"), (hidden, "lesson_hidden_count"), (warm, "temperature"),
                                   (steer, "lesson_steer_coef")) if key in keys]


@pytest.mark.parametrize("seed", [26])
def test_random_walk_over_every_page(open_page, default_lm, seed: int) -> None:
    rng = random.Random(seed)
    reference = Reference(default_lm)
    browser = BrowserLike(open_page(None, prompt=PROMPTS[0]))
    at = browser.at
    pages = _page_paths()
    assert len(pages) == 17
    rng.shuffle(pages)
    progress, started, history = 0, time.monotonic(), []
    for page in pages + ["pages/lesson.py"]:  # the lesson twice: steps passed, then revisited
        at.switch_page(page)
        browser.run()
        for _ in range(ACTIONS_PER_PAGE * (3 if page == "pages/lesson.py" else 1)):
            roll = rng.random()
            widgets = _widgets(at)
            if roll < 0.12 or not widgets:
                browser.prompt = rng.choice(PROMPTS)
                done = "edited the prompt"
            elif page == "pages/lesson.py" and roll < 0.4:
                moves = _lesson_moves(at)
                if moves:
                    done = rng.choice(moves)()
                else:  # on the last step Next is disabled, as in the browser: go back instead
                    forward = not at.button(key="lesson_next").disabled
                    at.button(key="lesson_next" if forward else "lesson_prev").click()
                    done = "next step" if forward else "previous step"
            else:
                done = _act(browser, rng.choice(widgets), rng)
            history.append(f"{page}: {done}")
            browser.run()
            where = " → ".join(history[-4:])
            assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
            _check_labels(browser, reference, where)
            finished = len(at.session_state["lesson_done"]) if "lesson_done" in at.session_state else 0
            assert finished >= progress, f"{where}: lesson progress went from {progress} to {finished}"
            progress = finished
    assert progress >= 1, "the walk never passed a lesson task: it did not exercise the ✓ marks"
    print(f"{len(history)} actions in {time.monotonic() - started:.0f} s")
