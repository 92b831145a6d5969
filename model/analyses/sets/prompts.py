"""Prompt sets: many prompts, each with the answer the model should give and a contrast token, for
evidence over a set rather than one prompt (IOI, greater-than, capitals, induction). This module is
where a set comes from (a template, pasted lines, a CSV file, a built-in set) and the checks made
before anything runs: every row the user gave ends up either an Item, ready to run, or a Rejected
row with a sentence saying why. Nothing is dropped silently, and rows keep the user's numbers.

Numbers are 1-based: the n-th non-blank pasted line, the n-th non-blank CSV data row, the n-th
template combination.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ...core.errors import PromptError
from ...core.tokens import token_text
from ..patching import answer_id

if TYPE_CHECKING:  # the type only: language_model does not import this module
    from ...engine.language_model import LanguageModel

MAX_PROMPTS = 500
MAX_TOKENS = 64  # per prompt (sets run exact patching: keep them short); a longer prompt is a rejected row
COLUMNS = ("prompt", "answer", "contrast", "corrupted")  # the CSV header; corrupted is optional


@dataclass(frozen=True)
class SetRow:
    """One row as the user gave it (text)."""

    prompt: str
    answer: str  # e.g. " Mary" (leading space matters: it is a token)
    contrast: str  # e.g. " John"
    corrupted: str = ""  # optional corrupted prompt (same token length as prompt)


@dataclass(frozen=True)
class Rejected:
    """A row that will not run, and why."""

    number: int  # 1-based row number as the user sees it
    row: SetRow | None  # None when the line could not even be parsed
    reason: str  # a sentence naming what is wrong


@dataclass(frozen=True)
class Item:
    """A checked row, ready to run."""

    number: int
    row: SetRow
    ids: tuple[int, ...]
    answer: int  # token id
    contrast: int  # token id
    corrupted_ids: tuple[int, ...] | None


@dataclass(frozen=True)
class PromptSet:
    """The checked rows of one set and the rejected ones, both in the user's numbering."""

    name: str
    items: tuple[Item, ...]
    rejected: tuple[Rejected, ...]

    @property
    def has_corrupted(self) -> bool:
        """Whether every item has corrupted ids (patching needs them all)."""
        return bool(self.items) and all(item.corrupted_ids is not None for item in self.items)

    def key(self) -> str:
        """A stable hash of the name and the items' ids and answers, to cache results per set and model."""
        items = [[list(i.ids), i.answer, i.contrast, None if i.corrupted_ids is None else list(i.corrupted_ids)]
                 for i in self.items]
        return hashlib.sha256(json.dumps([self.name, items]).encode()).hexdigest()[:32]


# --- templates ---------------------------------------------------------------------------------------


def from_template(template: str, answer: str, contrast: str, slots: dict[str, list[str]], corrupted: str = "",
                  limit: int = MAX_PROMPTS, seed: int = 0) -> list[SetRow]:
    """Every filling of the templates' {name} slots from the named lists, as rows (answer, contrast and
    corrupted are templates too, filled with the same values: answer=" {A}" gives " Mary"). Two slots
    whose lists hold the same values take different values (IOI: A != B); lists not named in a
    template are ignored. Past `limit` combinations, a seeded random sample of `limit` of them, in
    the order of the full enumeration (the first slot named varies slowest). A literal brace is
    written {{ or }}."""
    texts = [template, answer, contrast, *([corrupted] if corrupted else [])]
    parsed = [_parse(text) for text in texts]
    names = list(dict.fromkeys(field for parts in parsed for _, field in parts if field is not None))
    for name in names:
        _check_list(name, slots)
    radices = _radices(names, slots)
    total = 1
    for radix in radices:
        total *= radix
    if total == 0:
        raise PromptError(f"No combinations: {_listed(names)} must take different values, and their lists are "
                          "too short for that. Add values or use fewer slots.")
    indices = range(total) if total <= limit else _sample(total, limit, seed)
    rows = []
    for index in indices:
        values = _unrank(index, names, slots, radices)
        filled = ["".join(literal + ("" if field is None else values[field]) for literal, field in parts)
                  for parts in parsed]
        rows.append(SetRow(*filled))
    return rows


def _parse(text: str) -> list[tuple[str, str | None]]:
    """A template as (literal text, slot name or None) pieces, or a PromptError for a malformed one."""
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PromptError(f"The template {text!r} has an unbalanced brace: write a slot as {{name}} and a "
                          "literal brace as {{ or }}.") from exc
    for _, field, spec, conversion in pieces:
        if field is not None and (not field.isidentifier() or spec or conversion):
            raise PromptError(f"The template {text!r} has the slot {{{field}{'!' + conversion if conversion else ''}"
                              f"{':' + spec if spec else ''}}}: write a slot as {{name}}, a name of letters, digits "
                              "and underscores.")
    return [(literal, field) for literal, field, _, _ in pieces]


def _check_list(name: str, slots: dict[str, list[str]]) -> None:
    """A PromptError unless the slot has a non-empty list without repeated values."""
    if name not in slots:
        raise PromptError(f"The template uses {{{name}}} but there is no list named {name}: give one.")
    values = slots[name]
    if not values:
        raise PromptError(f"The list for {{{name}}} is empty: give it at least one value.")
    repeated = [value for value, count in Counter(values).items() if count > 1]
    if repeated:
        raise PromptError(f"The list for {{{name}}} has {repeated[0]!r} more than once: give each value once.")


def _radices(names: list[str], slots: dict[str, list[str]]) -> list[int]:
    """Each slot's number of choices once the earlier slots with the same values have taken theirs."""
    seen: dict[frozenset[str], int] = {}
    radices = []
    for name in names:
        group = frozenset(slots[name])
        radices.append(max(len(group) - seen.get(group, 0), 0))
        seen[group] = seen.get(group, 0) + 1
    return radices


def _sample(total: int, limit: int, seed: int) -> list[int]:
    """`limit` distinct indices below `total`, seeded, ascending (works for totals past 2**63)."""
    rng = random.Random(seed)
    chosen: set[int] = set()
    while len(chosen) < limit:
        chosen.add(rng.randrange(total))
    return sorted(chosen)


def _unrank(index: int, names: list[str], slots: dict[str, list[str]], radices: list[int]) -> dict[str, str]:
    """The index-th combination (mixed radix, first slot most significant): slot name -> value."""
    digits = []
    for radix in reversed(radices):
        index, digit = divmod(index, radix)
        digits.append(digit)
    taken: dict[frozenset[str], list[str]] = {}
    values = {}
    for name, digit in zip(names, reversed(digits)):
        group = frozenset(slots[name])
        canonical = taken.setdefault(group, list(slots[name]))
        values[name] = canonical.pop(digit)
    return values


def _listed(names: list[str]) -> str:
    """{A}, {B} and {C}."""
    slots = [f"{{{name}}}" for name in names]
    return slots[0] if len(slots) == 1 else ", ".join(slots[:-1]) + " and " + slots[-1]


# --- pasted lines and CSV ----------------------------------------------------------------------------


def from_lines(text: str) -> tuple[list[SetRow], list[Rejected]]:
    """Rows from pasted lines "prompt | answer | contrast", optionally "| corrupted prompt"; a tab also
    separates fields, blank lines are skipped. The prompts lose their outer whitespace; the answer
    and the contrast keep their leading spaces as written and lose their trailing ones, so
    "... | Mary | John" gives " Mary" and " John", and "...|Mary|John" gives "Mary" and "John"
    (other tokens). A prompt holding "|" or a tab comes through a CSV file."""
    rows: list[SetRow] = []
    rejected: list[Rejected] = []
    lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        fields = re.split(r"[|\t]", line)
        if len(fields) not in (3, 4):
            counted = f"{len(fields)} field{'s' * (len(fields) != 1)}"
            rejected.append(Rejected(number, None, f"The line {_short(line)!r} has {counted}; a row is 'prompt | "
                                     "answer | contrast', optionally followed by '| corrupted prompt'."))
            continue
        prompt, answer, contrast, *rest = fields
        row = SetRow(prompt.strip(), answer.rstrip(), contrast.rstrip(), rest[0].strip() if rest else "")
        rows.append(row)
    return rows, rejected


def from_csv(data: bytes) -> tuple[list[SetRow], list[Rejected]]:
    """Rows from a CSV file (UTF-8, a BOM allowed) whose header names the columns prompt, answer,
    contrast and optionally corrupted (any case, any order; other columns are ignored). Fields are
    taken exactly as written: quote " Mary" to keep its space. Blank rows are skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptError(f"The file is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8.") from exc
    try:
        records = [record for record in csv.reader(io.StringIO(text, newline="")) if any(record)]
    except csv.Error as exc:
        raise PromptError(f"The file cannot be read as CSV ({exc}).") from exc
    if not records:
        raise PromptError("The file is empty: its first row names the columns prompt, answer, contrast "
                          "and optionally corrupted.")
    header = [name.strip().lower() for name in records[0]]
    missing = [name for name in COLUMNS[:3] if name not in header]
    if missing:
        raise PromptError(f"The CSV has no {_quoted(missing)} column (its header: {', '.join(records[0])}); "
                          "the columns are prompt, answer, contrast and optionally corrupted.")
    where = {name: header.index(name) for name in COLUMNS if name in header}
    rows: list[SetRow] = []
    rejected: list[Rejected] = []
    for number, record in enumerate(records[1:], start=1):
        if len(record) != len(header):
            rejected.append(Rejected(number, None, f"The row {_short(','.join(record))!r} has {len(record)} fields and the "
                                     f"header {len(header)}: a field holding a comma needs quotes."))
            continue
        rows.append(SetRow(**{name: record[column] for name, column in where.items()}))
    return rows, rejected


def to_csv(prompt_set: PromptSet) -> bytes:
    """The kept items as CSV (UTF-8, every field quoted so spaces survive spreadsheets): from_csv reads it back."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    for item in prompt_set.items:
        row = item.row
        writer.writerow([row.prompt, row.answer, row.contrast, row.corrupted])
    return out.getvalue().encode("utf-8")


def _short(text: str, width: int = 60) -> str:
    """A line as a reason quotes it: stripped, and cut with "…" past `width` characters."""
    text = text.strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _quoted(names: list[str]) -> str:
    """'answer' or 'answer' or 'contrast'."""
    return " or ".join(f"'{name}'" for name in names)


# --- checks ------------------------------------------------------------------------------------------


def check(lm: LanguageModel, rows: Sequence[SetRow], name: str, rejected: Sequence[Rejected] = (),
          max_tokens: int = MAX_TOKENS) -> PromptSet:
    """Every row either an Item or a Rejected row with its reason: the prompt encodes within max_tokens,
    the answer and the contrast are one token each and differ, a corrupted prompt (when given) has
    the prompt's token length, and no more than MAX_PROMPTS rows run. Rows are numbered 1, 2, ...
    skipping the numbers of `rejected` (the rows the parser refused), so both keep the user's numbers."""
    taken = {refused.number for refused in rejected}
    numbers = (number for number in itertools.count(1) if number not in taken)
    items: list[Item] = []
    refused = list(rejected)
    for index, (number, row) in enumerate(zip(numbers, rows)):
        if index >= MAX_PROMPTS:
            refused.append(Rejected(number, row, f"The row is past the limit of {MAX_PROMPTS} prompts: "
                                    "a set runs at most that many."))
            continue
        checked = _checked(lm, number, row, max_tokens)
        if isinstance(checked, Item):
            items.append(checked)
        else:
            refused.append(checked)
    return PromptSet(name, tuple(items), tuple(sorted(refused, key=lambda r: r.number)))


def _checked(lm: LanguageModel, number: int, row: SetRow, max_tokens: int) -> Item | Rejected:
    """One row as an Item, or Rejected with every problem it has."""
    ids = _ids(lm, row.prompt, "prompt", max_tokens)
    answer = _one_token(lm, row.answer, "answer")
    contrast = _one_token(lm, row.contrast, "contrast")
    corrupted = _ids(lm, row.corrupted, "corrupted prompt", max_tokens) if row.corrupted else None
    problems = [value for value in (ids, answer, contrast, corrupted) if isinstance(value, str)]
    if isinstance(answer, int) and answer == contrast:
        problems.append(f"The answer and the contrast are the same token ({row.answer!r}): they must differ.")
    if isinstance(ids, tuple) and isinstance(corrupted, tuple) and len(ids) != len(corrupted):
        problems.append(f"The corrupted prompt is {len(corrupted)} tokens and the prompt {len(ids)}: "
                        "they must be the same length.")
    if problems:
        return Rejected(number, row, " ".join(problems))
    assert isinstance(ids, tuple) and isinstance(answer, int) and isinstance(contrast, int)
    return Item(number, row, ids, answer, contrast, corrupted if isinstance(corrupted, tuple) else None)


def _ids(lm: LanguageModel, text: str, what: str, max_tokens: int) -> tuple[int, ...] | str:
    """A prompt's ids, or the sentence saying why it cannot run."""
    try:
        ids = lm.encode(text)
    except PromptError as exc:
        return str(exc) if what == "prompt" else f"The {what}: {exc}"
    if len(ids) > max_tokens:
        return (f"The {what} is {len(ids)} tokens long; a prompt set allows at most {max_tokens} per prompt "
                "(each runs exact patching).")
    return tuple(int(i) for i in ids)


def _one_token(lm: LanguageModel, text: str, what: str) -> int | str:
    """A one-token answer's id, or the sentence saying why it is not one token."""
    if not text:
        return f"The {what} is empty: give one token, such as ' Mary'."
    token = answer_id(lm, text)
    if token is not None:
        return token
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = ", ".join(repr(token_text(lm.tokenizer, int(i))) for i in ids)
    return f"The {what} {text!r} is {len(ids)} tokens ({pieces}); {what}s must be one token."


# --- built-in sets -----------------------------------------------------------------------------------

BUILTIN = {
    "Indirect object (IOI)": "When Mary and John went to the store, John gave a drink to → ' Mary' (not ' John'); "
                             "corrupted: a third name replaces the second John (Wang et al. 2022).",
    "Greater-than years": "The war lasted from the year 1732 to the year 17 → a later year's digit ('4'), not an "
                          "earlier one ('2'); corrupted: the year 1701 (Hanna et al. 2023).",
    "Capital cities": "The capital of France is → ' Paris' (not ' Berlin'); corrupted: the capital of Germany.",
    "Induction (repeated random tokens)": "random word tokens, then their first half again → the token that came "
                                          "next the first time; corrupted: the first run replaced by other tokens.",
}

_NAMES = ("Mary", "John", "Tom", "James", "Anna", "Sarah", "David", "Michael", "Robert", "William", "Richard",
          "Joseph", "Thomas", "Charles", "Daniel", "Paul", "Kevin", "George", "Edward", "Ryan", "Jacob", "Eric",
          "Scott", "Frank", "Jack", "Adam", "Henry", "Peter", "Carl", "Sean", "Lisa", "Emma", "Alice", "Kate",
          "Laura", "Rachel", "Susan", "Helen", "Ruth", "Amy")
_PLACES = ("store", "garden", "restaurant", "school", "hospital", "office", "park", "station", "house", "beach",
           "library", "market", "church", "bank", "kitchen", "airport", "river", "museum", "hotel", "farm")
_OBJECTS = ("drink", "book", "ball", "ring", "gift", "letter", "bottle", "bag", "pen", "flower", "cake", "key",
            "phone", "snack", "basket", "computer", "necklace", "kiss", "sandwich", "card")
# Wang et al. (2022)'s IOI templates, A the indirect object; each also runs with the pair in the other order.
_IOI_TEMPLATES = (
    "Then, {A} and {B} went to the {place}. {B} gave a {object} to",
    "Then, {A} and {B} had a lot of fun at the {place}. {B} gave a {object} to",
    "Then, {A} and {B} were working at the {place}. {B} decided to give a {object} to",
    "Then, {A} and {B} were thinking about going to the {place}. {B} wanted to give a {object} to",
    "Then, {A} and {B} had a long argument, and afterwards {B} said to",
    "After {A} and {B} went to the {place}, {B} gave a {object} to",
    "When {A} and {B} got a {object} at the {place}, {B} decided to give it to",
    "When {A} and {B} got a {object} at the {place}, {B} decided to give the {object} to",
    "While {A} and {B} were working at the {place}, {B} gave a {object} to",
    "While {A} and {B} were commuting to the {place}, {B} gave a {object} to",
    "After the lunch, {A} and {B} went to the {place}. {B} gave a {object} to",
    "Afterwards, {A} and {B} went to the {place}. {B} gave a {object} to",
    "Friends {A} and {B} found a {object} at the {place}. {B} gave it to",
)
# Hanna et al. (2023)'s event nouns: "The {noun} lasted from the year 17YY to the year 17".
_NOUNS = ("war", "expedition", "siege", "campaign", "reign", "journey", "voyage", "project", "trial", "treaty",
          "plague", "conflict", "dynasty", "rebellion", "marriage", "tour", "occupation", "study", "festival",
          "crisis", "dispute", "invasion", "construction", "revolution", "famine", "alliance")
_CAPITALS = (("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
             ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Greece", "Athens"),
             ("England", "London"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Portugal", "Lisbon"),
             ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Ireland", "Dublin"), ("Norway", "Oslo"),
             ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Belgium", "Brussels"),
             ("the Netherlands", "Amsterdam"), ("Hungary", "Budapest"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
             ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Cuba", "Havana"),
             ("Syria", "Damascus"), ("the Philippines", "Manila"), ("Switzerland", "Bern"), ("Bulgaria", "Sofia"),
             ("Scotland", "Edinburgh"), ("Wales", "Cardiff"), ("Afghanistan", "Kabul"), ("Jamaica", "Kingston"),
             ("South Korea", "Seoul"), ("Thailand", "Bangkok"), ("Ukraine", "Kyiv"))
_CAPITAL_TEMPLATES = ("The capital of {} is", "The capital city of {} is", "The capital of {} is the city of",
                      "The government of {} sits in its capital,", "Q: What is the capital of {}? A:")
_INDUCTION_LENGTH, _INDUCTION_REPEAT = 12, 6  # 12 random tokens, then the first 6 again: the answer is the 7th


def builtin(name: str, lm: LanguageModel, n: int = 100, seed: int = 0) -> list[SetRow]:
    """n rows of a built-in set (BUILTIN) fitted to lm's tokenizer, each passing check(): fewer only when
    the set has fewer (capitals: 190 with SmolLM2's tokenizer, greater-than: 2,080); the same
    name, tokenizer, n and seed give the same rows."""
    makers = {"Indirect object (IOI)": _ioi, "Greater-than years": _greater_than, "Capital cities": _capitals,
              "Induction (repeated random tokens)": _induction}
    if name not in makers:
        raise PromptError(f"There is no built-in set {name!r}: the built-in sets are {', '.join(BUILTIN)}.")
    passing = (row for row in makers[name](lm, n, random.Random(seed)) if isinstance(_checked(lm, 0, row, MAX_TOKENS), Item))
    return list(itertools.islice(passing, n))


def _single(lm: LanguageModel, words: Sequence[str]) -> list[str]:
    """The words that are one token after a space in lm's tokenizer."""
    return [word for word in words if answer_id(lm, " " + word) is not None]


def _ioi(lm: LanguageModel, n: int, rng: random.Random) -> list[SetRow]:
    """IOI sentences: A and B, then B gives to ... A; corrupted: a third name C in place of B's second mention."""
    names = _single(lm, _NAMES)
    slots = {"A": names, "B": names, "C": names, "place": _single(lm, _PLACES), "object": _single(lm, _OBJECTS)}
    rows = []
    for template in _IOI_TEMPLATES:
        for first, second in (("{A}", "{B}"), ("{B}", "{A}")):
            clean = template.replace("{A} and {B}", f"{first} and {second}", 1)
            corrupted = clean[::-1].replace("}B{", "}C{", 1)[::-1]  # the last {B}: the subject's second mention
            rows += from_template(clean, " {A}", " {B}", slots, corrupted, limit=n, seed=rng.randrange(2**32))
    rng.shuffle(rows)
    return rows


def _greater_than(lm: LanguageModel, n: int, rng: random.Random) -> list[SetRow]:
    """Years 17YY (YY from 10 to 89): the answer is the year ten years later, the contrast ten years earlier.
    A tokenizer that spells years digit by digit (SmolLM2) is asked for the tens digit after "17": YY's
    tens digit plus one (always a later year) against minus one (always earlier); one that has two-digit
    tokens (GPT-2) is asked for YY + 10 against YY - 10."""
    whole = all(answer_id(lm, f"{yy:02d}") is not None for yy in range(100))
    rows = []
    for noun in _single(lm, _NOUNS):
        for yy in range(10, 90):
            later, earlier = (f"{yy + 10:02d}", f"{yy - 10:02d}") if whole else (str(yy // 10 + 1), str(yy // 10 - 1))
            prompt = "The {} lasted from the year 17{:02d} to the year 17"
            rows.append(SetRow(prompt.format(noun, yy), later, earlier, prompt.format(noun, 1)))
    rng.shuffle(rows)
    return rows


def _capitals(lm: LanguageModel, n: int, rng: random.Random) -> list[SetRow]:
    """Capital questions; the corrupted prompt names another country of the same token length, whose
    capital is the contrast."""
    pairs = [(country, capital) for country, capital in _CAPITALS if answer_id(lm, " " + capital) is not None]
    rows = []
    for template in _CAPITAL_TEMPLATES:
        length = {country: len(lm.encode(template.format(country))) for country, _ in pairs}
        for country, capital in pairs:
            others = [pair for pair in pairs if pair[0] != country and length[pair[0]] == length[country]]
            if others:
                other, other_capital = rng.choice(others)
                rows.append(SetRow(template.format(country), " " + capital, " " + other_capital,
                                   template.format(other)))
    rng.shuffle(rows)
    return rows


def _induction(lm: LanguageModel, n: int, rng: random.Random) -> list[SetRow]:
    """Random word tokens r1..r12 then r1..r6: the answer is r7, the contrast another token of the run;
    corrupted: r1..r12 replaced by other random tokens (r1..r6 kept at the end). Each token is a
    lowercase word after a space that encodes back to itself, so the text spells exactly these ids
    (and so starts with a space)."""
    pool = _word_tokens(lm.tokenizer)
    decode = lm.tokenizer.decode
    rows = []
    for _ in range(n):
        tokens = rng.sample(pool, 2 * _INDUCTION_LENGTH)
        run, other = tokens[:_INDUCTION_LENGTH], tokens[_INDUCTION_LENGTH:]
        repeat = run[:_INDUCTION_REPEAT]
        answer = run[_INDUCTION_REPEAT]
        contrast = rng.choice([token for token in run if token != answer])
        rows.append(SetRow(decode(run + repeat), decode([answer]), decode([contrast]), decode(other + repeat)))
    return rows


@lru_cache(maxsize=4)
def _word_tokens(tokenizer) -> list[int]:
    """Ids of lowercase word tokens with a leading space (" river") that encode back to their own id."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    words = [i for i, text in enumerate(texts) if re.fullmatch(r" [a-z]{3,9}", text)]
    encoded = tokenizer([texts[i] for i in words], add_special_tokens=False)["input_ids"]
    return [i for i, ids in zip(words, encoded) if list(ids) == [i]]
