"""Geometry of token vectors: PCA planes, cosine similarity, nearest vocabulary tokens, word lookups
in the embedding matrix and vector arithmetic on it. Plain numpy (+ scikit-learn PCA), no UI.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from ..core.tokens import readable_tokens

_EPS = 1e-12
CANCELLED = 1e-6  # a result this short, next to its longest term, is the zero vector up to rounding
MAX_FIT_POINTS = 4096  # a PCA basis is fitted on at most this many vectors (an even sample beyond)


@dataclass(frozen=True)
class Projection:
    """A PCA basis fitted on some points, and those points' coordinates in it."""

    coords: np.ndarray  # (N, k) the fitted points in the basis
    explained: np.ndarray  # (k,) fraction of the variance each axis explains (0 for padded axes)
    components: np.ndarray  # (k, D) unit axes (zero rows for padded axes)
    mean: np.ndarray  # (D,) centre of the fitted points

    def transform(self, points: np.ndarray) -> np.ndarray:
        """Coordinates (N, k) of other points (N, D) in the same basis."""
        return (np.asarray(points, dtype=np.float64) - self.mean) @ self.components.T


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (zero rows stay zero), so no huge vector dominates. (N, D)"""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, _EPS)


def fit_pca(points: np.ndarray, n_components: int = 2) -> Projection:
    """PCA of points (N, D) to n_components axes; axes beyond what N points allow are zero-padded."""
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"PCA needs at least 2 points as an (N, D) array, got shape {x.shape}")
    usable = min(n_components, x.shape[0] - 1, x.shape[1])
    solver = "covariance_eigh" if x.shape[0] > x.shape[1] else "full"  # both exact; eigh is fast for tall x
    pca = PCA(n_components=usable, svd_solver=solver).fit(x)
    components = np.zeros((n_components, x.shape[1]))  # (k, D)
    components[:usable] = pca.components_
    explained = np.zeros(n_components)  # (k,)
    explained[:usable] = pca.explained_variance_ratio_
    coords = (x - pca.mean_) @ components.T  # (N, k)
    return Projection(coords, explained, components, pca.mean_)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis: (..., D) x (..., D) -> (...)."""
    return np.sum(unit_rows(a) * unit_rows(b), axis=-1)


def cosine_to_matrix(vector: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine of one vector (D,) with every row of a matrix (V, D) -> (V,)."""
    m = np.asarray(matrix, dtype=np.float32)
    v = np.asarray(vector, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1) * max(float(np.linalg.norm(v)), _EPS)
    return (m @ v) / np.maximum(norms, _EPS)


def nearest_tokens(vector: np.ndarray, matrix: np.ndarray, k: int = 10, exclude=()) -> list[tuple[int, float]]:
    """The k rows of matrix (V, D) closest to vector (D,) by cosine, skipping ids in exclude."""
    scores = cosine_to_matrix(vector, matrix)  # (V,)
    skip = {int(i) for i in exclude}
    order = np.argsort(-scores, kind="stable")[: k + len(skip)]
    return [(int(i), float(scores[i])) for i in order if int(i) not in skip][:k]


def rank_of(token_id: int, vector: np.ndarray, matrix: np.ndarray, exclude=()) -> int:
    """1-based rank of token_id among all rows by cosine to vector, not counting excluded ids."""
    scores = cosine_to_matrix(vector, matrix)  # (V,)
    skip = np.array(sorted({int(i) for i in exclude} - {int(token_id)}), dtype=np.int64)
    better = scores > scores[token_id]
    if skip.size:
        better[skip] = False
    return int(better.sum()) + 1


@dataclass(frozen=True)
class WordVector:
    """A word placed from the embedding matrix: its token ids and their mean vector."""

    word: str
    token_ids: tuple[int, ...]
    pieces: tuple[str, ...]  # visible text of each token
    vector: np.ndarray  # (D,) the token's embedding, or the mean over its tokens

    @property
    def note(self) -> str:
        """How the vector was made, in words (for hovers and tables)."""
        if len(self.token_ids) == 1:
            return f"one token: {self.pieces[0]}"
        return f"{len(self.token_ids)} tokens ({' + '.join(self.pieces)}): mean of their vectors"


def word_ids(tokenizer, word: str) -> list[int]:
    """Token ids for a word as it appears mid-sentence: ' word' if that is one token, else 'word'
    if that is one token, else the pieces of ' word'."""
    text = word.strip()
    candidates = [" " + text, text]
    encoded = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in candidates]
    for ids in encoded:
        if len(ids) == 1:
            return list(ids)
    return list(encoded[0])


def word_vector(tokenizer, matrix: np.ndarray, word: str) -> WordVector:
    """Place a word with the model's own embedding matrix (V, D); ValueError if it has no tokens."""
    ids = word_ids(tokenizer, word)
    if not ids or not word.strip():
        raise ValueError(f"'{word}' gives no tokens")
    vector = np.asarray(matrix[ids], dtype=np.float64).mean(axis=0)  # (D,)
    return WordVector(word.strip(), tuple(ids), tuple(readable_tokens(tokenizer, ids)), vector)


REFERENCE_LEAD = "A word:"  # read before a reference word, so the word is never the first token (the sink)


def reference_ids(tokenizer, word: str) -> tuple[list[int], int]:
    """Token ids of REFERENCE_LEAD followed by the word (its tokens as word_ids chooses them), and the
    position where the word starts: what the model reads to place a reference word at any depth."""
    if not word.strip():
        raise ValueError(f"'{word}' gives no tokens")
    lead = list(tokenizer(REFERENCE_LEAD, add_special_tokens=True)["input_ids"])
    return lead + word_ids(tokenizer, word), len(lead)


def word_at_depth(tokenizer, word: str, residual: np.ndarray, start: int, depth: int) -> WordVector:
    """A reference word placed at one depth: the mean of its tokens' residual vectors (L+1, T, D) from
    `start` on, as the model read it after REFERENCE_LEAD. At the embedding this is the table row
    (plus position vectors, for models that add them)."""
    ids = word_ids(tokenizer, word)
    vector = np.asarray(residual[depth, start:start + len(ids)], dtype=np.float64).mean(axis=0)  # (D,)
    return WordVector(word.strip(), tuple(ids), tuple(readable_tokens(tokenizer, ids)), vector)


def parse_words(text: str) -> list[str]:
    """Comma-separated words, stripped, empty ones dropped, duplicates removed in order."""
    return list(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))


def parse_expression(text: str) -> list[tuple[int, str]]:
    """'king - man + woman' -> [(+1, 'king'), (-1, 'man'), (+1, 'woman')]; ValueError if empty."""
    terms = [(-1 if sign == "-" else 1, word.strip()) for sign, word in re.findall(r"([+-]?)\s*([^+-]+)", text)]
    terms = [t for t in terms if t[1]]
    if not terms:
        raise ValueError("Type an expression such as: king - man + woman")
    return terms


@dataclass(frozen=True)
class Arithmetic:
    """The result of adding and subtracting word vectors, and the tokens nearest to it."""

    terms: list[tuple[int, WordVector]]  # (sign, word) in the order typed
    result: np.ndarray  # (D,) sum of signed vectors
    nearest: list[tuple[int, float]]  # (token id, cosine), input tokens excluded
    excluded: tuple[int, ...]  # the input words' token ids and their one-token spelling variants
    expected: WordVector | None = None
    expected_rank: int | None = None  # 1-based among all tokens except the inputs
    expected_cosine: float | None = None
    expected_typed: bool = False  # the expected word is an input (or a spelling of one): left out, so no rank


def spelling_variants(word: str) -> list[str]:
    """The same word as it may stand in a text: as typed, lower case, capitalised; each with and without
    the leading space most tokenizers fold into a word's token."""
    text = word.strip()
    cases = dict.fromkeys([text, text.lower(), text[:1].upper() + text[1:], text[:1].lower() + text[1:]])
    return [form for case in cases for form in (" " + case, case)]


def variant_ids(tokenizer, wv: WordVector) -> set[int]:
    """A typed word's own tokens plus every spelling variant that is one token: the ids the arithmetic
    leaves out, so 'Paris' never answers for ' Paris'. Pieces of several-token variants stay in."""
    ids = set(wv.token_ids)
    for form in spelling_variants(wv.word):
        encoded = tokenizer(form, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(int(encoded[0]))
    return ids


def vector_arithmetic(tokenizer, matrix: np.ndarray, expression: str, expected: str = "", k: int = 10) -> Arithmetic:
    """Evaluate 'a - b + c' on the embedding matrix (V, D); nearest tokens by cosine, inputs excluded."""
    terms = [(sign, word_vector(tokenizer, matrix, word)) for sign, word in parse_expression(expression)]
    result = np.sum([sign * wv.vector for sign, wv in terms], axis=0)  # (D,)
    if np.linalg.norm(result) <= CANCELLED * max(float(np.linalg.norm(wv.vector)) for _, wv in terms):
        raise ValueError("The words cancel out: the result is the zero vector, which points in no direction, "
                         "so no token is nearer to it than any other.")
    excluded = tuple(sorted({i for _, wv in terms for i in variant_ids(tokenizer, wv)}))
    nearest = nearest_tokens(result, matrix, k, exclude=excluded)
    if not expected.strip():
        return Arithmetic(terms, result, nearest, excluded)
    target = word_vector(tokenizer, matrix, expected)
    typed = len(target.token_ids) == 1 and target.token_ids[0] in excluded
    if len(target.token_ids) == 1 and not typed:
        rank = rank_of(target.token_ids[0], result, matrix, exclude=excluded)
    else:
        rank = None  # a multi-token word is no single row of the matrix, an input is not ranked: only a cosine
    return Arithmetic(terms, result, nearest, excluded, target, rank, float(cosine(result, target.vector)), typed)


def word_positions(tokenizer, prompt: str, word: str) -> list[int]:
    """Position of the last token of each whole-word occurrence of word in prompt (case-insensitive)."""
    target = word.strip()
    if not target:
        return []
    ends = [m.end() for m in re.finditer(rf"(?<!\w){re.escape(target)}(?!\w)", prompt, flags=re.IGNORECASE)]
    spans = _token_spans(tokenizer, prompt)
    positions = []
    for end in ends:
        hits = [i for i, (s, e) in enumerate(spans) if s <= end - 1 < e]
        if hits:
            positions.append(hits[-1])
    return positions


def _token_spans(tokenizer, prompt: str) -> list[tuple[int, int]]:
    """Character span of each token of the prompt (as the model encodes it, specials included)."""
    try:
        enc = tokenizer(prompt, add_special_tokens=True, return_offsets_mapping=True)
        return [(int(s), int(e)) for s, e in enc["offset_mapping"]]
    except (NotImplementedError, TypeError, KeyError):
        ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        spans, start = [], 0
        for i in range(len(ids)):  # slow path for tokenizers without offsets: decode prefixes
            end = len(tokenizer.decode(ids[: i + 1], skip_special_tokens=True, clean_up_tokenization_spaces=False))
            spans.append((start, max(start, end)))
            start = max(start, end)
        return spans


def prepare(vectors: np.ndarray, normalize: bool) -> np.ndarray:
    """Vectors as float64, each scaled to length 1 when normalize (residual norms grow with depth)."""
    return unit_rows(vectors) if normalize else np.asarray(vectors, dtype=np.float64)


def project_paths(paths: np.ndarray, n_components: int = 2, normalize: bool = True,
                  fit_on: np.ndarray | None = None) -> tuple[Projection, np.ndarray]:
    """One PCA basis for vectors at every layer: fit on fit_on (N, D) (default: the paths themselves;
    an even sample of MAX_FIT_POINTS when larger), then project paths (L+1, P, D) -> (L+1, P, k)."""
    n_layers, n_paths, d = paths.shape
    basis_points = paths.reshape(-1, d) if fit_on is None else fit_on
    if len(basis_points) > MAX_FIT_POINTS:
        basis_points = basis_points[np.linspace(0, len(basis_points) - 1, MAX_FIT_POINTS).astype(int)]
    proj = fit_pca(prepare(basis_points, normalize), n_components)
    coords = proj.transform(prepare(paths.reshape(-1, d), normalize))  # (L+1 * P, k)
    return proj, coords.reshape(n_layers, n_paths, n_components)


def pairwise_layer_cosines(vectors: list[np.ndarray]) -> dict[tuple[int, int], np.ndarray]:
    """Cosine at every layer between each pair of per-layer vectors [(L+1, D), ...] -> {(i, j): (L+1,)}."""
    return {(i, j): cosine(vectors[i], vectors[j]) for i in range(len(vectors)) for j in range(i + 1, len(vectors))}


def baseline_layer_cosines(target: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Mean cosine at every layer between one vector (L+1, D) and other tokens (L+1, N, D) -> (L+1,).
    A yardstick: how similar unrelated vectors already are at that depth."""
    return cosine(target[:, None, :], others).mean(axis=1)


@dataclass(frozen=True)
class ContextComparison:
    """One word read in several contexts: its vector at every layer, and how alike they are."""

    vectors: np.ndarray  # (C, L+1, D) the word's residual vector in each context, every layer
    pairs: dict[tuple[int, int], np.ndarray]  # (i, j) -> (L+1,) cosine between contexts i and j
    baseline: np.ndarray  # (L+1,) mean cosine between the word and other tokens of other contexts


def compare_contexts(residuals: list[np.ndarray], positions: list[int]) -> ContextComparison:
    """Residuals [(L+1, T_c, D)] and the word's position in each -> per-layer similarities.
    The yardstick skips position 0 (the attention sink) and the word itself."""
    vectors = np.stack([r[:, p] for r, p in zip(residuals, positions)])  # (C, L+1, D)
    yardsticks = []
    for i in range(len(residuals)):
        others = [r[:, [t for t in range(1, r.shape[1]) if t != p]] for j, (r, p) in
                  enumerate(zip(residuals, positions)) if j != i]
        others = [o for o in others if o.shape[1]]
        if others:
            yardsticks.append(baseline_layer_cosines(vectors[i], np.concatenate(others, axis=1)))
    baseline = np.mean(yardsticks, axis=0) if yardsticks else np.full(vectors.shape[1], np.nan)
    return ContextComparison(vectors, pairwise_layer_cosines(list(vectors)), baseline)


def arithmetic_points(tokenizer, matrix: np.ndarray, arith: Arithmetic, n_nearest: int = 8
                      ) -> tuple[np.ndarray, list[str], list[str], list[tuple[int, int, str]]]:
    """What to draw for an arithmetic: points (N, D), names, kinds, and arrows (from, to, name).
    Arrows: first word -> result (the whole offset), each subtracted word -> the word added after it."""
    points, names, kinds = [], [], []

    def add(vector: np.ndarray, name: str, kind: str) -> None:
        points.append(np.asarray(vector, dtype=np.float64))
        names.append(name)
        kinds.append(kind)

    for _, wv in arith.terms:
        add(wv.vector, wv.word, "input")
    result_at = len(points)
    add(arith.result, "result", "result")
    near_ids = [i for i, _ in arith.nearest[:n_nearest]]
    for i, text in zip(near_ids, readable_tokens(tokenizer, near_ids)):
        add(matrix[i], text, "nearest")
    if arith.expected is not None and not set(arith.expected.token_ids) <= set(near_ids):
        add(arith.expected.vector, arith.expected.word, "expected")
    minus = [n for n, (s, _) in enumerate(arith.terms) if s < 0]
    plus = [n for n, (s, _) in enumerate(arith.terms) if s > 0][1:]
    arrows = [(0, result_at, "the whole offset")]
    arrows += [(m, p, f"{names[m]} → {names[p]}") for m, p in zip(minus, plus)]
    return np.stack(points), names, kinds, arrows  # points (N, D)
