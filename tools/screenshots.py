"""Refresh docs/screenshots: start the app, type a prompt, visit every page in headless Chromium
and save one full-page PNG per page, named after its URL path (`make shots`).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from lesson_walk import walk  # noqa: E402

from xray_app import CHROMIUM, FLAGS, draw_every_chart, exception_texts, nav_titles, open_page, running_app, settle, type_prompt  # noqa: E402


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def _shoot(page, path: Path) -> int:
    """One full-page PNG, every chart drawn; returns the number of exception boxes on the page."""
    draw_every_chart(page)
    settle(page)
    page.screenshot(path=str(path), full_page=True)
    errors = exception_texts(page)
    print(f"{path}: {'OK' if not errors else errors}")
    return len(errors)


def _lesson(page, out: Path) -> int:
    """Every step of the Lesson, from step 1 by its Next button: lesson_step_01.png ..."""
    open_page(page, "Lesson")
    page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first.click()  # the stepper
    page.get_by_role("option", name="1 · Text becomes tokens").click()
    settle(page)
    problems = 0
    for step in walk(page):
        page.wait_for_function(f"() => new URLSearchParams(location.search).get('step') === '{step}'",
                               timeout=60_000)  # the step's run has finished
        settle(page)
        problems += _shoot(page, out / f"lesson_step_{step:02d}.png")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt", default="The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=2200, help="Streamlit scrolls inside the page: a tall window shows more")
    parser.add_argument("--only-lesson", action="store_true", help="only the lesson's steps, not every page")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    problems = 0
    with running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(url, timeout=180_000)
        settle(page, timeout=300)
        type_prompt(page, args.prompt)
        for title in [] if args.only_lesson else nav_titles(page):
            open_page(page, title)
            problems += _shoot(page, out / f"{slug(title)}.png")
        problems += _lesson(page, out)
        browser.close()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
