"""Embedding geometry against independent references: numpy SVD for PCA, hand-made cosines, and a
tiny hand-built embedding matrix where the arithmetic answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from model.analyses import embeddings as emb


class WordTokenizer:
    """A tokenizer over a fixed word list: ' word' is one token, unknown words split into letters."""

    def __init__(self, words: list[str]) -> None:
        self.vocab = words + [chr(c) for c in range(ord("a"), ord("z") + 1)]

    def __call__(self, text: str, add_special_tokens: bool = False, **_) -> dict:
        ids = []
        for word in text.split():
            ids += [self.vocab.index(word)] if word in self.vocab else [self.vocab.index(c) for c in word.lower()]
        return {"input_ids": ids}

    def decode(self, ids, **_) -> str:
        return "".join(" " + self.vocab[i] for i in ids)

    def convert_ids_to_tokens(self, i: int) -> str:
        return self.vocab[i]


WORDS = ["king", "queen", "man", "woman", "apple", "prince"]


@pytest.fixture()
def toy() -> tuple[WordTokenizer, np.ndarray]:
    """Axes: 0 royalty, 1 female, 2 fruit; letters get small random vectors; prince sits off-axis."""
    tok = WordTokenizer(WORDS)
    rng = np.random.default_rng(0)
    matrix = rng.normal(0, 0.05, size=(len(tok.vocab), 4)).astype(np.float32)  # (V, D)
    rows = {"king": [1, 0, 0, 0.2], "queen": [1, 1, 0, 0.2], "man": [0, 0, 0, 0.2], "woman": [0, 1, 0, 0.2],
            "apple": [0, 0, 1, 0.2], "prince": [0.8, -0.3, 0, 0.6]}
    for word, row in rows.items():
        matrix[WORDS.index(word)] = row
    return tok, matrix


def test_pca_matches_numpy_svd_up_to_sign() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 7)) * np.array([5, 3, 1, 1, 0.5, 0.2, 0.1])  # (N, D)
    proj = emb.fit_pca(x, 2)
    centered = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    reference = centered @ vt[:2].T  # (N, 2)
    for k in range(2):
        sign = np.sign(reference[:, k] @ proj.coords[:, k])
        np.testing.assert_allclose(proj.coords[:, k], sign * reference[:, k], atol=1e-8)
    np.testing.assert_allclose(proj.explained, (s**2 / (s**2).sum())[:2], rtol=1e-8)
    np.testing.assert_allclose(proj.transform(x), proj.coords, atol=1e-10)


def test_pca_of_few_wide_points_matches_svd_too() -> None:
    x = np.random.default_rng(4).normal(size=(6, 30)) * np.linspace(3, 0.1, 30)  # (N, D) with N < D
    proj = emb.fit_pca(x, 2)
    centered = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    np.testing.assert_allclose(np.abs(proj.coords), np.abs(centered @ vt[:2].T), atol=1e-8)
    np.testing.assert_allclose(proj.explained, (s**2 / (s**2).sum())[:2], rtol=1e-8)


def test_pca_pads_axes_it_cannot_fit_and_refuses_one_point() -> None:
    proj = emb.fit_pca(np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]]), 3)
    assert proj.coords.shape == (2, 3)
    np.testing.assert_allclose(proj.explained, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        emb.fit_pca(np.ones((1, 3)), 2)


def test_cosine_matches_manual_and_unit_rows() -> None:
    a, b = np.array([3.0, 4.0, 0.0]), np.array([4.0, -3.0, 5.0])
    manual = (a @ b) / (np.sqrt(a @ a) * np.sqrt(b @ b))
    assert emb.cosine(a, b) == pytest.approx(manual)
    matrix = np.stack([a, b, -a, np.zeros(3)])
    np.testing.assert_allclose(emb.cosine_to_matrix(a, matrix), [1.0, manual, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(emb.unit_rows(matrix[:3]), axis=1), 1.0)


def test_nearest_tokens_skip_excluded_ids() -> None:
    matrix = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    assert [i for i, _ in emb.nearest_tokens(np.array([1.0, 0.0]), matrix, k=2)] == [0, 1]
    assert [i for i, _ in emb.nearest_tokens(np.array([1.0, 0.0]), matrix, k=2, exclude=[0])] == [1, 2]
    assert emb.rank_of(2, np.array([1.0, 0.0]), matrix) == 3
    assert emb.rank_of(2, np.array([1.0, 0.0]), matrix, exclude=[0, 1]) == 1


def test_king_minus_man_plus_woman_is_queen(toy) -> None:
    tok, matrix = toy
    result = emb.vector_arithmetic(tok, matrix, "king - man + woman", expected="queen", k=3)
    assert [sign for sign, _ in result.terms] == [1, -1, 1]
    np.testing.assert_allclose(result.result, matrix[0] - matrix[2] + matrix[3], atol=1e-6)
    assert result.nearest[0][0] == WORDS.index("queen")
    assert not set(result.excluded) & {i for i, _ in result.nearest}
    assert result.expected_rank == 1


def test_every_spelling_of_a_typed_word_is_left_out(toy) -> None:
    tok = WordTokenizer([*WORDS, "King", "Woman"])  # 'King' is its own token, as in real vocabularies
    matrix = np.vstack([toy[1][:len(WORDS)], [[1, 0.2, 0, 0.2], [0, 1, 0, 0.2]], toy[1][len(WORDS):]])
    result = emb.vector_arithmetic(tok, matrix, "king - man + woman", k=3)
    assert {tok.vocab.index("King"), tok.vocab.index("Woman")} <= set(result.excluded)
    assert result.nearest[0][0] == WORDS.index("queen")
    assert emb.spelling_variants(" Paris ") == [" Paris", "Paris", " paris", "paris"]


def test_paris_minus_france_plus_italy_lists_no_typed_word(default_lm) -> None:
    """The lesson says the typed words are left out: no variant of them, with or without a space."""
    arith = emb.vector_arithmetic(default_lm.tokenizer, default_lm.embedding_matrix, "Paris - France + Italy", k=10)
    shown = {default_lm.tokenizer.decode([i]).strip().lower() for i, _ in arith.nearest}
    assert not shown & {"paris", "france", "italy"}, shown


def test_expected_rank_reports_a_miss(toy) -> None:
    tok, matrix = toy
    result = emb.vector_arithmetic(tok, matrix, "king - man + woman", expected="apple")
    assert result.expected_rank is not None and result.expected_rank > 1


def test_an_expected_word_among_the_inputs_has_no_rank(toy) -> None:
    """king + queen - queen is king itself: king, typed, is left out of the table, so it is not ranked
    first (or at all); only its cosine is given."""
    tok, matrix = toy
    result = emb.vector_arithmetic(tok, matrix, "king + queen - queen", expected="king")
    assert result.expected_typed and result.expected_rank is None
    assert result.expected_cosine == pytest.approx(1.0, abs=1e-6)
    assert WORDS.index("king") not in {i for i, _ in result.nearest}
    assert not emb.vector_arithmetic(tok, matrix, "king - man + woman", expected="queen").expected_typed


def test_words_that_cancel_out_are_refused(toy) -> None:
    """king - king is the zero vector: every cosine is 0, so no token is nearest and none is ranked."""
    tok, matrix = toy
    with pytest.raises(ValueError, match="cancel out"):
        emb.vector_arithmetic(tok, matrix, "king - king", expected="queen")
    assert emb.vector_arithmetic(tok, matrix, "king - man", k=2).nearest  # a short result is no zero


def test_split_word_uses_the_mean_and_says_so(toy) -> None:
    tok, matrix = toy
    wv = emb.word_vector(tok, matrix, "ab")
    assert wv.token_ids == (len(WORDS), len(WORDS) + 1)  # the letters a and b
    np.testing.assert_allclose(wv.vector, matrix[list(wv.token_ids)].mean(axis=0), atol=1e-6)
    assert "mean" in wv.note
    assert emb.word_vector(tok, matrix, "king").note.startswith("one token")


def test_parsers() -> None:
    assert emb.parse_expression("Paris - France+Italy") == [(1, "Paris"), (-1, "France"), (1, "Italy")]
    assert emb.parse_expression("-a + b") == [(-1, "a"), (1, "b")]
    with pytest.raises(ValueError):
        emb.parse_expression("  + ")
    assert emb.parse_words(" man, woman,, man ,king ") == ["man", "woman", "king"]


def test_paths_share_one_basis() -> None:
    rng = np.random.default_rng(2)
    residual = rng.normal(size=(5, 6, 8))  # (L+1, T, D)
    proj, paths = emb.project_paths(residual[:, [1, 3]], 2, normalize=True, fit_on=residual.reshape(-1, 8))
    assert paths.shape == (5, 2, 2)
    expected = proj.transform(emb.unit_rows(residual[:, 3]))  # (L+1, 2)
    np.testing.assert_allclose(paths[:, 1], expected, atol=1e-10)


def test_large_fits_use_an_even_sample(monkeypatch) -> None:
    monkeypatch.setattr(emb, "MAX_FIT_POINTS", 10)
    rng = np.random.default_rng(5)
    residual = rng.normal(size=(5, 6, 8))  # (L+1, T, D): 30 fit points > 10
    proj, paths = emb.project_paths(residual[:, [0]], 2, fit_on=residual.reshape(-1, 8))
    assert paths.shape == (5, 1, 2) and np.isfinite(paths).all()
    sample = emb.unit_rows(residual.reshape(-1, 8)[np.linspace(0, 29, 10).astype(int)])
    np.testing.assert_allclose(proj.mean, sample.mean(axis=0), atol=1e-12)


def test_compare_contexts_cosines_and_yardstick() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 5, 6)), rng.normal(size=(4, 3, 6))  # (L+1, T, D)
    b[:, 2] = 2 * a[:, 1]  # the word in context b points exactly like in context a
    result = emb.compare_contexts([a, b], [1, 2])
    np.testing.assert_allclose(result.pairs[(0, 1)], 1.0, atol=1e-9)
    manual = np.mean([emb.cosine(a[2, 1], b[2, 1])])  # b's only other non-first token is position 1
    manual_b = np.mean([emb.cosine(b[2, 2], a[2, t]) for t in (2, 3, 4)])
    assert result.baseline[2] == pytest.approx((manual + manual_b) / 2)


def test_word_positions_find_last_token_of_each_occurrence(tokenizer) -> None:
    prompt = "The spy was a mole inside. In the garden, a Mole dug a tunnel"
    ids = tokenizer(prompt)["input_ids"]
    positions = emb.word_positions(tokenizer, prompt, "mole")
    assert len(positions) == 2
    for p in positions:
        assert tokenizer.decode(ids[: p + 1]).lower().endswith("mole")
    assert emb.word_positions(tokenizer, prompt, "moles") == []
    assert emb.word_positions(tokenizer, "unbelievably long", "unbelievably") == [len(tokenizer("unbelievably")["input_ids"]) - 1]


def test_arithmetic_points_draw_the_parallelogram(toy) -> None:
    tok, matrix = toy
    result = emb.vector_arithmetic(tok, matrix, "king - man + woman", expected="queen", k=3)
    points, names, kinds, arrows = emb.arithmetic_points(tok, matrix, result, n_nearest=2)
    assert names[:4] == ["king", "man", "woman", "result"]
    assert kinds.count("nearest") == 2 and "expected" not in kinds  # queen is already among the nearest
    assert arrows == [(0, 3, "the whole offset"), (1, 2, "man → woman")]
    np.testing.assert_allclose(points[3] - points[0], points[2] - points[1], atol=1e-6)


def test_contexts_on_a_tiny_model_match_manual_cosines(tiny_lm) -> None:
    texts = ["The spy was a mole.", "A mole dug here."]
    caps = [tiny_lm.capture(t) for t in texts]
    positions = [emb.word_positions(tiny_lm.tokenizer, t, "mole")[0] for t in texts]
    for cap, p in zip(caps, positions):
        assert cap.tokens[p].endswith("mole")
    result = emb.compare_contexts([c.residual for c in caps], positions)
    a, b = caps[0].residual[:, positions[0]], caps[1].residual[:, positions[1]]  # (L+1, D)
    manual = [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b)]
    np.testing.assert_allclose(result.pairs[(0, 1)], manual, rtol=1e-5)
    proj, paths = emb.project_paths(result.vectors.transpose(1, 0, 2), 2)
    assert paths.shape == (tiny_lm.summary.n_layers + 1, 2, 2) and np.isfinite(paths).all()


def test_math_and_drawing_floors_do_not_import_streamlit() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    for name in ("model/analyses/embeddings.py", "viz/embeddings.py", "viz/meaning.py"):
        assert "streamlit" not in (root / name).read_text()


def test_reference_words_at_any_depth_match_the_model_run_directly(tiny_lm) -> None:
    """A reference word read after the lead-in: at every depth its vector is the transformers model's
    own hidden state there (an independent forward pass), and never at the sink position 0."""
    import torch

    ids, start = emb.reference_ids(tiny_lm.tokenizer, "king")
    assert start >= 1 and ids[start:] == emb.word_ids(tiny_lm.tokenizer, "king")
    cap = tiny_lm.capture_ids(ids)
    with torch.no_grad():
        hidden = tiny_lm.model(torch.tensor([ids]), output_hidden_states=True).hidden_states  # L+1 x (1, T, D)
    n_layers = tiny_lm.summary.n_layers
    for depth in range(n_layers):  # the last hidden state has the final norm applied: not the stream
        placed = emb.word_at_depth(tiny_lm.tokenizer, "king", cap.residual, start, depth)
        expected = hidden[depth][0, start:].double().mean(0).numpy()
        np.testing.assert_allclose(placed.vector, expected, rtol=1e-4, atol=1e-5)
    assert placed.word == "king" and placed.token_ids == tuple(ids[start:])
    with pytest.raises(ValueError):
        emb.reference_ids(tiny_lm.tokenizer, "  ")


def test_a_reference_word_at_the_embedding_is_its_table_row(default_lm) -> None:
    ids, start = emb.reference_ids(default_lm.tokenizer, "queen")
    placed = emb.word_at_depth(default_lm.tokenizer, "queen", default_lm.capture_ids(ids).residual, start, 0)
    table = emb.word_vector(default_lm.tokenizer, default_lm.embedding_matrix, "queen")
    np.testing.assert_allclose(placed.vector, table.vector, rtol=1e-5, atol=1e-6)  # no position vectors
