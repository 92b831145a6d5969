"""Long work over a prompt set, run in parts: a progress bar with prompts done and time left, and a
Stop that keeps what is done. Stop is a button: its click reruns the page, which ends this run at its
next progress call; each part was stored in the session before that call, so the views draw the
prompts finished so far and say the run stopped. A finished run is also kept for every session (the
derived-result cache, bounded), keyed by model, set and view.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import streamlit as st

from model.analyses.sets.batches import Part
from model.core.keys import cache_key
from pages.kit import results

JOBS = "_set_jobs"  # session: job key -> Job
MAX_JOBS = 12  # results kept per session (a 500-prompt patching job is a few MB)


@dataclass
class Job:
    """One run's results so far: per prompt, per name."""

    total: int
    results: Part = field(default_factory=dict)
    done: int = 0
    finished: bool = False
    seconds: float = 0.0


def job(key: str) -> Job | None:
    """The job stored under key: this session's, finished or stopped, else one any session finished
    (the process's derived-result cache: a class opening the same set runs it once); None if neither."""
    mine = st.session_state.get(JOBS, {}).get(key)
    if mine is not None:
        return mine
    return results.result_cache().get(_shared(key))


def _shared(key: str) -> str:
    return cache_key("set_job", key)


def run(key: str, parts: Iterator[Part], total: int, label: str, count: Callable[[Part], int] = len) -> Job:
    """Run every part, storing each as it comes; `count(part)` is how far a part moves the bar."""
    jobs: dict[str, Job] = st.session_state.setdefault(JOBS, {})
    jobs.pop(key, None)
    while len(jobs) >= MAX_JOBS:
        jobs.pop(next(iter(jobs)))
    current = jobs[key] = Job(total)
    slot = st.empty()  # the bar and Stop go away together when the run ends
    bar_col, stop_col = slot.container().columns([5, 1])
    bar = bar_col.progress(0.0, text=f"{label}: 0 of {total:,} done…")
    stop_col.button("Stop", key=f"stop_{key}", help="Stop here and keep what is done.")
    began = time.perf_counter()
    for part in parts:
        for index, values in part.items():
            current.results.setdefault(index, {}).update(values)
        current.done = min(total, current.done + count(part))
        current.seconds = time.perf_counter() - began
        left = current.seconds / max(current.done, 1) * (total - current.done)
        bar.progress(current.done / max(total, 1),
                     text=f"{label}: {current.done:,} of {total:,} done, about {_duration(left)} left")
    current.finished = True
    results.result_cache().put(_shared(key), current)  # read-only from here on: other sessions may show it
    slot.empty()
    return current


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def stopped_note(found: Job) -> None:
    """Say when a job was stopped: its views are of the prompts done."""
    if not found.finished:
        st.warning(f"Stopped after {found.done:,} of {found.total:,}: what is shown is over those only. "
                   "Run it again for the whole set.")
