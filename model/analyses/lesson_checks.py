"""The lesson's task checkers: each takes plain numbers or arrays from the learner's own run and
says whether the task is done, with a sentence computed from those numbers (never a stored answer).
Pure numpy; the lesson page gathers the inputs from the live model and shows the verdicts.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .head_scores import induction_chance, share_from_score
from .sampling import probabilities, sample_token

HEAD_THRESHOLD = 0.5  # a head "is" an induction head from this score (the head grid's badge I)
SHARE_THRESHOLD = 0.5  # a previous-token head gives the token before at least half of a token's attention
TIE_TOLERANCE = 0.05  # step 4: a key this close to the top score counts as the top (the map cannot tell them apart)
COUNT_TOLERANCE = 0.01  # a count within 1% passes ("about 28 million")


def percent(x: float, decimals: int = 1) -> str:
    """A probability as a percentage that never reads 0 when it is not: two significant digits where
    `decimals` would round it away, written out (0.0000018%, not 1.8e-06%)."""
    shown = f"{x:.{decimals}%}"
    if x > 0 and float(shown[:-1]) == 0:
        digits = 1 - math.floor(math.log10(100 * x))  # decimals that keep two significant digits
        return f"{100 * x:.{digits}f}%"
    return shown


@dataclass(frozen=True)
class Check:
    """A verdict on one task: done or not, and why, in one or two sentences."""

    passed: bool
    message: str


def split_word(word: str, n_tokens: int, at_least: int = 3) -> Check:
    """Step 1: a word the tokenizer cuts into at least `at_least` tokens."""
    if not word.strip():
        return Check(False, "Type a word first.")
    word = word.strip() if len(word.strip()) <= 40 else word.strip()[:39] + "…"  # a pasted paragraph is not echoed
    if n_tokens >= at_least:
        return Check(True, f"'{word}' becomes {n_tokens} tokens: the model never sees it whole.")
    return Check(False, f"'{word}' is only {n_tokens} token{'s' * (n_tokens != 1)}: try a rarer or longer "
                        f"word (at least {at_least} pieces).")


def count(answer: float, truth: int, what: str) -> Check:
    """Steps 2 and 5: a number the learner works out, compared with the one counted on the model."""
    if truth == 0:
        return Check(answer == 0, f"There are 0 {what}.")
    if abs(answer - truth) <= COUNT_TOLERANCE * truth:
        return Check(True, f"Right: {truth:,} {what}.")
    direction = "too high" if answer > truth else "too low"
    return Check(False, f"{answer:,.0f} is {direction}. Look at the shape again and multiply.")


def analogy(expression: str, rank: int | None, example: str) -> Check:
    """Step 3: an expression of your own whose expected word is the nearest token (rank 1)."""
    if expression.replace(" ", "") == example.replace(" ", ""):
        return Check(False, f"'{example}' is the example: try an analogy of your own.")
    if rank == 1:
        return Check(True, "The expected word is the nearest token: this direction carries the meaning.")
    if rank is None:
        return Check(False, "The expected word is several tokens, so it has no rank: pick a one-token answer.")
    return Check(False, f"The expected word ranks {rank:,}: not first yet. Try another pair of words.")


def top_score(scores_row: np.ndarray, masked_row: np.ndarray, picked: int) -> Check:
    """Step 4: the key with the highest score for one query, among the keys it may read. A key within
    TIE_TOLERANCE of the top passes too: near-ties look the same on the map."""
    allowed = np.where(np.asarray(masked_row, bool), -np.inf, np.asarray(scores_row, np.float64))  # (T,)
    best = int(np.argmax(allowed))
    if np.asarray(masked_row, bool)[picked]:
        return Check(False, f"Key {picked} comes after the query: the mask hides it. Look among the earlier keys.")
    if picked == best:
        return Check(True, f"Yes: key {best} scores {allowed[best]:.2f}, the highest this query gives.")
    if allowed[best] - allowed[picked] <= TIE_TOLERANCE:
        return Check(True, f"Yes: key {picked} scores {allowed[picked]:.2f}, a tie with key {best} "
                           f"({allowed[best]:.2f}): keys within {TIE_TOLERANCE} of the top count.")
    return Check(False, f"Key {picked} scores {allowed[picked]:.2f}; another visible key scores higher. "
                        "Point at a cell to read its score.")


def previous_share(pattern: np.ndarray) -> float:
    """Mean weight a query puts on the token just before it, from the third token on: the second token's
    previous token is the first, where many heads park their weight whatever they do."""
    return float(np.diagonal(pattern, offset=-1)[1:].mean())


def previous_token_head(pattern: np.ndarray) -> Check:
    """Step 6: a head (T, T) that gives the token just before each query at least half its attention."""
    n = pattern.shape[-1]
    if n < 3:
        return Check(False, "The prompt needs at least 3 tokens to tell a previous-token head apart.")
    share = previous_share(pattern)
    said = f"On average {share:.0%} of each token's attention goes to the token just before it"
    if share >= SHARE_THRESHOLD:
        return Check(True, f"{said}: this head reads the previous token.")
    return Check(False, f"{said} (counted from the third token on); a previous-token head gives it at least "
                        f"{SHARE_THRESHOLD:.0%}. Look for a dark line just below the diagonal, often in the first blocks.")


def value_matters(weights_row: np.ndarray, weighted_row: np.ndarray) -> Check:
    """Step 7: a query whose most-weighted key is not the key that moves the most (weight x |value|)."""
    top_weight, top_moved = int(np.argmax(weights_row)), int(np.argmax(weighted_row))
    if top_weight != top_moved:
        return Check(True, f"Key {top_weight} gets the most weight, but key {top_moved} moves the most: "
                           "its value vector is longer.")
    return Check(False, f"Key {top_weight} wins on both counts here. Try another head: look for a key "
                        "whose colour changes between the softmax step and this one.")


def induction_head(score: float) -> Check:
    """Step 8: a head whose induction score (measured on a repeated random sequence) is high. The score is
    corrected for chance, so the verdict also says it as a plain share of attention."""
    share = share_from_score(score, induction_chance())
    said = (f"Induction score {score:.2f}: on a random text typed twice, about {share:.0%} of this head's "
            "attention goes to the token that followed the earlier copy")
    scale = (f"The score takes chance off: 0 is attention spread evenly (about {induction_chance():.0%} there), "
             "1 is all of it, below 0 avoids it.")
    if score >= HEAD_THRESHOLD:
        return Check(True, f"{said}: an induction head. {scale}")
    return Check(False, f"{said}. {scale} Induction heads (I in the grid) score at least {HEAD_THRESHOLD}: "
                        "look in the middle blocks.")


def strongest_block(shares: np.ndarray, picked: int, what: str = "MLP") -> Check:
    """Step 9: the block whose part (e.g. MLP) pushes the chosen token's logit up the most."""
    best = int(np.argmax(shares))
    if picked == best:
        return Check(True, f"Yes: block {best}'s {what} adds {shares[best]:+.2f} to the logit, the most of any block.")
    return Check(False, f"Block {picked}'s {what} adds {shares[picked]:+.2f}; another block adds more.")


def says(top_token: str, target: str, prompt: str, example: str) -> Check:
    """Step 10: a prompt of your own whose most likely next token is the target word."""
    if prompt.strip() == example.strip():
        return Check(False, "That is the example prompt: write one of your own.")
    if top_token.strip() == target.strip():
        return Check(True, f"The most likely next token is '{top_token.strip()}'.")
    shown = f"'{top_token.strip()}'" if top_token.strip() else f"whitespace alone ({top_token!r})"  # e.g. a line break
    return Check(False, f"The most likely next token is {shown}, not '{target.strip()}'. Give the model a stronger clue.")


def temperature_below(logits_row: np.ndarray, temperature: float, limit: float = 0.5) -> Check:
    """Step 11: a temperature above the model's own (T = 1) at which the top token falls below `limit`."""
    top = float(probabilities(logits_row, temperature).max())
    if temperature > 1 and top < limit:
        return Check(True, f"At T = {temperature:.2f} the top token has {percent(top)}: the choice is open.")
    if top < limit:
        return Check(False, f"At T = {temperature:.2f} the top token has {percent(top)} already: raise the temperature "
                            "above 1 and watch it fall further.")
    return Check(False, f"At T = {temperature:.2f} the top token still has {percent(top)}. Raise the temperature.")


def seed_differs(p: np.ndarray, seed: int, name_of: Callable[[int], str]) -> Check:
    """Step 12: a seed whose draw from p is not the most likely token (p: the probabilities at the
    step's temperature; name_of: a token's text as the bars show it)."""
    drawn, best = sample_token(p, seed), int(np.argmax(p))
    if drawn != best:
        return Check(True, f"Seed {seed} draws {name_of(drawn)}, not the favourite {name_of(best)}: "
                           f"it had {percent(float(p[drawn]))}.")
    if p[best] == 1.0:
        return Check(False, f"Seed {seed} draws the favourite, {name_of(best)}, as every seed will: at this "
                            "temperature it has all the probability. Go back a step and raise the temperature.")
    return Check(False, f"Seed {seed} draws the favourite, {name_of(best)} ({percent(float(p[best]))}). Try other "
                        "seeds, or raise the temperature.")


STEER_FACTOR = 100.0  # step 13: the topic's token at least this many times as likely as without steering


def steered_toward(topic: str, before: float, after: float, coefficient: float) -> Check:
    """Step 13: adding a topic's direction makes the topic's own token far likelier after the prompt."""
    if coefficient == 0:
        return Check(False, "At coefficient 0 nothing is added: the two runs are the same. Raise it.")
    ratio = after / before if before > 0 else float("inf")
    times = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"
    said = f"'{topic}' went from {percent(before, 4)} to {percent(after, 4)} as the next token ({times}×)"
    if ratio >= STEER_FACTOR:
        return Check(True, f"{said} without one word of the prompt changing: the direction carries the topic.")
    return Check(False, f"{said}. Push harder (a larger coefficient) until it is at least {STEER_FACTOR:g}× as likely.")
