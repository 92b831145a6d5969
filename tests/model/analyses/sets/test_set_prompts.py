"""Prompt sets: templates, pasted lines, CSV, the built-in sets and the checks, on the default model's
tokenizer (SmolLM2's, through tiny_lm: no weights needed)."""
from __future__ import annotations

import pytest

from model.analyses.patching import answer_id
from model.analyses.sets.prompts import (
    BUILTIN,
    MAX_PROMPTS,
    MAX_TOKENS,
    PromptSet,
    SetRow,
    builtin,
    check,
    from_csv,
    from_lines,
    from_template,
    to_csv,
)
from model.core.errors import PromptError

IOI = "When {A} and {B} went to the {place}, {B} gave a drink to"
NAMES = ["Mary", "John", "Tom"]


# --- templates ---------------------------------------------------------------------------------------


def test_a_template_fills_every_combination_with_distinct_names():
    with pytest.raises(PromptError, match="no list named C"):
        from_template(IOI, " {A}", " {B}", {"A": NAMES, "B": NAMES, "place": ["store"]}, corrupted="{C} went")
    rows = from_template(IOI, " {A}", " {B}", {"A": NAMES, "B": NAMES, "place": ["store", "park"]})
    assert len(rows) == 3 * 2 * 2  # A != B (same list), place free
    assert len(set(rows)) == len(rows)
    assert rows[0] == SetRow("When Mary and John went to the store, John gave a drink to", " Mary", " John")
    assert all(row.answer != row.contrast for row in rows)


def test_three_slots_from_one_list_are_all_different_and_other_lists_are_free():
    rows = from_template("{A} {B} {C} {x}", "{A}", "{B}", {"A": NAMES, "B": NAMES, "C": NAMES, "x": ["a", "b"]},
                         corrupted="{C}")
    assert len(rows) == 3 * 2 * 1 * 2
    assert all(len(set(row.prompt.split()[:3])) == 3 for row in rows)
    # a list with the same values in another order is the same list; a different list is independent
    same = from_template("{A} {B}", "{A}", "{B}", {"A": NAMES, "B": NAMES[::-1]})
    free = from_template("{A} {B}", "{A}", "{B}", {"A": NAMES, "B": NAMES[:2]})
    assert (len(same), len(free)) == (6, 6)
    assert any(row.answer == row.contrast for row in free)


def test_a_limit_takes_a_seeded_sample_in_enumeration_order():
    slots = {"A": [f"n{i}" for i in range(30)], "B": [f"n{i}" for i in range(30)], "p": [f"p{i}" for i in range(10)]}
    everything = from_template("{A} {B} {p}", "{A}", "{B}", slots, limit=10_000)
    assert len(everything) == 30 * 29 * 10
    sample = from_template("{A} {B} {p}", "{A}", "{B}", slots, limit=50, seed=3)
    assert len(sample) == len(set(sample)) == 50
    assert sample == from_template("{A} {B} {p}", "{A}", "{B}", slots, limit=50, seed=3)
    assert sample != from_template("{A} {B} {p}", "{A}", "{B}", slots, limit=50, seed=4)
    position = {row: k for k, row in enumerate(everything)}
    assert [position[row] for row in sample] == sorted(position[row] for row in sample)
    huge = {name: [f"v{i}" for i in range(1000)] for name in "ABCDEFGH"}  # 1000**8 / ... > 2**63 combinations
    assert len(from_template("{A}{B}{C}{D}{E}{F}{G}{H}", "{A}", "{B}", huge, limit=5)) == 5


@pytest.mark.parametrize(("template", "slots", "message"), [
    ("{A} and {place}", {"A": NAMES}, r"uses \{place\} but there is no list named place"),
    ("{A} and {B}", {"A": NAMES, "B": []}, r"list for \{B\} is empty"),
    ("{A} and {B", {"A": NAMES, "B": NAMES}, r"unbalanced brace: .* a literal brace as \{\{ or \}\}\.$"),
    ("{A} and B}", {"A": NAMES}, "unbalanced brace"),
    ("{A} and {}", {"A": NAMES}, "write a slot as"),
    ("{A:>3}", {"A": NAMES}, "write a slot as"),
    ("{A} {B} {C} {D}", {k: NAMES for k in "ABCD"}, r"No combinations: \{A\}, \{B\}, \{C\} and \{D\}"),
    ("{A}", {"A": ["Mary", "Mary"]}, "'Mary' more than once"),
])
def test_template_errors_say_what_is_wrong(template, slots, message):
    with pytest.raises(PromptError, match=message):
        from_template(template, " {A}", " x", slots)


def test_answer_and_contrast_are_templates_checked_like_the_prompt():
    with pytest.raises(PromptError, match="no list named Z"):
        from_template("{A}", " {Z}", " x", {"A": NAMES})
    assert from_template("{{literal}} {A}", "{A}", "x", {"A": ["Mary"]}) == [SetRow("{literal} Mary", "Mary", "x")]


# --- pasted lines and CSV ----------------------------------------------------------------------------


def test_pasted_lines_keep_leading_spaces_of_answers_and_accept_tabs():
    text = ("  The capital of France is | Paris | Berlin  \n"
            "\n"
            "The capital of Italy is\t Rome\t Madrid\tThe capital of Spain is \n"
            "no separators here\n"
            "a | b | c | d | e\n"
            "The capital of Peru is|Lima|Quito\n")
    rows, rejected = from_lines(text)
    assert rows == [
        SetRow("The capital of France is", " Paris", " Berlin"),
        SetRow("The capital of Italy is", " Rome", " Madrid", "The capital of Spain is"),
        SetRow("The capital of Peru is", "Lima", "Quito"),
    ]
    assert [(r.number, r.row) for r in rejected] == [(3, None), (4, None)]  # numbered among non-blank lines
    assert rejected[0].reason == ("The line 'no separators here' has 1 field; a row is 'prompt | answer | contrast', "
                                  "optionally followed by '| corrupted prompt'.")
    assert "has 5 fields" in rejected[1].reason


def test_csv_round_trips_through_to_csv(tiny_lm):
    rows = [SetRow("The capital of France is", " Paris", " Berlin", "The capital of Germany is"),
            SetRow('He said "hi", then', " left", " stayed")]
    prompt_set = check(tiny_lm, rows, "mine")
    data = to_csv(prompt_set)
    assert data.startswith(b'"prompt","answer","contrast","corrupted"')
    assert from_csv(data) == (rows, [])
    assert check(tiny_lm, from_csv(data)[0], "mine").key() == prompt_set.key()


def test_csv_reads_a_bom_any_header_case_and_order_and_rejects_short_rows():
    data = ('\ufeffAnswer,PROMPT,contrast,notes\n" Paris",The capital of France is," Berlin",x\n\n'
            'Paris,The capital of Italy is\n" Rome",The capital of Italy is," Madrid",y\n').encode()
    rows, rejected = from_csv(data)
    assert rows == [SetRow("The capital of France is", " Paris", " Berlin"),
                    SetRow("The capital of Italy is", " Rome", " Madrid")]
    assert [(r.number, r.row) for r in rejected] == [(2, None)]
    assert "has 2 fields and the header 4" in rejected[0].reason


@pytest.mark.parametrize(("data", "message"), [
    (b"prompt,answer\nx,y\n", "no 'contrast' column"),
    (b"prompt,corrupted\n", "no 'answer' or 'contrast' column"),
    (b"", "The file is empty"),
    (b"prompt,answer,contrast\n\xff\xfe,x,y\n", "not UTF-8"),
])
def test_csv_errors_say_what_is_wrong(data, message):
    with pytest.raises(PromptError, match=message):
        from_csv(data)


# --- checks ------------------------------------------------------------------------------------------


def test_check_keeps_good_rows_and_says_why_it_rejects_the_others(tiny_lm):
    rows = [
        SetRow("When Mary and John went out, John gave a drink to", " Mary", " John"),
        SetRow("The name is", " Christopherson", " Mary"),
        SetRow("The name is", " Mary", " Mary"),
        SetRow("The capital of France is", " Paris", " Rome", "The capital of the Netherlands is"),
        SetRow(" ".join(["word"] * (MAX_TOKENS + 1)), " a", " b"),
        SetRow("", "", " b"),
    ]
    prompt_set = check(tiny_lm, rows, "mine")
    assert [item.number for item in prompt_set.items] == [1]
    item = prompt_set.items[0]
    assert (item.answer, item.contrast) == (answer_id(tiny_lm, " Mary"), answer_id(tiny_lm, " John"))
    assert item.ids == tuple(tiny_lm.encode(rows[0].prompt)) and item.corrupted_ids is None
    reasons = {r.number: r.reason for r in prompt_set.rejected}
    assert [r.row for r in prompt_set.rejected] == rows[1:]
    pieces = tiny_lm.tokenizer(" Christopherson", add_special_tokens=False)["input_ids"]
    assert reasons[2].startswith(f"The answer ' Christopherson' is {len(pieces)} tokens (' Christ")
    assert reasons[2].endswith("answers must be one token.")
    assert reasons[3] == "The answer and the contrast are the same token (' Mary'): they must differ."
    assert reasons[4] == "The corrupted prompt is 6 tokens and the prompt 5: they must be the same length."
    assert reasons[5] == (f"The prompt is {MAX_TOKENS + 1} tokens long; a prompt set allows at most {MAX_TOKENS} "
                          "per prompt (each runs exact patching).")
    assert reasons[6].startswith("The prompt is empty") and "The answer is empty" in reasons[6]
    assert not prompt_set.has_corrupted


def test_check_numbers_rows_around_the_parsers_rejections_and_stops_at_the_limit(tiny_lm):
    rows, rejected = from_lines("a | b\n" + "The sky is | blue | red\n" * (MAX_PROMPTS + 2))
    prompt_set = check(tiny_lm, rows, "many", rejected)
    assert len(prompt_set.items) + len(prompt_set.rejected) == MAX_PROMPTS + 3
    assert [i.number for i in prompt_set.items] == list(range(2, MAX_PROMPTS + 2))
    assert [(r.number, r.row is None) for r in prompt_set.rejected] == [(1, True), (502, False), (503, False)]
    assert prompt_set.rejected[1].reason.startswith(f"The row is past the limit of {MAX_PROMPTS} prompts")


def test_a_corrupted_prompt_of_the_same_length_is_kept_and_the_key_names_the_set(tiny_lm):
    rows = [SetRow("The capital of France is", " Paris", " Berlin", "The capital of Germany is")]
    prompt_set = check(tiny_lm, rows, "capitals")
    assert prompt_set.has_corrupted
    assert prompt_set.items[0].corrupted_ids == tuple(tiny_lm.encode(rows[0].corrupted))
    assert prompt_set.key() == check(tiny_lm, list(rows), "capitals").key()
    assert len({prompt_set.key(), check(tiny_lm, rows, "other").key(),
                check(tiny_lm, [SetRow(rows[0].prompt, " Paris", " Rome")], "capitals").key(),
                PromptSet("capitals", (), ()).key()}) == 4


# --- built-in sets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_builtin_set_gives_n_rows_that_all_pass_the_checks(tiny_lm, name):
    rows = builtin(name, tiny_lm, n=100, seed=0)
    assert len(rows) == len(set(rows)) == 100
    prompt_set = check(tiny_lm, rows, name)
    assert prompt_set.rejected == () and len(prompt_set.items) == 100
    assert prompt_set.has_corrupted
    assert builtin(name, tiny_lm, n=100, seed=0) == rows
    assert builtin(name, tiny_lm, n=100, seed=1) != rows
    assert len({len(item.ids) for item in prompt_set.items}) <= 13  # short prompts, few lengths


def test_ioi_answers_the_indirect_object(tiny_lm):
    for row in builtin("Indirect object (IOI)", tiny_lm, n=100):
        words = row.prompt.replace(",", " ").replace(".", " ").split()
        assert words.count(row.answer.strip()) == 1 and words.count(row.contrast.strip()) == 2
        corrupted = row.corrupted.replace(",", " ").replace(".", " ").split()
        assert corrupted.count(row.answer.strip()) == 1 and corrupted.count(row.contrast.strip()) == 1
        assert len(words) == len(corrupted) and sum(a != b for a, b in zip(words, corrupted)) == 1


def test_greater_than_asks_for_the_tens_digit_when_years_are_spelled_digit_by_digit(tiny_lm):
    for row in builtin("Greater-than years", tiny_lm, n=100):
        year = int(row.prompt.split("the year 17")[1].split()[0])
        assert 10 <= year < 90 and row.prompt.endswith(" to the year 17")
        assert (int(row.answer), int(row.contrast)) == (year // 10 + 1, year // 10 - 1)
        assert row.corrupted == row.prompt.replace(f"17{year:02d}", "1701")


def test_capitals_contrast_is_the_corrupted_countrys_capital(tiny_lm):
    rows = builtin("Capital cities", tiny_lm, n=100)
    capital = {"France": " Paris", "Germany": " Berlin", "Japan": " Tokyo"}
    for row in rows:
        assert row.prompt != row.corrupted and row.answer != row.contrast
        for country, city in capital.items():
            assert (country in row.prompt) <= (row.answer == city)
            assert (country in row.corrupted) <= (row.contrast == city)


def test_induction_repeats_the_first_tokens_and_answers_the_next_one(tiny_lm):
    rows = builtin("Induction (repeated random tokens)", tiny_lm, n=20)
    for item in check(tiny_lm, rows, "induction").items:
        run, repeat = item.ids[:12], item.ids[12:]
        assert len(set(run)) == 12 and repeat == run[:6] and item.answer == run[6]
        assert item.contrast in run and item.contrast != item.answer
        assert item.corrupted_ids is not None and item.corrupted_ids[12:] == repeat
        assert not set(item.corrupted_ids[:12]) & set(run)


def test_an_unknown_builtin_set_names_the_known_ones(tiny_lm):
    with pytest.raises(PromptError, match="no built-in set 'Nope'.*Capital cities"):
        builtin("Nope", tiny_lm)
