"""The temperature bars compute in the browser: their JavaScript math, run under node, must give the
same float64 numbers as model.analyses.sampling over the full vocabulary (ties to the lower id included)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from model.analyses.sampling import entropy_bits, probabilities, top_tokens
from pages.kit.temperature_bars import logits_payload
from viz.next_token import next_token_bars

DRIVER = Path(__file__).with_name("softmax_cases.mjs")
CASES = [(t, k, p) for t in (0.0, 0.05, 0.5, 1.0, 1.5, 2.0) for k, p in ((0, 1.0), (40, 1.0), (0, 0.9), (7, 0.5))]
CASES += [(0.7, 1, 1.0), (1.0, 0, 0.0), (1.3, 49_151, 0.99), (0.01, 3, 0.2)]

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(row: np.ndarray, n: int, tmp_path: Path) -> tuple[list[np.ndarray], dict]:
    ids = top_tokens(row, n)
    (tmp_path / "in.json").write_text(json.dumps(
        {"logits": logits_payload(row), "ids": ids.tolist(), "cases": [[t, k, p] for t, k, p in CASES]}))
    subprocess.run(["node", str(DRIVER), str(tmp_path / "in.json"), str(tmp_path)], check=True, timeout=120)
    probs = [np.fromfile(tmp_path / f"case_{i}.f64", dtype=np.float64) for i in range(len(CASES))]
    return probs, json.loads((tmp_path / "summary.json").read_text())


def check_against_sampling(row: np.ndarray, tmp_path: Path, n: int = 20) -> None:
    probs, summary = run_node(row, n, tmp_path)
    ids = top_tokens(row, n)
    assert ids.tolist() == top_tokens(probabilities(row, 1.0), n).tolist()  # sampling's order, ties to the lower id
    assert summary["order"] == ids.tolist()  # the browser's bars are the same tokens, in the same order
    for (t, k, p), js, numbers in zip(CASES, probs, summary["cases"]):
        want = probabilities(row, t, k or None, p if p < 1 else None)
        assert js.shape == want.shape == row.shape
        assert ((js > 0) == (want > 0)).all(), f"kept tokens differ at T={t} k={k} p={p}"
        np.testing.assert_allclose(js, want, rtol=0, atol=1e-12, err_msg=f"T={t} k={k} p={p}")
        bars = next_token_bars(row, n, t, k or None, p if p < 1 else None)
        np.testing.assert_allclose(numbers["probs"], bars.probs, rtol=0, atol=1e-12)
        assert abs(numbers["rest"] - bars.rest) < 1e-12
        assert abs(numbers["entropy"] - entropy_bits(want)) < 1e-9 and abs(numbers["entropy"] - bars.entropy) < 1e-9


def test_browser_math_matches_sampling_on_the_default_model(default_lm, tmp_path):
    cap = default_lm.capture("The capital of France is")
    row = cap.logits[-1]  # (49152,) float32
    assert row.size == 49_152
    check_against_sampling(row, tmp_path)


def test_browser_math_breaks_ties_like_sampling(tmp_path):
    """Integer-valued logits: many exact ties, at the top and at every top-k / top-p boundary."""
    row = np.random.default_rng(0).integers(-12, 6, size=5000).astype(np.float32)  # (5000,)
    row[[17, 3, 4000]] = 6.0  # a three-way tie for the top token
    check_against_sampling(row, tmp_path, n=12)
