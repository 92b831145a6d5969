"""The whole app in a real browser: every page in the sidebar nav, a live temperature, and hostile
prompts that must stay literal text and never break a page. Pages are found from the nav, so new
pages are covered without editing this file."""
from __future__ import annotations

import re
import time

import pytest

from xray_app import (
    CHROMIUM,
    FLAGS,
    PROMPT_BOX,
    chart_count,
    exception_texts,
    nav_titles,
    open_page,
    running_app,
    settle,
    type_prompt,
)

pytestmark = pytest.mark.e2e
# Pages that draw only after the user acts (a button, a head choice); every other page must chart.
# Lesson opens on step 1 (tokens, no chart); Steering draws once its Generate button is pressed.
ACTION_FIRST = {"Start here", "Generate", "Ablation", "Lesson", "Steering"}
CHART_WAIT_S = 30.0
HOSTILE = {
    "script and markup": '<script>alert(1)</script> <img src=x onerror="alert(2)"> **x** $x$ $$\\frac{a}{b}$$ # h',
    "unicode mix": "👩‍👩‍👧 e\u0301 שלום مرحبا \u202eabc \x01\x1b[31m \u200b",
    "empty": "",
    "one character": "a",
    "100,000 characters": "a" * 100_000,
}


@pytest.fixture(scope="module")
def browser_page():
    """One server and one browser tab for the module; dialogs are recorded (and dismissed)."""
    from playwright.sync_api import sync_playwright

    with running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(url, timeout=180_000)
        settle(page, timeout=180)
        yield page
        browser.close()


def wait_for_chart(page, timeout: float = CHART_WAIT_S) -> int:
    deadline = time.monotonic() + timeout
    while chart_count(page) == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    return chart_count(page)


def tour(page, need_charts: bool) -> dict[str, tuple[int, float]]:
    """Visit every page in the nav; (charts, seconds) per page. Fails on an exception box."""
    seen = {}
    for title in nav_titles(page):
        start = time.monotonic()
        open_page(page, title)
        charts = wait_for_chart(page) if need_charts and title not in ACTION_FIRST else chart_count(page)
        errors = exception_texts(page)
        assert not errors, f"page '{title}' shows an exception:\n{errors[0]}"
        seen[title] = (charts, time.monotonic() - start)
    return seen


def most_likely(page) -> str:
    metric = page.locator(".xr-metric").filter(has_text="Most likely").first
    return metric.locator(".xr-metric-value").inner_text().strip()


def chip_text(page) -> str:
    """The token strip as a user reads it: chip texts without their position numbers."""
    return page.evaluate(
        "() => [...document.querySelectorAll('.xr-chip')]"
        ".map(c => c.firstChild ? c.firstChild.textContent : '').join('')"
    )


def test_every_page_and_live_temperature(browser_page):
    page, start = browser_page, time.monotonic()
    type_prompt(page, "The quick brown fox jumps over the lazy")
    assert chip_text(page) == "The·quick·brown·fox·jumps·over·the·lazy"
    seen = tour(page, need_charts=True)
    for title, (charts, seconds) in seen.items():
        print(f"  {title:<28} {charts:>2} charts  {seconds:5.1f} s")
    assert len(seen) >= 4, seen
    missing = [t for t, (charts, _) in seen.items() if t not in ACTION_FIRST and charts == 0]
    assert not missing, f"no chart on: {missing}"

    open_page(page, "Next token")
    before = most_likely(page)
    first_bar = page.locator(".xr-label").first.inner_text()
    slider = page.locator('.xr-temperature input[type="range"]').first
    slider.focus()
    slider.press("Home")  # temperature 0: greedy, all the mass on one token, drawn in the browser
    assert most_likely(page) == "100.0%" != before
    assert page.locator(".xr-label").first.inner_text() == first_bar  # the same token, now at 100%
    for _ in range(30):  # up to 1.5: a flatter distribution
        slider.press("ArrowRight")
    hot = most_likely(page)
    assert float(hot.rstrip("%")) < float(before.rstrip("%"))
    # On release the value travels to Python: the session, the shareable link and the page follow.
    page.wait_for_function("() => new URLSearchParams(location.search).get('temperature') === '1.5'",
                           timeout=30_000)
    settle(page)
    assert most_likely(page) == hot and not exception_texts(page)
    page.reload()  # the link now opens at T = 1.5
    settle(page, timeout=120)
    assert page.locator('.xr-temperature input[type="range"]').first.input_value() == "1.5"
    assert most_likely(page) == hot
    print(f"  top probability: T=1 {before}, T=0 100.0%, T=1.5 {hot}; whole test {time.monotonic() - start:.1f} s")
    assert not page.dialogs


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_prompt_on_every_page(browser_page, name):
    page, text, start = browser_page, HOSTILE[name], time.monotonic()
    open_page(page, "Start here")
    type_prompt(page, text)
    main = page.locator('[data-testid="stMain"]').inner_text()
    if name == "empty":
        assert "The prompt is empty" in main
    elif name == "100,000 characters":
        # the limit follows the machine's memory and the model's context: the message names both numbers
        assert re.search(r"The prompt is [\d,]+ tokens long; the limit is [\d,]+ tokens \(", main), main[:300]
    elif name == "script and markup":
        assert chip_text(page).replace("·", " ") == text  # literal, never rendered
    else:
        assert page.locator(".xr-chip").count() >= 1
    tour(page, need_charts=False)
    assert not page.dialogs, f"a dialog opened: {page.dialogs}"
    assert page.locator("script:text('alert(1)')").count() == 0
    print(f"  {name}: every page visited in {time.monotonic() - start:.1f} s")


def test_ordinary_prompt_works_after_hostile_ones(browser_page):
    page = browser_page
    open_page(page, "Start here")
    type_prompt(page, "The capital of France is")
    assert chip_text(page) == "The·capital·of·France·is"
    assert page.locator(PROMPT_BOX).first.input_value() == "The capital of France is"
    open_page(page, "Attention")
    assert wait_for_chart(page) >= 1 and not exception_texts(page)


def test_flow_graph_click_opens_the_head(browser_page):
    """Information flow on the indirect-object prompt: clicking a head edge's dot opens that head."""
    page = browser_page
    type_prompt(page, "When Mary and John went to the store, John gave a drink to")
    open_page(page, "Information flow")
    assert wait_for_chart(page) >= 1 and not exception_texts(page)
    x, y, block, head = page.evaluate(CLICK_TARGET_JS)
    page.mouse.click(x, y)
    page.wait_for_function("(b) => document.body.innerText.includes(b)", arg=f"Block {block} · head {head}",
                           timeout=60_000)
    settle(page)
    assert not exception_texts(page)
    assert page.locator(PROMPT_BOX).first.input_value().startswith("When Mary and John")  # prompt kept


def test_head_grid_click_opens_the_head(browser_page):
    """Attention: clicking a thumbnail of the overview opens that head below it."""
    page = browser_page
    open_page(page, "Attention")
    assert wait_for_chart(page) >= 1 and not exception_texts(page)
    x, y = page.evaluate(GRID_TARGET_JS, [3, 2])
    page.mouse.click(x, y)
    page.wait_for_function("() => document.body.innerText.includes('Block 3 · head 2')", timeout=60_000)
    settle(page)
    assert not exception_texts(page)


GRID_TARGET_JS = """([block, head]) => {
  const gd = document.querySelector('.js-plotly-plot');
  gd.scrollIntoView({block: 'center'});
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(block), box.top + ya._offset + ya.l2p(head)];
}"""


CLICK_TARGET_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const index = gd.data.findIndex(t => t.name === 'attention edges');
  const k = 0;  // the first dot: the last block's edge, drawn at the bottom (block 0 on top), least crowded
  const dot = gd.querySelectorAll('.scatterlayer .trace')[index].querySelectorAll('path.point')[k];
  dot.scrollIntoView({block: 'center'});
  const box = dot.getBoundingClientRect();
  return [box.left + box.width / 2, box.top + box.height / 2, ...gd.data[index].customdata[k]];
}"""


def test_patching_estimate_then_exact(browser_page):
    """The Patching page draws its estimate at once; Cancel stops an exact run; the button then runs
    it to the end."""
    page = browser_page
    open_page(page, "Patching")
    assert wait_for_chart(page) == 1 and not exception_texts(page)
    page.get_by_role("button", name="Run exact patching").click()
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("Exact patching was cancelled").wait_for(timeout=120_000)
    settle(page)
    assert chart_count(page) == 1 and not exception_texts(page)
    page.get_by_role("button", name="Run exact patching").click()
    page.get_by_text("Correlation, estimate vs exact").wait_for(timeout=300_000)
    settle(page)
    assert chart_count(page) == 3 and not exception_texts(page)  # exact, estimate, their agreement


def test_a_chart_out_of_sight_is_drawn_when_it_comes_into_sight(browser_page):
    """The charts on screen are drawn first; one further down waits until the person scrolls to it
    (its place is kept, so nothing jumps), then draws."""
    page = browser_page
    open_page(page, "MLP")
    settle(page)
    hosts = page.locator(".xray-chart").count()
    assert 1 <= page.locator(".xray-chart.js-plotly-plot").count() < hosts
    assert chart_count(page) >= hosts  # scrolls each into sight
    assert page.locator(".xray-chart.js-plotly-plot").count() == hosts and not exception_texts(page)


def test_mlp_page_draws_its_views(browser_page):
    """The MLP page in the browser: the stages, both neuron maps and one neuron over the prompt."""
    page = browser_page
    open_page(page, "Start here")
    type_prompt(page, "The capital of France is")
    open_page(page, "MLP")
    deadline = time.monotonic() + CHART_WAIT_S * 2
    while chart_count(page) < 4 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert chart_count(page) >= 4 and not exception_texts(page)
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "SwiGLU" in main and "the block's MLP bar" in main


def test_lens_cell_text_is_painted_and_hover_still_reaches_the_cells(browser_page):
    """Heatmap cell text comes from our chart element's canvas, not plotly's per-cell SVG text: the
    guesses must be on screen (painted pixels), and the hover must still answer through the canvas."""
    page = browser_page
    open_page(page, "Start here")
    type_prompt(page, "The capital of France is")
    open_page(page, "Logit lens")
    assert wait_for_chart(page) >= 1 and not exception_texts(page)
    lens = page.locator(".xray-chart.js-plotly-plot").first
    lens.locator("canvas.xray-cell-text").wait_for(state="attached", timeout=CHART_WAIT_S * 1000)
    painted = lens.evaluate("""(div) => {
        const c = div.querySelector('canvas.xray-cell-text');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < px.length; i += 4) n += px[i] > 0;
        return n; }""")
    assert painted > 500  # 31 rows x 6 columns of guesses, a few dozen pixels each
    assert lens.locator("g.heatmap-label").count() == 0  # plotly no longer draws them one by one
    box = lens.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.95)
    page.wait_for_timeout(300)
    assert "top:" in (lens.locator(".hoverlayer").text_content() or "")
