"""The app's example texts teach what they claim, on the default model: the 'mole' contexts (clue
BEFORE the word) drift apart with depth while a clue after the word changes nothing, the two-meanings
prompt separates its moles, the repeated sequence is copied and the fact is recalled."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from model.analyses.embeddings import cosine, word_positions
from model.analyses.sampling import probabilities
from pages.kit.session import EXAMPLES, MOLE_CONTEXTS

TREND = 0.08  # the last 5 depths average at least this much below the first 3 (measured 0.11 for the
# two animal moles, 0.15-0.26 for different senses)
FALL = 0.15  # every pair's cosine falls at least this much from the embedding to after the last block
APART = 0.72  # different senses end below this (measured 0.57-0.67)
SAME_SENSE_LEAD = 0.08  # the two animal moles end at least this much more alike than any other pair (measured 0.14)
SAME_SENSE = (1, 2)  # garden and lawn: both the animal


def _word_path(lm, text: str, word: str = "mole", occurrence: int = 0) -> np.ndarray:
    """(L+1, D) the residual vector of the word at every depth."""
    cap = lm.capture(text)
    return cap.residual[:, word_positions(lm.tokenizer, text, word)[occurrence]]


@pytest.fixture(scope="module")
def mole_cosines(default_lm) -> dict[tuple[int, int], np.ndarray]:
    paths = [_word_path(default_lm, text) for text in MOLE_CONTEXTS]
    return {(i, j): cosine(paths[i], paths[j]) for i, j in itertools.combinations(range(len(paths)), 2)}


def test_mole_contexts_diverge_with_depth(mole_cosines):
    for pair, c in mole_cosines.items():
        assert c[0] == pytest.approx(1.0, abs=1e-5), pair  # the same embedding row
        assert c[-1] < c[0] - FALL, pair
        assert c[-5:].mean() < c[:3].mean() - TREND, pair  # a trend with depth, not one odd block


def test_different_senses_end_further_apart_than_the_same_sense(mole_cosines):
    same = mole_cosines[SAME_SENSE][-1]
    for pair, c in mole_cosines.items():
        if pair != SAME_SENSE:
            assert c[-1] < APART, pair
            assert c[-1] < same - SAME_SENSE_LEAD, pair


def test_a_clue_after_the_word_cannot_move_it(default_lm):
    """The control: same start, clues after 'mole' -> the vectors stay identical at every depth."""
    a = _word_path(default_lm, "The mole was a spy inside the agency.")
    b = _word_path(default_lm, "The mole dug a tunnel in the garden.")
    np.testing.assert_allclose(cosine(a, b), 1.0, atol=1e-4)


def test_two_meanings_example_separates_its_moles(default_lm):
    text = EXAMPLES["One word, two meanings"]
    c = cosine(_word_path(default_lm, text, occurrence=0), _word_path(default_lm, text, occurrence=1))
    assert c[0] == pytest.approx(1.0, abs=1e-5) and c[-1] < 0.85  # measured 0.77


@pytest.mark.parametrize("example, token, at_least", [
    ("A fact to recall", " Paris", 0.5),  # measured 0.77
    ("A repeated sequence to copy", " park", 0.8),  # measured 0.96: the copy continues
    ("Who gets the drink? (indirect object)", " Mary", 0.8),  # measured 0.92: the name not repeated
    ("Another language (French)", " Paris", 0.25),  # measured 0.33, ahead of " la" (0.16)
])
def test_examples_predict_what_they_show(default_lm, example, token, at_least):
    p = probabilities(default_lm.capture(EXAMPLES[example]).logits[-1], 1.0)
    assert default_lm.tokenizer.decode([int(p.argmax())]) == token and p.max() >= at_least
