"""The Input saliency page on the default model, acted on in sequence as a person would: a method,
then another, then a prompt edit after those choices (the target and every number follow the new
prompt); the method and steps ride in the link; a bad link value and a long position get a message."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from page_charts import figures
from streamlit.testing.v1 import AppTest

IOI = "When Mary and John went to the store, John gave a drink to"


def _run_if_asked(at: AppTest) -> None:
    """Press the run button when the page asked for it (a reading it expects to take a while)."""
    if any(b.key == "sal_run" for b in at.button):
        at.button(key="sal_run").click().run()
    assert not at.exception, [e.value for e in at.exception]


def _chips(at: AppTest) -> str:
    return next(h.proto.body for h in at.get("html") if "xr-sal" in h.proto.body)


def _bars(at: AppTest) -> dict:
    return next(f for f in figures(at) if "share of" in f["layout"]["title"]["text"])


def _metric(at: AppTest, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label))


def _logits(lm, prompt: str) -> torch.Tensor:
    ids = lm.tokenizer(prompt, add_special_tokens=True, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return lm.model(ids).logits[0, -1].double()


def test_methods_in_sequence_then_a_new_prompt(open_page, default_lm):
    tokens = lambda *ws: [default_lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ws]  # noqa: E731
    mary, john, paris = tokens(" Mary", " John", " Paris")
    at = open_page("pages/saliency.py", prompt=IOI)
    assert not at.exception
    assert at.selectbox(key="attr_token").value == mary
    at.selectbox(key="contrast_token").set_value(john).run()
    assert "·to<sub>13</sub>" in _chips(at)
    logits = _logits(default_lm, IOI)
    shown = _metric(at, "logit(·Mary) − logit(·John)")  # to 2 decimals
    assert shown == pytest.approx(float(logits[mary] - logits[john]), abs=0.006)
    assert "Gradient × input" in _bars(at)["layout"]["title"]["text"]

    at.radio(key="sal_method").set_value("integrated").run()
    _run_if_asked(at)
    assert at.selectbox(key="sal_steps").value == 64
    delta = next(m for m in at.metric if m.label.startswith("Convergence delta"))
    assert delta.label == "Convergence delta (64 steps)"
    change = _metric(at, "Change along the path")
    assert abs(float(delta.value)) < 0.1 * abs(change)
    assert at.query_params["method"] in ("integrated", ["integrated"])

    at.radio(key="sal_method").set_value("remove").run()
    _run_if_asked(at)
    without_mary = IOI.replace(" Mary", "", 1)  # the prompt with token 1 (·Mary) removed
    reference = _logits(default_lm, without_mary)
    expected = float(logits[mary] - logits[john]) - float(reference[mary] - reference[john])
    assert _bar_values(at)[1] == pytest.approx(expected, abs=1e-3)

    at.sidebar.text_area(key="prompt").set_value("The capital of France is").run()
    _run_if_asked(at)
    assert at.selectbox(key="attr_token").value == paris  # the new prompt's top token, not ·Mary
    assert at.selectbox(key="contrast_token").value == -1  # ·John is not offered here: no rival left
    assert at.radio(key="sal_method").value == "remove"  # the method stays chosen
    chips = _chips(at)
    assert "France" in chips and "Mary" not in chips
    new = _logits(default_lm, "The capital of France is")
    assert _metric(at, "logit(·Paris)") == pytest.approx(float(new[paris]), abs=0.006)
    assert len(_bar_values(at)) == 5


def _bar_values(at: AppTest) -> np.ndarray:
    """The bars' values, from a plain list or plotly's typed-array form."""
    import base64

    y = _bars(at)["data"][0]["y"]
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).astype(float)
    return np.asarray(y, dtype=float)


def test_the_link_carries_method_and_steps(open_page):
    at = open_page("pages/saliency.py", method="integrated", steps="16")
    assert not at.exception
    _run_if_asked(at)
    assert at.radio(key="sal_method").value == "integrated" and at.selectbox(key="sal_steps").value == 16
    assert any(m.label == "Convergence delta (16 steps)" for m in at.metric)


def test_bad_link_values_get_a_message(open_page):
    at = open_page("pages/saliency.py", method="magic", steps="7")
    assert not at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "Ignored method 'magic'" in notes and "Ignored steps '7'" in notes
    assert at.radio(key="sal_method").value == "gradient"


def test_a_long_prompt_says_the_cost_first_and_refuses_past_the_cap(open_page, monkeypatch):
    from model.core.settings import settings

    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "1024")
    settings.cache_clear()
    text = " ".join(["The spy was a mole inside the agency. In the garden, a mole dug a tunnel."] * 30)
    at = open_page("pages/saliency.py", prompt=text, method="integrated")
    assert not at.exception
    cost = next(c.value for c in at.caption if c.value.startswith("Reads the"))
    assert "64 steps ×" in cost and "Up to 512 tokens" in cost
    assert any("reads at most 512 tokens" in w.value and "earlier position" in w.value for w in at.warning)
    assert not figures(at)  # nothing ran
    at.selectbox(key="position").set_value(20).run()
    _run_if_asked(at)
    assert any(m.label == "Convergence delta (64 steps)" for m in at.metric)
    assert len(_bar_values(at)) == 21


def test_a_long_reading_shows_a_window_of_chips_that_follows_the_prediction(open_page):
    """Past 256 tokens the chips come a window at a time, ending at the prediction; moved back to the
    start, then another position chosen: the window goes to the new prediction; a short reading again
    shows every chip and no slider."""
    text = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 24)
    at = open_page("pages/saliency.py", prompt=text)
    _run_if_asked(at)
    n = at.session_state["position"] + 1  # the last position
    assert n > 300 and at.slider(key="sal_chips_from").value == n - 256
    assert any(f"{n:,} tokens up to the prediction" in c.value for c in at.caption)
    assert f"<sub>{n - 1}</sub>" in _chips(at) and "<sub>0</sub>" not in _chips(at)
    assert len(_bar_values(at)) == n  # the bars show every token

    at.slider(key="sal_chips_from").set_value(0).run()
    assert "<sub>0</sub>" in _chips(at) and f"<sub>{n - 1}</sub>" not in _chips(at)

    at.selectbox(key="position").set_value(280).run()
    _run_if_asked(at)
    assert at.slider(key="sal_chips_from").value == 281 - 256
    assert "<sub>280</sub>" in _chips(at) and 'class="xr-target"' in _chips(at)

    at.selectbox(key="position").set_value(100).run()
    _run_if_asked(at)
    assert not any(s.key == "sal_chips_from" for s in at.slider)
    assert "<sub>0</sub>" in _chips(at) and "<sub>100</sub>" in _chips(at)


def test_a_rate_learned_at_another_length_does_not_price_this_one(open_page):
    """The wait said up front: at the rate the method last ran at here when that was at a like length
    (within 2x), else at this prompt's capture rate (a rate learned on 10 tokens priced 3,500 six times
    too high)."""
    from pages.saliency import RATES

    text = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 24)
    at = open_page("pages/saliency.py", prompt=text)
    _run_if_asked(at)
    n = at.session_state["position"] + 1
    ((model, method),) = at.session_state[RATES]
    cost = lambda: next(c.value for c in at.caption if c.value.startswith("Reads the"))  # noqa: E731

    at.session_state[RATES] = {(model, method): (1.0, n // 2 + 1)}  # 1 s a unit, learned at about this length
    at.run()
    assert f"about {3 * n} s here" in cost() and any(b.key == "sal_run" for b in at.button)
    at.session_state[RATES] = {(model, method): (1.0, 64)}  # the same rate, learned on a short prompt
    at.run()
    assert f"about {3 * n} s here" not in cost()


def test_a_short_reading_is_priced_at_its_own_rate(open_page):
    """A rate learned on a short prompt prices that prompt's next reading at what it took: 10 s for 64
    steps there, so 128 steps are about twice that, and wait for their button."""
    from model.analyses.saliency import work
    from pages.saliency import RATES

    at = open_page("pages/saliency.py", prompt=IOI, method="integrated", steps="64")
    _run_if_asked(at)
    n = at.session_state["position"] + 1
    ((model, method),) = at.session_state[RATES]
    at.session_state[RATES] = {(model, method): (10.0 / work("integrated", n, 64), n)}
    at.selectbox(key="sal_steps").set_value(128).run()
    expected = round(10.0 * work("integrated", n, 128) / work("integrated", n, 64))
    assert any(c.value.endswith(f"about {expected} s here. Up to 512 tokens; the cost grows with the square of "
                                "the length.") for c in at.caption)
    assert any(b.key == "sal_run" for b in at.button)


def test_a_long_reading_then_a_short_prompt_then_a_long_one(open_page):
    """The chips window moved on a long reading, then a short prompt: every chip, no slider; then a long
    prompt again: the window ends at its new prediction, never the old start."""
    long_text = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 24)
    at = open_page("pages/saliency.py", prompt=long_text)
    _run_if_asked(at)
    at.slider(key="sal_chips_from").set_value(3).run()
    at.sidebar.text_area(key="prompt").set_value(IOI).run()
    _run_if_asked(at)
    assert not any(s.key == "sal_chips_from" for s in at.slider) and "<sub>0</sub>" in _chips(at)
    at.sidebar.text_area(key="prompt").set_value(" ".join(["A ship sailed past the old lighthouse at dawn."] * 30)).run()
    _run_if_asked(at)
    n = at.session_state["position"] + 1
    assert n > 256 and at.slider(key="sal_chips_from").value == n - 256
    assert f"<sub>{n - 1}</sub>" in _chips(at) and "<sub>3</sub>" not in _chips(at)


def test_integrated_gradient_steps_leave_other_readings_kept(open_page):
    """Occlusion does not read the steps: changing them for integrated gradients kept its result (it
    was computed again, or on a longer prompt waited for its button again)."""
    from pages.kit.results import result_cache

    at = open_page("pages/saliency.py", prompt=IOI)
    at.radio(key="sal_method").set_value("remove").run()
    _run_if_asked(at)
    bars = _bar_values(at)
    at.radio(key="sal_method").set_value("integrated").run()
    _run_if_asked(at)
    at.selectbox(key="sal_steps").set_value(8).run()
    _run_if_asked(at)
    computed = result_cache().computed
    at.radio(key="sal_method").set_value("remove").run()
    assert not at.exception
    assert result_cache().computed == computed  # read back, not run again
    assert list(_bar_values(at)) == list(bars)
