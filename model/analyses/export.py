"""Export a Capture as one .npz file: every array plus the tokens and a JSON summary."""
from __future__ import annotations

import io
import json
from dataclasses import asdict

import numpy as np

from ..core.capture import Capture
from ..core.logits import RowStats


def capture_npz(cap: Capture, stats: RowStats) -> bytes:
    """The whole capture as .npz bytes (uncompressed: large captures save in well under a second), with
    every position's logit statistics (`LanguageModel.logit_stats`)."""
    meta = {
        "prompt": cap.prompt,
        "model_name": cap.model_name,
        "config": asdict(cap.summary),
        "device": cap.device,
        "dtype": cap.dtype,
        "seconds": cap.seconds,
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        tokens=np.array(cap.tokens, dtype=str),
        token_ids=cap.token_ids,
        attention=np.asarray(cap.attention),  # whole patterns: an XrayError past the budget (long prompts)
        residual=cap.residual,
        attn_out=cap.attn_out,
        mlp_out=cap.mlp_out,
        logits=cap.logits.rows,  # every row, or (long prompts) those from logits_first_position on
        logits_first_position=np.int64(cap.logits.start),
        logits_lse=stats.lse,
        logits_top_ids=stats.top_ids,
        logits_top=stats.top_logits,
        next_token_logits=stats.next_logit,  # NaN after the last position
        next_token_ranks=stats.next_rank,
        meta=np.array(json.dumps(meta)),
    )
    return buffer.getvalue()
