"""Figures for issue 10's closing note, on the embedded default model: the top neurons of the last
block's MLP for " Paris" after "The capital of France is" (with the tokens each promotes), and the
heads that most separate " Mary" from " John" on the indirect-object prompt. Also times the
on-demand MLP recording against a plain capture.

    .venv/bin/python bench/mlp_facts.py [--time]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import load_model  # noqa: E402
from model.analyses.attribution import direct_logit_attribution, readout  # noqa: E402
from model.analyses.head_attribution import head_attribution, head_outputs  # noqa: E402
from model.analyses.mlp import block_neurons, record_mlp  # noqa: E402
from model.analyses.neurons import neuron_effects, neuron_vocab  # noqa: E402
from model.core.tokens import readable_tokens  # noqa: E402


def single_token(lm, text: str) -> int:
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise SystemExit(f"{text!r} is {len(ids)} tokens")
    return ids[0]


def paris_neurons(lm) -> None:
    cap = lm.capture("The capital of France is")
    pos, layer = cap.n_tokens - 1, cap.summary.n_layers - 1
    paris = single_token(lm, " Paris")
    print(f"top prediction: {readable_tokens(lm.tokenizer, [int(np.argmax(cap.logits[pos]))])[0]!r}; "
          f"logit(Paris) = {cap.logits[pos, paris]:.3f}")
    acts = record_mlp(lm, cap.token_ids.tolist(), [layer])
    attr = direct_logit_attribution(lm, cap, pos, paris)
    eff = neuron_effects(lm, block_neurons(lm, acts, layer)[pos], layer, pos, readout(lm, cap, pos, paris))
    print(f"block {layer} MLP bar: {attr.mlp[layer]:+.3f}; neurons sum + bias: {eff.total:+.3f}")
    for n in np.argsort(-eff.effects)[:3]:
        vocab = neuron_vocab(lm, layer, int(n), k=8)
        up, down = (readable_tokens(lm.tokenizer, ids.tolist()) for ids in (vocab.promoted, vocab.suppressed))
        here = up if eff.activations[n] > 0 else down  # a negative activation writes the column reversed
        print(f"  neuron {n}: activation {eff.activations[n]:+.3f}, direct effect {eff.effects[n]:+.3f}\n"
              f"    column promotes {up}\n    column suppresses {down}\n    so here it pushes up {here}")


def ioi_heads(lm) -> None:
    cap = lm.capture("When Mary and John went to the store, John gave a drink to")
    pos = cap.n_tokens - 1
    mary, john = single_token(lm, " Mary"), single_token(lm, " John")
    order = np.argsort(-cap.logits[pos])
    top = readable_tokens(lm.tokenizer, order[:5].tolist())
    print(f"rank of John: {int(np.flatnonzero(order == john)[0]) + 1}")
    print(f"top-5: {top}; logit(Mary) - logit(John) = {cap.logits[pos, mary] - cap.logits[pos, john]:+.3f}")
    attr = direct_logit_attribution(lm, cap, pos, mary, versus=john)
    heads = head_attribution(lm, head_outputs(lm, cap, pos), pos, readout(lm, cap, pos, mary, versus=john))
    print(f"max |heads sum + bias - attention bar| = {np.abs(heads.layers - attr.attn).max():.2e}")
    for layer, head, value in heads.top(6):
        print(f"  block {layer} head {head}: {value:+.3f}")


def timing(lm) -> None:
    text = (Path(__file__).parent / "text.txt").read_text()
    ids = lm.tokenizer(text)["input_ids"][:256]
    for name, run in (("capture_ids (256 tokens)", lambda: lm.capture_ids(ids)),
                      ("record_mlp all blocks (256 tokens)", lambda: record_mlp(lm, ids, range(lm.summary.n_layers))),
                      ("record_mlp one block (256 tokens)", lambda: record_mlp(lm, ids, [lm.summary.n_layers - 1]))):
        run()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(f"{name}: median {sorted(times)[1]:.3f} s")


if __name__ == "__main__":
    lm = load_model()
    paris_neurons(lm)
    ioi_heads(lm)
    if "--time" in sys.argv:
        timing(lm)
