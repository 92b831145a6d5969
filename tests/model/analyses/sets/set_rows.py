"""Set rows for the runner tests, made from text with the model's own tokenizer (prompts.Item's
fields, without prompts.py's checks)."""
from __future__ import annotations

from dataclasses import dataclass

from model.analyses.patching import answer_id

PROMPTS = [  # different lengths on purpose: the passes pad
    ("When Mary and John went to the store, John gave a drink to", " Mary", " John",
     "When Mary and John went to the store, Paul gave a drink to"),
    ("The capital of France is", " Paris", " London", "The capital of Spain is"),
    ("One, two, three, four,", " five", " six", "One, two, three, nine,"),
    ("After the meeting, Anna thanked Tom and then Tom smiled at", " Anna", " Tom", ""),
]


@dataclass(frozen=True)
class Row:
    ids: tuple[int, ...]
    answer: int
    contrast: int
    corrupted_ids: tuple[int, ...] | None


def rows(lm, prompts=PROMPTS) -> list[Row]:
    out = []
    for prompt, answer, contrast, corrupted in prompts:
        a, b = answer_id(lm, answer), answer_id(lm, contrast)
        assert a is not None and b is not None
        ids = tuple(lm.encode(prompt))
        bad = tuple(lm.encode(corrupted)) if corrupted else None
        assert bad is None or len(bad) == len(ids), (prompt, corrupted)
        out.append(Row(ids, a, b, bad))
    return out
