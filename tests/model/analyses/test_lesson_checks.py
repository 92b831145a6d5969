"""Each lesson task's checker with a right and a wrong answer, on hand-made numbers."""
from __future__ import annotations

import numpy as np

from model.analyses import lesson_checks as checks
from model.analyses.sampling import sample_token


def test_split_word():
    assert checks.split_word("antidisestablishment", 4).passed
    assert not checks.split_word("cat", 1).passed
    assert not checks.split_word("  ", 0).passed


def test_count_exact_and_about():
    assert checks.count(28_311_552, 49152 * 576, "numbers").passed
    assert checks.count(28_300_000, 49152 * 576, "numbers").passed  # within 1%
    wrong = checks.count(49152 + 576, 49152 * 576, "numbers")
    assert not wrong.passed and "too low" in wrong.message


def test_analogy():
    assert checks.analogy("cats - cat + dog", 1, "king - man + woman").passed
    assert not checks.analogy("king-man+woman", 1, "king - man + woman").passed  # the example itself
    assert not checks.analogy("Paris - France + Italy", 7, "king - man + woman").passed
    assert not checks.analogy("a - b + c", None, "king - man + woman").passed


def test_top_score_ignores_masked_keys():
    scores = np.array([1.0, 3.0, 2.0, 9.0])  # key 3 is in the future: masked
    masked = np.array([False, False, False, True])
    assert checks.top_score(scores, masked, 1).passed
    assert not checks.top_score(scores, masked, 3).passed
    assert "mask" in checks.top_score(scores, masked, 3).message
    assert not checks.top_score(scores, masked, 2).passed


def test_top_score_accepts_a_near_tie_and_says_so():
    scores = np.array([1.0, 3.46, 3.49, 9.0])  # 3.46 and 3.49 look the same on the map
    masked = np.array([False, False, False, True])
    tie = checks.top_score(scores, masked, 1)
    assert tie.passed and "tie with key 2" in tie.message and str(checks.TIE_TOLERANCE) in tie.message
    assert checks.top_score(scores, masked, 2).passed
    assert not checks.top_score(np.array([1.0, 3.3, 3.49]), np.zeros(3, bool), 1).passed


def test_previous_token_head_reads_a_plain_share():
    T = 6
    previous = np.eye(T, k=-1)
    previous[0, 0] = 1.0
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    done = checks.previous_token_head(previous)
    assert done.passed and "On average 100% of each token's attention" in done.message
    not_yet = checks.previous_token_head(uniform)  # rows 2..5 give 1/3, 1/4, 1/5, 1/6 to the token before
    assert not not_yet.passed and f"{np.mean([1 / 3, 1 / 4, 1 / 5, 1 / 6]):.0%}" in not_yet.message
    assert "score" not in not_yet.message  # a plain share, never a chance-corrected (maybe negative) score
    assert not checks.previous_token_head(np.eye(2)).passed  # too short to tell


def test_a_first_token_head_is_no_previous_token_head():
    """The second token's token before is the first token: a sink head must not pass on that row."""
    sink = np.zeros((3, 3))
    sink[:, 0] = 1.0  # row 1 puts all on token 0, which is also its previous token
    assert checks.previous_share(sink) == 0.0 and not checks.previous_token_head(sink).passed


def test_value_matters():
    weights = np.array([0.7, 0.2, 0.1])
    assert checks.value_matters(weights, weights * np.array([0.1, 2.0, 1.0])).passed  # the sink passes little
    assert not checks.value_matters(weights, weights * np.array([1.0, 1.0, 1.0])).passed


def test_induction_head_explains_its_chance_corrected_score():
    assert checks.induction_head(0.8).passed
    low = checks.induction_head(-0.01)
    assert not low.passed and "about 2%" in low.message and "spread evenly" in low.message
    assert "about 80%" in checks.induction_head(0.8).message  # 0.8 of the way from chance (2%) to all


def test_strongest_block():
    shares = np.array([0.1, -2.0, 3.5, 0.4])
    assert checks.strongest_block(shares, 2).passed
    assert not checks.strongest_block(shares, 1).passed


def test_a_long_word_is_not_echoed_whole():
    verdict = checks.split_word("x" * 2000, 500)
    assert verdict.passed and len(verdict.message) < 120 and "xxx…'" in verdict.message


def test_says():
    assert checks.says(" Paris", "Paris", "The Eiffel Tower is in", "The capital of France is").passed
    assert not checks.says(" Paris", "Paris", "The capital of France is", "The capital of France is").passed
    assert not checks.says(" London", "Paris", "The capital of England is", "The capital of France is").passed
    newline = checks.says("\n", "Paris", "A list:", "The capital of France is")  # a line break is named, not ''
    assert not newline.passed and "is whitespace alone ('\\n'), not 'Paris'" in newline.message


def test_temperature_below():
    logits = np.array([3.0, 1.0, 1.0, 1.0, 0.0])  # 0.69 at T = 1, 0.43 at T = 2
    assert not checks.temperature_below(logits, 1.0).passed
    assert checks.temperature_below(logits, 2.0).passed
    flat = np.zeros(5)  # 20% each at T = 1: below 50% without raising anything
    assert not checks.temperature_below(flat, 1.0).passed and "above 1" in checks.temperature_below(flat, 1.0).message
    assert checks.temperature_below(flat, 1.5).passed


def test_seed_differs():
    p = np.array([0.6, 0.3, 0.1])
    seeds = {seed: sample_token(p, seed) for seed in range(20)}
    other = next(s for s, t in seeds.items() if t != 0)
    same = next(s for s, t in seeds.items() if t == 0)
    names = "abc".__getitem__
    passed = checks.seed_differs(p, other, names)
    assert passed.passed and f"draws {names(seeds[other])}, not the favourite a" in passed.message
    assert not checks.seed_differs(p, same, names).passed
    assert checks.percent(3e-7) == "0.000030%" and checks.percent(0.00042) == "0.042%" and checks.percent(0.5) == "50.0%"
    assert checks.percent(0.0) == "0.0%" and checks.percent(3e-9, 4) == "0.00000030%" and checks.percent(0.009051, 4) == "0.9051%"
    greedy = checks.seed_differs(np.array([1.0, 0.0]), 5, names)
    assert not greedy.passed and "raise the temperature" in greedy.message and "Try other seeds" not in greedy.message


def test_steered_toward():
    from model.analyses.lesson_checks import STEER_FACTOR, steered_toward

    assert not steered_toward("weddings", 1e-6, 1e-6, 0.0).passed
    assert "nothing is added" in steered_toward("weddings", 1e-6, 1.0, 0.0).message
    weak = steered_toward("weddings", 1e-6, 2e-6, 1.0)
    assert not weak.passed and "Push harder" in weak.message and "2.0×" in weak.message
    strong = steered_toward("weddings", 1e-6, STEER_FACTOR * 1e-6, 2.0)
    assert strong.passed and "from 0.0001% to 0.0100%" in strong.message
    tiny = steered_toward("weddings", 3e-9, 1e-6, 2.0)
    assert "from 0.00000030% to 0.0001%" in tiny.message  # never "0.0000%" before a ratio
