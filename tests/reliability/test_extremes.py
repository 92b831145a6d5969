"""Extreme sampling settings through the Next-token page and the sampling math, malformed shared
links, and operator settings a page must not be able to change."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses.sampling import entropy_bits, probabilities

from apptest_helpers import ask_for_model, run_app, shown_text, sidebar_errors, vectors_metric
from test_hostile_prompts import chip_texts


@pytest.fixture(scope="module")
def next_token_page():
    at = run_app()
    at.switch_page("pages/next_token.py").run()
    assert not at.exception
    return at


@pytest.mark.slow  # the real app and model through AppTest
@pytest.mark.parametrize(
    "settings, top",
    [
        ({"temperature": 0.0}, "100.0%"),  # greedy
        ({"temperature": 0.05}, None),  # the slider's tiniest step
        ({"temperature": 2.0}, None),  # its hottest
        ({"nt_top_k": 49152 * 4}, None),  # k far above the vocabulary keeps everything
        ({"nt_top_k": 1}, "100.0%"),
        ({"nt_top_p": 0.0}, "100.0%"),  # p = 0 keeps the single top token
        ({"nt_top_p": 1.0}, None),
    ],
)
def test_sampling_extremes_on_the_page(next_token_page, settings, top):
    from pages.kit import captures

    at, computed = next_token_page, captures.capture_cache().computed
    defaults = {"temperature": 1.0, "nt_top_k": 0, "nt_top_p": 1.0}
    for key, value in {**defaults, **settings}.items():
        if key == "temperature":  # the browser-side bars report it into the session on release
            at.session_state[key] = value
        else:
            (at.slider(key=key) if key != "nt_top_k" else at.number_input(key=key)).set_value(value)
    at.run()
    assert not at.exception
    shown = f"{at.dataframe[0].value['probability'][0]:.1%}"  # the most likely token's row in the table
    assert shown.endswith("%") and 0 < float(shown[:-1]) <= 100
    if top:
        assert shown == top
    assert captures.capture_cache().computed == computed  # settings never re-run the model


@pytest.mark.parametrize("t", [0.0, 1e-12, 1e-6, 1e3, 1e300])
@pytest.mark.parametrize("k", [None, 0, 1, 10**9])
@pytest.mark.parametrize("p", [None, 0.0, 1e-9, 1.0])
def test_sampling_math_extremes(t, k, p):
    logits = np.random.default_rng(0).normal(size=1000) * 30  # (V,)
    logits[7] = logits.max() + 1e-9  # a near-tie at the top
    probs = probabilities(logits, t, k, p)
    assert np.all(np.isfinite(probs)) and np.all(probs >= 0)
    assert probs.sum() == pytest.approx(1.0)
    assert 0 <= entropy_bits(probs) <= np.log2(logits.size) + 1e-9


@pytest.mark.parametrize("bad", [{"temperature": float("nan")}, {"temperature": -1}, {"temperature": float("inf")},
                                 {"top_k": -1}, {"top_p": 1.5}, {"top_p": -0.1}, {"top_p": float("nan")}])
def test_sampling_refuses_invalid_values(bad):
    args = {"temperature": 1.0, "top_k": None, "top_p": None, **bad}
    with pytest.raises(ValueError):
        probabilities(np.zeros(10), args["temperature"], args["top_k"], args["top_p"])


MALFORMED_LINKS = [
    {"layer": "1e9", "head": "-1"},
    {"layer": "", "head": "9999999999999999999999"},
    {"temperature": "nan"}, {"temperature": "inf"}, {"temperature": "1e999"}, {"temperature": "0x10"},
    {"prompt": ""}, {"prompt": "x" * 5000},
    {"prompt": "<script>alert(1)</script>", "model": "default"},
    {"model": "/etc"}, {"model": "../../etc/passwd"},
    {"position": "-5", "trust_remote_code": "1"},
]


@pytest.mark.slow  # the real app and model through AppTest
@pytest.mark.parametrize("params", MALFORMED_LINKS, ids=lambda p: "&".join(p)[:40])
def test_malformed_link_falls_back(params):
    at = run_app(**params)
    assert not at.exception
    assert vectors_metric(at).endswith("× 576")  # a capture is still on screen
    for key in ("layer", "head"):
        if key in at.session_state:
            assert 0 <= at.session_state[key] < {"layer": 30, "head": 9}[key]
    if "temperature" in at.session_state:
        assert 0.0 <= at.session_state["temperature"] <= 2.0


@pytest.mark.slow  # the real app and model through AppTest
def test_link_prompt_with_script_stays_text():
    at = run_app(prompt="<script>alert(1)</script>")
    assert not at.exception
    chips, tags = chip_texts(next(h.proto.body for h in at.get("html")))
    assert "script" not in tags and "".join(chips) == "<script>alert(1)</script>"


@pytest.fixture
def operator_env(monkeypatch):
    """Set XRAY_* variables for one test; the process-wide settings cache is cleared around it."""
    from model.core.settings import settings

    settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    settings.cache_clear()


@pytest.mark.slow  # the real app and model through AppTest
def test_allowlist_offers_only_those_models(operator_env, tmp_path):
    operator_env.setenv("XRAY_ALLOWED_MODELS", f"default,{tmp_path}")
    at = run_app()
    choice = at.sidebar.selectbox(key="model_choice")
    assert choice.options == ["SmolLM2-135M-Instruct (embedded)", str(tmp_path)]
    assert not [t for t in at.sidebar.text_input if t.key == "model_custom"]
    at = run_app(model="gpt2")  # a link cannot reach past the allowlist
    assert "does not offer" in shown_text(at) and vectors_metric(at) == "5 × 576"


@pytest.mark.slow  # the real app and model through AppTest
def test_token_limit_from_operator(operator_env):
    operator_env.setenv("XRAY_TOKEN_LIMIT", "8")
    at = run_app(prompt="one two three four five six seven eight nine ten eleven")
    assert at.sidebar.number_input(key="token_limit").max == 8
    assert "limit is 8 tokens" in shown_text(at)


@pytest.mark.slow  # the real app and model through AppTest
def test_remote_code_cannot_be_turned_on_from_the_page(operator_env, tmp_path):
    operator_env.delenv("XRAY_TRUST_REMOTE_CODE", raising=False)
    (tmp_path / "config.json").write_text('{"model_type": "my_custom", "auto_map": {"AutoConfig": "cfg.XConfig"}}')
    at = ask_for_model(str(tmp_path), trust_remote_code="1", XRAY_TRUST_REMOTE_CODE="1")
    assert not at.exception
    labels = " ".join(str(getattr(w, "label", "")) for w in at.sidebar)
    assert "remote" not in labels.lower()  # no widget offers it
    assert "trust_remote_code" in sidebar_errors(at)
    from model.core.settings import settings

    assert settings().trust_remote_code is False
