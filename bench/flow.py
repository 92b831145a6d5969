"""The information-flow graph, timed: the default model at 64 tokens, from a cached capture to the
figure's JSON (the recording pass, the checks, pruning with the edge weights it needs, drawing). Median of REPEATS after a
warm-up. `python -m bench.flow` runs just this row.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from model import LanguageModel
from model.analyses.flow import flow_graph
from model.analyses.flow_graph import DEFAULT_THRESHOLD, flow_paths
from viz.flow import flow_figure

N_TOKENS, REPEATS, TARGET_S = 64, 5, 3.0
TEXT = Path(__file__).with_name("text.txt")


@dataclass(frozen=True)
class FlowResult:
    graph_s: float  # median: recording pass + checks + MLP edges
    figure_s: float  # median: pruning at the default threshold (weighing the states on its routes) + figure + JSON
    edges: int  # edges kept at the default threshold, predicting from the last token
    cpu_s: float  # median process CPU time of the whole (all threads): what other load inflates little

    @property
    def total_s(self) -> float:
        return self.graph_s + self.figure_s


def time_flow(lm: LanguageModel, token_ids: list[int]) -> FlowResult:
    cap = lm.capture_ids(token_ids[:N_TOKENS])
    graph_s, figure_s, cpu_s, edges = [], [], [], 0
    for _ in range(REPEATS + 1):  # the first is the warm-up
        start, cpu = time.perf_counter(), time.process_time()
        graph = flow_graph(lm, cap)
        middle = time.perf_counter()
        paths = flow_paths(graph, cap.n_tokens - 1, DEFAULT_THRESHOLD)
        flow_figure(paths).to_json()
        graph_s.append(middle - start)
        figure_s.append(time.perf_counter() - middle)
        cpu_s.append(time.process_time() - cpu)
        edges = len(paths.edges)
    return FlowResult(statistics.median(graph_s[1:]), statistics.median(figure_s[1:]), edges,
                      statistics.median(cpu_s[1:]))


def main() -> None:
    from model import load_model

    lm = load_model()
    r = time_flow(lm, lm.tokenizer(TEXT.read_text())["input_ids"])
    print(f"information flow at {N_TOKENS} tokens: graph {r.graph_s:.2f} s + figure {r.figure_s:.2f} s = "
          f"{r.total_s:.2f} s wall, {r.cpu_s:.2f} s CPU ({r.edges} edges kept); target <= {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
