"""Screenshots of issue 10's views (the MLP page, per-head attribution and contrast mode on the
indirect-object prompt) into a folder: `.venv/bin/python tools/shots_mlp.py --out /tmp/shots`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from xray_app import CHROMIUM, FLAGS, draw_every_chart, exception_texts, open_page, running_app, settle, type_prompt  # noqa: E402

IOI = "When Mary and John went to the store, John gave a drink to"


def choose(page, label: str, option: str) -> None:
    """Pick an option of the Streamlit selectbox with this label (typing filters the list)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.keyboard.type(option)  # long lists render only the options in view
    page.get_by_role("option").filter(has_text=option).first.click()
    settle(page)


def switch_off(page, label: str, option: str) -> None:
    """Type an option into the Streamlit multiselect with this label and pick it."""
    page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first.click()
    page.keyboard.type(option)
    page.get_by_role("option").filter(has_text=option).first.click()
    page.keyboard.press("Escape")
    settle(page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="/tmp/shots_mlp")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    problems = 0
    with running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 5200})
        page.goto(url, timeout=180_000)
        settle(page, timeout=300)
        type_prompt(page, "The capital of France is")
        open_page(page, "MLP")
        choose(page, "Block", "29")
        switch_off(page, "switch off", "N1066")
        shots: dict[str, list[str]] = {}
        draw_every_chart(page)
        page.screenshot(path=str(out / "mlp_paris_block29.png"), full_page=True)
        problems += len(exception_texts(page))
        type_prompt(page, IOI)
        for title, name in (("Attribution", "attribution_mary_vs_john"), ("Logit lens", "logit_lens_mary_vs_john"),
                            ("Ablation", "ablation_mary_vs_john"), ("MLP", "mlp_mary_vs_john")):
            open_page(page, title)
            choose(page, "Position" if title != "Ablation" else "Predict the token after", "last")
            choose(page, "contrast", "John")
            if title == "Ablation":
                switch_off(page, "Heads to switch off", "L23 H3")
            draw_every_chart(page)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            shots[name] = exception_texts(page)
            problems += len(shots[name])
        open_page(page, "Attribution")  # a rival typed in, not among the offered top tokens
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="contrast").first
        box.click()
        page.keyboard.type("Rome")
        page.keyboard.press("Enter")
        settle(page)
        title = page.locator(".js-plotly-plot .gtitle").first.text_content() or ""
        print("typed rival:", title)
        problems += "logit(·Rome)" not in title
        print(out, shots)
        browser.close()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
