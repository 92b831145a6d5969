"""Walk the Lesson in a real browser: open a step from a link, then press Next through every step,
waiting for each to settle. Shared by the browser test and the screenshot tool (`make shots`)."""
from __future__ import annotations

import re
from collections.abc import Iterator

from xray_app import rerun

STEP_HEADING = re.compile(r"Step (\d+) of (\d+)")


def step_heading(page) -> tuple[int, int]:
    """(step, steps) from the lesson's heading 'Step n of N · title'."""
    text = page.locator('[data-testid="stMain"] h3').filter(has_text="Step ").first.inner_text()
    found = STEP_HEADING.search(text)
    if found is None:
        raise AssertionError(f"no step heading in {text!r}")
    return int(found[1]), int(found[2])


def next_step(page) -> None:
    rerun(page, page.get_by_role("button", name="Next →").click)


def walk(page) -> Iterator[int]:
    """From the current step to the last, yielding each step number once it has settled."""
    while True:
        step, steps = step_heading(page)
        yield step
        if step == steps:
            return
        next_step(page)
