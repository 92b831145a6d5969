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
from xray_app import CHROMIUM, FLAGS, exception_texts, nav_titles, open_page, running_app, settle, type_prompt  # noqa: E402


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt", default="The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=2200, help="Streamlit scrolls inside the page: a tall window shows more")
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
        for title in nav_titles(page):
            open_page(page, title)
            path = out / f"{slug(title)}.png"
            page.screenshot(path=str(path), full_page=True)
            errors = exception_texts(page)
            problems += len(errors)
            print(f"{path}: {'OK' if not errors else errors}")
        browser.close()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
