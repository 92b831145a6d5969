"""State a user sees in the browser (issue 14, items 1 and 5): the address bar follows a temperature
moved inside the Next-token fragment, and typing "L23 H" + Enter on Ablation switches off one head,
whose chip stays readable."""
from __future__ import annotations

import pytest

from xray_app import exception_texts, open_tab, settle

pytestmark = pytest.mark.e2e
CHIPS = '[data-testid="stMultiSelect"] .react-aria-ComboBox [data-tag]'  # the visible chips (a hidden template copies them)


TEMPERATURE = '.xr-temperature input[type="range"]'  # the Next-token bars' own slider (drawn in the browser)


def test_copied_link_keeps_the_temperature(app):
    url, browser = app
    page = open_tab(browser, f"{url}/next_token")
    page.locator(TEMPERATURE).focus()
    for _ in range(10):  # 1.00 -> 0.50 in steps of 0.05: the browser redraws, then reports the value
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => new URLSearchParams(location.search).get('temperature') === '0.5'", timeout=30_000)
    settle(page)
    assert float(page.locator(TEMPERATURE).input_value()) == 0.5
    copied = open_tab(browser, page.url)  # the link, opened in a fresh session
    assert float(copied.locator(TEMPERATURE).input_value()) == 0.5
    assert not exception_texts(page) and not exception_texts(copied)


def test_typing_a_layer_then_enter_switches_off_one_head(app):
    url, browser = app
    page = open_tab(browser, f"{url}/ablation")
    box = page.locator('[data-testid="stMultiSelect"] input').first
    for typed in ["L23 H", "L23 H1", "L5 H", "L6 H", "L7 H", "L8 H", "L9 H", "L10 H", "L11 H"]:
        box.click()
        box.fill(typed)
        page.keyboard.press("Enter")
        settle(page)
    chips = page.locator(CHIPS)
    names = [chips.nth(i).inner_text().strip() for i in range(chips.count())]
    assert names[:2] == ["L23 H0", "L23 H1"] and len(names) == 9  # one head per Enter, never "Select N matches"
    widget = page.locator('[data-testid="stMultiSelect"]').first.bounding_box()
    for i in range(chips.count()):  # every chip lies inside the widget: none scrolled out of sight
        chip = chips.nth(i).bounding_box()
        assert widget["x"] <= chip["x"] and chip["x"] + chip["width"] <= widget["x"] + widget["width"] + 1
    assert not exception_texts(page)


def test_typing_a_neuron_then_enter_switches_off_that_neuron_only(app):
    """"N173" + Enter picked every neuron whose name holds 173 (N1073, N1173, ...): six at once."""
    url, browser = app
    page = open_tab(browser, f"{url}/mlp")
    box = page.locator('[data-testid="stMultiSelect"] input').first
    box.click()
    box.fill("N173")
    page.keyboard.press("Enter")
    settle(page)
    chips = page.locator(CHIPS)
    assert [chips.nth(i).inner_text().strip() for i in range(chips.count())] == ["N173"]
    assert not exception_texts(page)


def test_a_query_token_chosen_in_a_fragment_reaches_the_link(app):
    """Attention's "From one token" redraws alone (a fragment), so the shell did not write the link: a
    copied URL opened on the last token instead of the chosen one."""
    url, browser = app
    page = open_tab(browser, f"{url}/attention")
    page.get_by_role("tab", name="From one token").click()
    settle(page)
    box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(
        has=page.locator('input[role="combobox"][aria-label="Query token"]')).first
    box.click()
    page.locator('[role="listbox"] [role="option"]').filter(has_text="(1)").first.click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('position') === '1'", timeout=30_000)
    settle(page)
    assert not exception_texts(page)
