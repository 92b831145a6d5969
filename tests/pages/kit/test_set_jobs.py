"""Long runs over a prompt set: each part is kept as it comes, so a run cut off part-way (a Stop click
reruns the page, which ends the run at its next progress call) keeps the prompts done and says so."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script(stop_after: int, pressed: bool = True) -> None:
    import numpy as np
    import streamlit as st

    from pages.kit import set_jobs

    key = f"job_{stop_after}_{pressed}"  # finished jobs are kept for the process: one key per case
    def parts():
        for i in range(5):
            if i == stop_after:
                if pressed:  # Stop's callback marks the run; without it the person left the page
                    set_jobs._stop(st.session_state[set_jobs.JOBS][key])
                raise KeyboardInterrupt  # stands in for the rerun that ends this run
            yield {i: {"diff": np.array(float(i))}}

    try:
        set_jobs.run(key, parts(), 5, "Reading")
    except KeyboardInterrupt:
        pass
    found = set_jobs.job(key)
    if found is None:
        st.write("not run")
        return
    set_jobs.stopped_note(found)
    st.write(f"done {found.done} finished {found.finished} kept {sorted(found.results)}")


def test_a_stopped_run_keeps_what_is_done():
    at = AppTest.from_function(_script, kwargs={"stop_after": 2}).run()
    assert not at.exception
    assert "done 2 finished False kept [0, 1]" in at.markdown[-1].value
    assert "Stopped after 2 of 5" in at.warning[0].value


def test_a_run_cut_off_without_stop_counts_as_not_run():
    """Leaving the page ends a run too, without Stop: the view must not call it stopped (it runs it again)."""
    at = AppTest.from_function(_script, kwargs={"stop_after": 2, "pressed": False}).run()
    assert not at.exception and not at.warning and at.markdown[-1].value == "not run"


def test_a_whole_run_finishes_without_a_note():
    at = AppTest.from_function(_script, kwargs={"stop_after": 99}).run()
    assert "done 5 finished True kept [0, 1, 2, 3, 4]" in at.markdown[-1].value
    assert not at.warning
    assert not at.button  # the Stop button left with the bar


def _stopped_mid_part() -> None:
    import numpy as np
    import streamlit as st

    from pages.kit import set_jobs

    def parts():
        for i in range(4):
            if i == 2:  # Stop pressed while part 2 is computed: its callback runs in the new run, this one goes on
                set_jobs._stop(st.session_state[set_jobs.JOBS]["stopped_job"])
            yield {i: {"diff": np.array(float(i))}}

    if set_jobs.job("stopped_job") is None:
        set_jobs.run("stopped_job", parts(), 4, "Reading")
    found = set_jobs.job("stopped_job")
    set_jobs.stopped_note(found)
    st.write(f"done {found.done} finished {found.finished} kept {sorted(found.results)}")


def test_a_part_that_arrives_after_stop_is_dropped_and_the_run_can_be_run_again():
    """What a stopped run shows never changes later (the stopped run may still finish computing a part),
    and the note's button runs the job again from the start."""
    at = AppTest.from_function(_stopped_mid_part).run()
    assert not at.exception
    assert "done 2 finished False kept [0, 1]" in at.markdown[-1].value
    at.run()
    assert "done 2 finished False kept [0, 1]" in at.markdown[-1].value  # still the stopped run, unchanged
    at.button(key="again_stopped_job").click().run()
    assert not at.exception and "done 2 finished False" in at.markdown[-1].value  # ran again, stopped again at 2
    assert at.session_state["_set_jobs"]["stopped_job"].stopped
