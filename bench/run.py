"""The benchmark, one run: forward passes four ways at 16-1024 tokens, temperature, pages, activation
patching, memory and cold start, then felt latency in a browser (bench/felt.py); prints the table with every target
and rewrites the results blocks of README.md.

Run from the repository root: `make bench` (or `.venv/bin/python bench/run.py`).
"""
from __future__ import annotations

import datetime as dt
import gc
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never wait on the network
# Before torch loads OpenMP: spinning worker threads made every pass ~10x slower on a shared machine
# (measured: 64 tokens 7.9 s spinning vs 1.0 s passive at load 12 on 2 cores). Children inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench import coldstart, flow, incremental, interactive, memory, patching, report  # noqa: E402
from bench.forward import ROWS, time_forwards  # noqa: E402
from bench.report import Check  # noqa: E402

README = Path(__file__).with_name("README.md")
TEXT = Path(__file__).with_name("text.txt")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def log(message: str) -> None:
    print(message, flush=True)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def forward_section(lm, ids) -> tuple[list[str], list[Check], float]:
    log("Rows 1-4: forward passes (interleaved) ...")
    fwd = time_forwards(lm, ids, log)
    lines = ["### Rows 1-4: one forward pass (median wall ms, GFLOP/s in brackets)", ""]
    lines += report.forward_table(fwd)
    lines += ["", "The same passes in process CPU time (all threads; what other load on the machine "
              "cannot inflate much):", ""] + report.forward_table(fwd, cpu=True)
    lines += ["", f"FLOPs formula: {fwd.flops_formula}.", f"TransformerLens: {fwd.notes[ROWS[3]]}.", ""]
    checks = report.forward_checks(fwd) + report.forward_checks(fwd, cpu=True)
    return lines, checks, fwd.seconds[(ROWS[0], 256)]


def incremental_section(lm, ids) -> tuple[list[str], list[Check]]:
    log("Prefix-incremental capture ...")
    r = incremental.time_incremental(lm, ids, log)
    lines = ["### Prefix-incremental capture (median wall)", "",
             f"- append 1 token to a cached {incremental.PREFIX}-token capture: **{r.append_ms:.1f} ms**, "
             f"full capture of the same ids {r.full_ms:.1f} ms ({r.ratio:.2f}x)",
             f"- {incremental.GENERATE_STEPS} greedy Generate steps at {incremental.GENERATE_CONTEXT} tokens: "
             f"**{r.generate_s:.2f} s**", ""]
    checks = [Check("append one token vs full capture (64 tokens)", f"{r.ratio:.2f}x", "<= 0.25x", r.ratio <= 0.25),
              Check("12 greedy Generate steps at ~20 tokens", f"{r.generate_s:.2f} s", "<= 3 s", r.generate_s <= 3)]
    return lines, checks


def flow_section(lm, ids) -> tuple[list[str], list[Check]]:
    log("Information flow graph ...")
    r = flow.time_flow(lm, ids)
    lines = ["### Information flow graph (median wall)", "",
             f"- {flow.N_TOKENS} tokens, from a cached capture: recording pass + every edge weight "
             f"{r.graph_s:.2f} s, pruning + figure + JSON {r.figure_s:.2f} s: **{r.total_s:.2f} s** "
             f"({r.cpu_s:.2f} s process CPU time; {r.edges} edges kept at the default threshold)", ""]
    name = f"information flow graph at {flow.N_TOKENS} tokens"
    return lines, [Check(name, f"{r.total_s:.2f} s", f"<= {flow.TARGET_S:.0f} s", r.total_s <= flow.TARGET_S),
                   Check(f"{name} (CPU time)", f"{r.cpu_s:.2f} s", f"<= {flow.TARGET_S:.0f} s",
                         r.cpu_s <= flow.TARGET_S)]


def temperature_section(lm, ids) -> tuple[list[str], list[Check]]:
    log("Row 5: temperature change over cached logits ...")
    tr = interactive.time_temperature(lm, ids)
    interactive.time_temperature_apptest(tr, ids, lm)
    app = "n/a" if tr.apptest_ms is None else f"{tr.apptest_ms:.0f} ms, {tr.apptest_calls} model calls"
    lines = ["### Row 5: temperature change (server side)", "",
             f"- cached logits -> bars figure JSON: **{tr.median_ms:.1f} ms** median wall "
             f"({tr.cpu_ms:.1f} ms process CPU time) over "
             f"{len(interactive.TEMPERATURES)} temperatures; timed: {tr.how}.",
             f"- model forward calls counted meanwhile (pre-hook on lm.model): **{tr.model_calls}**",
             f"- whole Next-token page rerun after moving the slider in AppTest (upper bound; the page "
             f"uses a fragment): {app} {tr.apptest_note}".rstrip(), ""]
    calls_ok = tr.model_calls == 0 and tr.apptest_calls in (0, None)
    checks = [Check("temperature change, full vocabulary", f"{tr.median_ms:.1f} ms", "<= 20 ms", tr.median_ms <= 20),
              Check("temperature change, full vocabulary (CPU time)", f"{tr.cpu_ms:.1f} ms", "<= 20 ms",
                    tr.cpu_ms <= 20),
              Check("model calls on a temperature change", f"{tr.model_calls} / {tr.apptest_calls}", "0", calls_ok)]
    return lines, checks


def pages_section(lm, ids, forward_256: float) -> tuple[list[str], list[Check]]:
    log("Row 6: every page through AppTest ...")
    pr = interactive.time_pages(lm, ids)
    budget_ms = 0.5 * 1000 * forward_256
    rows, checks = [], []
    for p in pr.pages:
        def cell(v, fmt="{:,.0f}"):
            return "n/a" if v is None else fmt.format(v)
        ratio = cell(p.rebuild_ms and p.rebuild_ms / (1000 * forward_256), "{:.2f}x")
        rows.append([p.title, cell(p.edit_ms), cell(p.rebuild_ms), ratio,
                     cell(p.bytes_sent and p.bytes_sent / 1e6, "{:.3f}"), str(p.charts), str(p.model_calls), p.error or "-"])
        checks.append(Check(f"page '{p.title}' figures vs 0.5x forward at 256", cell(p.rebuild_ms, "{:.0f} ms"),
                            f"<= {budget_ms:.0f} ms", None if p.rebuild_ms is None else p.rebuild_ms <= budget_ms))
        checks.append(Check(f"page '{p.title}' bytes sent at 256", cell(p.bytes_sent and p.bytes_sent / 1e6, "{:.3f} MB"),
                            "<= 5 MB", None if p.bytes_sent is None else p.bytes_sent <= 5e6))
    header = ["page", "prompt edit -> figures ms", "rerun, capture cached ms", "rerun / bare forward@256",
              "MB sent", "charts", "model calls in rerun", "error"]
    lines = [f"### Row 6: pages at {pr.n_tokens} tokens (AppTest, server side)", "",
             "Prompt edit = new prompt typed, page run including the capture; rerun = same prompt again "
             "(capture cached), i.e. building every figure of the page plus Streamlit's own script time "
             "(best of 3). Bytes = serialized size of every element the page sends (plotly specs, "
             "tables, html).", ""]
    return lines + report.markdown_rows(header, rows) + [""], checks


def patching_section(lm) -> tuple[list[str], list[Check]]:
    log("Activation patching: residual heatmaps at 16 tokens, attribution patching, every view ...")
    return patching.section(lm, log)


def memory_section() -> tuple[list[str], list[Check]]:
    log("Row 7: peak memory in fresh processes ...")
    one = memory.run_subprocess("capture", "1024")
    many = memory.run_subprocess("cache", "512", "10")
    lines = ["### Row 7: peak resident memory (ru_maxrss, fresh process each)", ""]
    if "error" in one:
        lines.append(f"- 1024-token capture: failed: {one['error']}")
    else:
        lines.append(f"- one 1024-token capture: ru_maxrss **{one['peak_mb']:,.0f} MB**, VmHWM {one['hwm_mb']:,.0f} MB "
                     f"(after loading the model {one['after_load_mb']:,.0f} MB; the capture's arrays "
                     f"{one['capture_mb']:,.0f} MB; ru_maxrss at the child's first line, inherited from the "
                     f"parent across fork+exec: {one['inherited_mb']:,.0f} MB)")
    if "error" in many:
        lines.append(f"- ten 512-token prompts through CaptureCache: failed: {many['error']}")
    else:
        lines.append(f"- ten different 512-token prompts through CaptureCache: budget {many['budget_mb']:,.0f} MB, "
                     f"final cache {many['final_mb']:,.0f} MB ({many['kept']} kept of {many['computed']} computed), "
                     f"largest seen {many['max_mb']:,.0f} MB, process peak ru_maxrss **{many['peak_mb']:,.0f} MB** "
                     f"(VmHWM {many['hwm_mb']:,.0f} MB)")
    checks = [Check("peak RSS, one 1024-token capture", f"{one.get('peak_mb', 0):,.0f} MB", "< 4096 MB",
                    None if "error" in one else one["peak_mb"] < 4096),
              Check("capture cache within its budget", f"{many.get('max_mb', 0):,.0f} MB of {many.get('budget_mb', 0):,.0f} MB",
                    "<= budget", None if "error" in many else many["max_mb"] <= many["budget_mb"])]
    return lines + [""], checks


def coldstart_section() -> tuple[list[str], list[Check]]:
    log("Row 8: cold start ...")
    cs = coldstart.measure()
    text = (f"**{cs.seconds:.1f} s** from `streamlit run` to the first chart/token strip on `{cs.url}` "
            f"(server healthy after {cs.health_seconds:.1f} s; the server process had used {cs.cpu_seconds:.1f} s "
            f"of CPU by then, which other load on the machine cannot inflate)") if cs.seconds else f"failed: {cs.error}"
    lines = ["### Row 8: cold start (default model already converted)", "", f"- {text}", ""]
    return lines, [Check("cold start to first chart", "n/a" if cs.seconds is None else f"{cs.seconds:.1f} s",
                         "<= 8 s", None if cs.seconds is None else cs.seconds <= 8)]  # issue 15


def felt_section() -> list[Check]:
    """Felt latency in the browser (bench/felt.py writes its own block of README.md)."""
    from bench import felt

    log("Felt latency: headless Chromium against streamlit run app.py ...")
    _, checks = felt.run(repeats=5)
    return checks


def write_readme(block: list[str]) -> None:
    """Replace only the generated block; the hand-written text around it stays."""
    text = README.read_text() if README.exists() else f"# Benchmark\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1] if END in rest else ""
    README.write_text(before + START + "\n" + "\n".join(block) + "\n" + END + after)


def main() -> None:
    from model import load_model

    began, load_before = time.perf_counter(), _load()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    memory_lines, memory_checks = memory_section()  # first, while this parent process is still small
    lm = load_model()
    ids = lm.tokenizer(TEXT.read_text())["input_ids"]
    block, checks = [f"## Results of {stamp}", ""], []
    block += [f"- {k}: {v}" for k, v in report.machine().items()]
    block += [f"- model: {lm.name}, {lm.device}, {lm.dtype_name}; "
              f"prompt text: bench/text.txt ({len(ids)} tokens), cut to N tokens", ""]
    lines, c, forward_256 = forward_section(lm, ids)
    block, checks = block + lines, checks + c
    for lines, c in (incremental_section(lm, ids), flow_section(lm, ids), temperature_section(lm, ids),
                     pages_section(lm, ids, forward_256), patching_section(lm)):
        block, checks = block + lines, checks + c
    del lm
    gc.collect()
    block, checks = block + memory_lines, checks + memory_checks
    lines, c = coldstart_section()
    block, checks = block + lines, checks + c
    checks += felt_section()
    block += ["### Targets (ratios from this same run)", ""] + report.checks_markdown(checks)
    block += ["", f"Load average (1, 5, 15 min) at start: {load_before}; at end: {_load()}. "
              f"Whole run: {time.perf_counter() - began:.0f} s.", ""]
    write_readme(block)
    log("\n" + "\n".join(block))
    log("\n" + report.table_text([["target", "measured", "limit", "verdict"]]
                                 + [[c.name, c.measured, c.target, c.verdict] for c in checks]))


if __name__ == "__main__":
    main()
