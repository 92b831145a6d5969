"""The Lesson in a real browser: a teacher's link to step 5 with a prompt, opened as the first visit
after a server start, then every step by the Next button, each with its live figure and its step in
the URL."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from lesson_walk import step_heading, walk

from pages.lesson_steps.text import STEPS as LESSON_STEPS

from xray_app import CHROMIUM, FLAGS, PROMPT_BOX, chart_count, exception_texts, running_app, settle

pytestmark = pytest.mark.e2e
STEPS = len(LESSON_STEPS)
NO_CHART = {1}  # tokens: the token strip


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _charts(page, expected: bool, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while expected and chart_count(page) == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    return chart_count(page)


def _choose_step(page, label: str) -> None:
    """Open the stepper and pick a step. A click that lands while a busy server is still redrawing
    the page can leave the list closed: open it again, up to three times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first.click()
        try:
            page.get_by_role("option", name=label).click(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            settle(page)


def test_a_link_to_step_five_then_every_step():
    from playwright.sync_api import sync_playwright

    with running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lesson?step=5&prompt=The+spy+was+a+mole", timeout=180_000)
        settle(page, timeout=180)
        assert step_heading(page) == (5, STEPS)
        assert page.locator(PROMPT_BOX).first.input_value() == "The spy was a mole"
        assert _query(page)["step"] == "5" and _query(page)["prompt"] == "The spy was a mole"
        _choose_step(page, "1 · Text becomes tokens")  # back to the start
        settle(page)
        assert step_heading(page) == (1, STEPS)
        seen = []
        for step in walk(page):
            charts = _charts(page, step not in NO_CHART)
            errors = exception_texts(page)
            assert not errors, f"step {step} shows an exception:\n{errors[0]}"
            assert step in NO_CHART or charts >= 1, f"step {step} drew no figure"
            page.wait_for_function(  # the shell writes the link once the step's run has finished
                f"() => new URLSearchParams(location.search).get('step') === '{step}'", timeout=60_000)
            seen.append(step)
            print(f"  step {step:>2}: {charts} charts")
        assert seen == list(range(1, STEPS + 1))
        browser.close()
