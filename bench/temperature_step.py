"""One temperature step -> new numbers on screen, in headless Chromium against `streamlit run app.py`
on this machine (browser and server share the cores). Prints the median of the steps.

The clock runs inside the page: from the arrow key's keydown to the animation frame after the first
one whose metric texts (Entropy, Most likely, All other tokens) differ from before the key, i.e.
until the frame with the new numbers has been painted. Between steps the
page settles, so each step starts from a quiet app. bench/felt.py can call temperature_step_ms().

    .venv/bin/python bench/temperature_step.py [--steps 12] [--prompt "The capital of France is"]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from xray_app import CHROMIUM, FLAGS, running_app, settle, type_prompt  # noqa: E402

# The temperature slider: the browser-side bars' own (pages/temperature_bars) or a Streamlit slider.
SLIDER = ".xr-temperature input[type=range], .st-key-temperature input[type=range]"

_ARM_JS = """() => {
  const roots = [document];
  for (const el of document.querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  const read = () => roots.map(r => [...r.querySelectorAll(
      '[data-testid="stMetricValue"], .xr-metric-value')].map(e => e.textContent).join('|')).join('|');
  const probe = { before: read(), t0: null, ms: null };
  window.__xrStep = probe;
  window.addEventListener('keydown', (e) => {
    probe.t0 = e.timeStamp;
    const poll = () => {  // the frame that shows the change is painted before the next frame starts
      if (read() !== probe.before) requestAnimationFrame(() => { probe.ms = performance.now() - probe.t0; });
      else if (performance.now() - probe.t0 < 10000) requestAnimationFrame(poll);
    };
    requestAnimationFrame(poll);
  }, { capture: true, once: true });
  return probe.before;
}"""


def temperature_step_ms(page, steps: int = 12, timeout_s: float = 10.0) -> list[float]:
    """Milliseconds from each arrow key on the temperature slider to new numbers on screen; the page
    must show the Next-token page. Steps go up, then back down, around the current temperature."""
    slider = page.locator(SLIDER).first
    keys = ["ArrowRight"] * (steps - steps // 2) + ["ArrowLeft"] * (steps // 2)
    times = []
    for key in keys:
        page.evaluate(_ARM_JS)
        slider.focus()
        slider.press(key)
        page.wait_for_function("() => window.__xrStep.ms !== null", timeout=timeout_s * 1000)
        times.append(page.evaluate("() => window.__xrStep.ms"))
        time.sleep(0.5)  # the released value travels to the server; let that rerun finish
        settle(page)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--prompt", default="The capital of France is")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/next_token", timeout=180_000)
        settle(page, timeout=180)
        type_prompt(page, args.prompt)
        page.wait_for_selector(SLIDER, timeout=60_000)
        times = temperature_step_ms(page, args.steps)
        browser.close()
    print(f"temperature step -> new numbers on screen: median {statistics.median(times):.0f} ms, "
          f"min {min(times):.0f}, max {max(times):.0f} ms over {len(times)} steps")
    print("  steps (ms): " + " ".join(f"{t:.0f}" for t in times))


if __name__ == "__main__":
    main()
