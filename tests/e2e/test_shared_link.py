"""A shared link opened as the first visit after a server start: Streamlit would run the page file
bare (its old pages/ mode) and skip app.py; the app must still show its navigation and the link's
prompt and settings."""
from __future__ import annotations

import pytest

from xray_app import CHROMIUM, FLAGS, PROMPT_BOX, exception_texts, nav_titles, open_page, open_tab, running_app, settle

pytestmark = pytest.mark.e2e


def test_first_visit_through_a_deep_link():
    from playwright.sync_api import sync_playwright

    with running_app() as url, sync_playwright() as pw:  # a fresh server: this is its first session
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/generate?prompt=Rome+is+the+capital+of&temperature=0.7", timeout=180_000)
        settle(page, timeout=180)
        assert nav_titles(page)[:3] == ["Lesson", "Start here", "Embeddings"]  # app.py's navigation, not pages/ files
        assert page.locator("h1").first.inner_text().startswith("Generate")
        assert page.locator(PROMPT_BOX).first.input_value() == "Rome is the capital of"
        # greedy uses no temperature: Generate's slider shows once sampling is chosen
        page.get_by_test_id("stRadioGroup").get_by_text("Sampled", exact=True).click()
        settle(page)
        assert "0.70" in page.locator('[data-testid="stSlider"]').first.inner_text()
        assert not exception_texts(page)
        browser.close()


def test_layer_and_head_carry_across_pages(app):
    """A head chosen on Attention (here through the link) is the one Attention step by step opens."""
    url, browser = app
    page = open_tab(browser, f"{url}/attention?layer=5&head=2")
    open_page(page, "Attention step by step")
    layer_slider = page.locator('[data-testid="stSlider"]').first.inner_text().split()
    assert layer_slider[:2] == ["Block", "5"]
    assert "layer=5" in page.url and "head=2" in page.url
    assert not exception_texts(page)
    page.close()
