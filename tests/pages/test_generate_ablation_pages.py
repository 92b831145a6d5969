"""The Generate and Ablation pages: generation keeps its steps and walks back through them; switching
heads off changes the bars and is cached; the block scan's A − B change is each head's own; mean and
resample ablation at chosen positions."""
from __future__ import annotations

import json

import pytest
from apptest_session import link_of
from page_charts import chart_json, charts, figures, values

import model.analyses.ablation
from model.analyses.ablation import Ablation, ablated_logits
from pages import kit

IOI = "When Mary and John went to the store, John gave a drink to"


def test_generate_greedy_then_walk_back(open_page):
    at = open_page("pages/generate.py")
    assert at.info  # nothing generated yet
    at.number_input(key="gen_steps").set_value(4)
    at.button[0].click().run()  # the form's Generate button
    assert not at.exception
    table = at.dataframe[0].value
    assert table["token"].iloc[0] == "·Paris"
    assert "The capital of France is Paris" in at.code[0].value
    assert at.slider(key="gen_step").value == 4
    at.slider(key="gen_step").set_value(1).run()
    assert not at.exception
    assert at.dataframe[0].value["token"].iloc[0] == "·Paris"  # step 1's alternatives
    assert len(charts(at)) == 3  # history, the step's bars, the step's attention


def _step_row(at) -> dict:
    """The step's attention row: the bars' trace of the chart titled 'What ... reads in block ...'."""
    (row,) = [f for f in figures(at) if "reads in block" in f["layout"].get("title", {}).get("text", "")]
    return row["data"][0]


def test_generate_on_a_long_prompt_shows_the_row_the_step_chose_from(open_page, default_lm, monkeypatch):
    """Past 256 tokens a step's attention is the last token's row (every key), not a T x T heatmap, read
    without capturing the step's context (1 GB and 10 s at 3,500 tokens); walking back to a step keeps
    it that step's row."""
    text = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 20)
    at = open_page("pages/generate.py", prompt=text)
    n = len(default_lm.encode(text))
    monkeypatch.setattr(kit, "capture_ids", lambda *a: pytest.fail("a step's context was captured"))
    at.number_input(key="gen_steps").set_value(2)
    at.button[0].click().run()
    assert not at.exception and n > 256
    bars = _step_row(at)
    assert len(bars["x"]) == n + 1  # the context step 2 chose from: the prompt and step 1's token
    assert abs(values(bars["y"]).sum() - 1) < 1e-4  # the weights of one softmax row
    assert any(f"{n + 1:,} tokens: too many to draw" in c.value for c in at.caption)
    assert not any(trace["type"] == "heatmap" for fig in figures(at) for trace in fig["data"])
    at.slider(key="gen_step").set_value(1).run()
    assert len(_step_row(at)["x"]) == n


def test_generate_sampled_repeats_with_seed(open_page):
    texts = []
    for _ in range(2):
        at = open_page("pages/generate.py")
        at.number_input(key="gen_steps").set_value(2)
        at.radio(key="gen_mode").set_value("Sampled").run()  # the mode sits outside the form: it redraws it
        at.number_input(key="gen_seed").set_value(11)
        at.button[0].click().run()
        assert not at.exception
        texts.append(at.code[0].value)
        assert any("2 steps, sampled at T = 1.00, top-k off, top-p off, seed 11" in c.value for c in at.caption)
    assert texts[0] == texts[1] and texts[0].startswith("The capital of France is")


def _generate(at, **numbers):
    """Set the form's numbers (steps, seed...) and press Generate."""
    for key, value in numbers.items():
        at.number_input(key=f"gen_{key}").set_value(value)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at



def test_a_copied_link_shows_the_same_run_on_the_same_step(open_page):
    """A sampled run's settings and the step walked back to ride in the link; a fresh session from it
    generates the same text at once and opens on that step; a bad value is named and the rest kept."""
    at = open_page("pages/generate.py")
    at.radio(key="gen_mode").set_value("Sampled").run()
    at.slider(key="gen_temperature").set_value(1.5)
    at.number_input(key="gen_top_k").set_value(40)
    at.number_input(key="gen_top_p").set_value(0.9)
    _generate(at, steps=6, seed=7)
    at.slider(key="gen_step").set_value(3).run()
    link = link_of(at)
    assert {k: link[k] for k in link if k.startswith("g_")} == {
        "g_mode": "sampled", "g_steps": "6", "g_step": "3", "g_t": "1.5", "g_k": "40", "g_p": "0.9", "g_seed": "7"}
    text, caption = at.code[0].value, "6 steps, sampled at T = 1.50, top-k 40, top-p 0.9, seed 7"
    again = open_page("pages/generate.py", **link)
    assert not again.exception and again.code[0].value == text
    assert again.slider(key="gen_step").value == 3 and any(caption in c.value for c in again.caption)
    bad = open_page("pages/generate.py", **{**link, "g_t": "9"})
    assert any("Ignored g_t '9'" in w.value for w in bad.warning)
    assert any("6 steps, sampled at T = " in c.value and "seed 7" in c.value for c in bad.caption)


def test_the_step_survives_a_page_switch(open_page):
    at = _generate(open_page("pages/generate.py"), steps=4)
    at.slider(key="gen_step").set_value(2).run()
    at.switch_page("pages/next_token.py").run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception and at.slider(key="gen_step").value == 2


def test_a_draw_far_down_is_named_drawn_and_listed(open_page, default_lm):
    """A sampled token outside the top 12 bars: the caption names it with its rank, it has the orange bar
    (after the 12), and the alternatives table lists it ticked."""
    from model.analyses.sampling import rank_of

    at = open_page("pages/generate.py")
    at.radio(key="gen_mode").set_value("Sampled").run()
    at.slider(key="gen_temperature").set_value(2.0)
    _generate(at, steps=8, seed=0)
    run = at.session_state["gen_run"]
    far = next(s for s in run.steps if rank_of(s.logits, s.token_id) > 12)
    at.slider(key="gen_step").set_value(far.index + 1).run()
    rank = rank_of(far.logits, far.token_id)
    assert any(f"chose {far.token} (the orange bar; rank {rank:,})" in c.value.replace("\\", "") for c in at.caption)
    bars = next(f for f in figures(at) if f["data"][0].get("orientation") == "h")["data"][0]
    assert len(bars["y"]) == 14 and bars["y"][12].endswith(f"(#{rank:,})")
    assert bars["marker"]["color"][12] == "#e8890c"
    table = next(d.value for d in at.dataframe if "chosen" in d.value)
    assert table["chosen"].iloc[-1] and table["rank"].iloc[-1] == rank and table["token"].iloc[-1] == far.token


def test_the_token_limit_cut_is_said_and_a_long_prompt_keeps_the_continuation_in_view(open_page, default_lm):
    prompt = "The capital of France is"
    at = open_page("pages/generate.py")
    at.number_input(key="token_limit").set_value(len(default_lm.encode(prompt)) + 2).run()
    _generate(at, steps=12)
    assert any("Stopped after 2 of the 12 steps: the text reached the token limit" in c.value for c in at.caption)
    long = " ".join(["The clock in the square struck noon and the baker opened his shop."] * 8)
    at = _generate(open_page("pages/generate.py", prompt=long), steps=3)
    shown = at.code[0].value
    assert shown.startswith("…" + long[-kit.PROMPT_SHOWN:]) and len(shown) < kit.PROMPT_SHOWN + 200
    assert any(f"last {kit.PROMPT_SHOWN} of its {len(long):,} characters" in c.value for c in at.caption)


def test_ablation_changes_bars_and_is_cached(monkeypatch, open_page):
    calls = []
    real = model.analyses.ablation.ablated_logits
    monkeypatch.setattr(model.analyses.ablation, "ablated_logits", lambda *a: calls.append(a[2]) or real(*a))
    at = open_page("pages/ablation.py")
    assert at.info  # no heads chosen yet
    at.multiselect(key="abl_heads").set_value([(0, h) for h in range(9)]).run()
    assert not at.exception
    kl = at.metric[0].value
    assert kl.endswith("bits") and float(kl.split()[0]) > 0
    assert len(charts(at)) == 1 and len(at.dataframe[0].value) == 10
    at.selectbox(key="position").set_value(2).run()  # another position: same ablated pass, no new run
    assert not at.exception
    at.selectbox(key="position").set_value(4).run()
    assert float(at.metric[0].value.split()[0]) == float(kl.split()[0])
    assert len(calls) == 1  # one ablated pass for three views


def test_layer_scan_draws_one_bar_per_head(open_page):
    at = open_page("pages/ablation.py")
    at.selectbox(key="abl_scan_layer").set_value(29)
    at.button(key="abl_scan").click().run()
    assert not at.exception
    drawn = charts(at)
    assert len(drawn) == 1 and "L29 H8" in chart_json(drawn[0])
    spec = json.loads(chart_json(drawn[0]))
    assert len(spec["data"]) == 2  # KL above, the change of logit(A) below (no B chosen)
    assert spec["layout"]["annotations"][1]["text"] == "change of logit(·Paris)"
    table = at.dataframe[0].value
    assert list(table["head"]) == [f"L29 H{h}" for h in range(9)] and "change of logit(·Paris)" in table.columns


def test_scan_reports_a_minus_b_as_the_heads_own_ablated_logits_give_it(open_page, default_lm):
    """The scan's change of logit(·Mary) − logit(·John) for each head of block 23 equals the change
    read straight from that head's ablated logits on the default model."""
    at = open_page("pages/ablation.py", prompt=IOI)
    box = at.selectbox(key="contrast_token")
    box.select_index(next(i for i, label in enumerate(box.options) if label.startswith("·John"))).run()
    assert any(c.value.startswith("Runs the model 9 times (about ") and " s here" in c.value for c in at.caption)
    at.selectbox(key="abl_scan_layer").set_value(23)
    at.button(key="abl_scan").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    column = "change of logit(·Mary) − logit(·John)"
    ids = default_lm.encode(IOI)
    mary, john = (default_lm.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in (" Mary", " John"))
    clean = default_lm.capture(IOI).logits[-1]
    for h in range(9):
        row = ablated_logits(default_lm, ids, [(23, h)]).logits.rows[-1]  # (V,)
        direct = float(row[mary] - row[john]) - float(clean[mary] - clean[john])
        assert table[column].iloc[h] == pytest.approx(direct, abs=1e-3)
    assert table[column].iloc[3] == table[column].min() < -1  # L23 H3 separates Mary from John most


def test_mean_and_resample_at_chosen_positions(open_page, default_lm):
    """Mean ablation at chosen positions draws its own bars; resampling needs a prompt of the same
    token count (else the page says why) and resampling the prompt from itself changes nothing."""
    at = open_page("pages/ablation.py", prompt=IOI)
    at.multiselect(key="abl_heads").set_value([(23, 3), (21, 2)]).run()
    zero_kl = float(at.metric[0].value.split()[0])
    at.radio(key="abl_how").set_value("mean").run()
    at.radio(key="abl_where").set_value("chosen").run()
    assert not at.exception and any("Choose one or more positions" in i.value for i in at.info)
    at.multiselect(key="abl_positions").set_value([13]).run()
    assert not at.exception
    assert "13)" in at.multiselect(key="abl_positions").format_func(13)  # the token, then its index
    mean_kl = float(at.metric[0].value.split()[0])
    assert mean_kl > 0 and mean_kl != zero_kl
    assert "chosen heads at their mean at chosen positions" in chart_json(charts(at)[0])
    ids = default_lm.encode(IOI)
    direct = ablated_logits(default_lm, ids, [(21, 2), (23, 3)], Ablation("mean", (13,))).logits.rows[-1]
    shown = next(m for m in at.metric if m.label.startswith("logit("))
    assert float(shown.value) == pytest.approx(float(direct.max()), abs=2e-3)  # A is the top token

    at.radio(key="abl_how").set_value("resample").run()
    assert any("Type a prompt of 14 tokens" in w.value for w in at.warning)
    at.text_input(key="abl_source").set_value("When Mary went to the store, John gave a drink to").run()
    assert any("same number of tokens" in w.value for w in at.warning) and not at.exception
    at.text_input(key="abl_source").set_value(IOI).run()
    assert not at.exception and at.metric[0].value == "0.000 bits" and at.metric[2].value == "no"
    at.text_input(key="abl_source").set_value("When Tom and James went to the store, James gave a drink to").run()
    assert not at.exception and float(at.metric[0].value.split()[0]) > 0
