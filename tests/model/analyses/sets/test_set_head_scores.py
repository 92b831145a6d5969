"""Head-type scores per prompt of a set: each equals the Attention page's scores of that prompt's
capture, and a prompt that cannot test a kind gives NaN, not a score of 0."""
from __future__ import annotations

import numpy as np
from set_rows import rows

from model.analyses.head_scores import head_type_scores
from model.analyses.sets.head_scores import score_parts


def test_scores_equal_each_capture(tiny_lm):
    set_rows = rows(tiny_lm)
    results = {i: v for part in score_parts(tiny_lm, set_rows) for i, v in part.items()}
    for i, row in enumerate(set_rows):
        cap = tiny_lm.capture_ids(list(row.ids))
        expected = head_type_scores(np.asarray(cap.attention), cap.token_ids)
        for kind in ("previous", "duplicate", "induction"):
            got = results[i][f"score_{kind}"]
            if np.isnan(got).all():
                assert len(set(row.ids)) == len(row.ids)  # no repeated token: nothing to test
            else:
                assert np.allclose(got, expected[kind], atol=1e-5), (i, kind)
    repeats = [i for i, r in enumerate(set_rows) if len(set(r.ids)) < len(r.ids)]
    assert repeats and not np.isnan(results[repeats[0]]["score_induction"]).all()
