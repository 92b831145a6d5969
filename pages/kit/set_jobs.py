"""Long work over a prompt set, run in parts: a progress bar with prompts done and time left, and a
Stop that keeps what is done. Stop is a button: its click marks the run stopped and reruns the page,
whose views draw the prompts finished so far and say the run stopped, with a button to run it again.
The stopped run may still be computing a part (Streamlit starts the rerun without waiting for it): that
part is dropped, so what a stopped run shows never changes. A finished run is also kept for every
session (the derived-result cache, bounded), keyed by model, set and view.
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
    key: str = ""  # the job's key in the session
    results: Part = field(default_factory=dict)
    done: int = 0
    finished: bool = False
    stopped: bool = False  # Stop was pressed: no part is added after
    seconds: float = 0.0


def job(key: str) -> Job | None:
    """The job stored under key: this session's, finished or stopped, else one any session finished
    (the process's derived-result cache: a class opening the same set runs it once); None if neither. A run
    cut off without Stop (the person left the page) counts as not run: its view runs it again."""
    mine = st.session_state.get(JOBS, {}).get(key)
    if mine is not None and (mine.finished or mine.stopped):
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
    current = jobs[key] = Job(total, key)
    slot = st.empty()  # the bar and Stop go away together when the run ends
    bar_col, stop_col = slot.container().columns([5, 1])
    bar = bar_col.progress(0.0, text=f"{label}: 0 of {total:,} done…")
    stop_col.button("Stop", key=f"stop_{key}", help="Stop here and keep what is done.", on_click=_stop, args=(current,))
    began = time.perf_counter()
    for part in parts:
        if current.stopped:  # pressed while this part was computed: the page already shows what came before
            return current
        for index, values in part.items():
            current.results.setdefault(index, {}).update(values)
        current.done = min(total, current.done + count(part))
        current.seconds = time.perf_counter() - began
        left = current.seconds / max(current.done, 1) * (total - current.done)
        bar.progress(current.done / max(total, 1),
                     text=f"{label}: {current.done:,} of {total:,} done, about {_duration(left)} left")
    if current.stopped:
        return current
    current.finished = True
    results.result_cache().put(_shared(key), current)  # read-only from here on: other sessions may show it
    slot.empty()
    return current


def pressed(label: str, key: str, **kwargs) -> bool:
    """A run's button, which leaves the page once pressed: the run's progress bar takes its place."""
    slot = st.empty()
    if slot.button(label, key=key, **kwargs):
        slot.empty()
        return True
    return False


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _stop(found: Job) -> None:
    found.stopped = True


def _again(found: Job) -> None:
    """Forget a stopped job, so its view runs it again (at once, or behind its own button)."""
    jobs = st.session_state.get(JOBS, {})
    if jobs.get(found.key) is found:
        del jobs[found.key]


def stopped_note(found: Job) -> None:
    """Say when a job was stopped: its views are of the prompts done; a button runs it again."""
    if not found.finished:
        st.warning(f"Stopped after {found.done:,} of {found.total:,}: what is shown is over those only.")
        st.button("Run it again for the whole set", key=f"again_{found.key}", on_click=_again, args=(found,))
