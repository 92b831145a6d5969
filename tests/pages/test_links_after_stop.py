"""A page that stops early (a form not yet submitted, a gate before a long run) still leaves the link
holding the sidebar's prompt: a reload or a copied address brings back what was typed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from apptest_session import link_of

from model.core.settings import settings

PAGES = Path(__file__).resolve().parents[2] / "pages"


def _param(at, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


@pytest.mark.parametrize("page", ["pages/steering.py", "pages/ablation.py", "pages/generate.py"])
def test_a_stopped_page_writes_the_typed_prompt_into_the_link(open_page, page) -> None:
    at = open_page(page)
    assert not at.exception, at.exception
    at.sidebar.text_area(key="prompt").set_value("Dogs bark loudly").run()
    assert not at.exception, at.exception
    assert _param(at, "prompt") == "Dogs bark loudly"
    assert _param(at, "model") is not None


def test_a_refused_prompt_stays_in_the_link(open_page, monkeypatch) -> None:
    """A prompt over the token limit stops the page after its message; the link still holds what was
    typed, so a reload shows the same message instead of silently bringing back the old prompt."""
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "8")
    settings.cache_clear()
    at = open_page("pages/generate.py")
    too_long = "one two three four five six seven eight nine ten eleven twelve"
    at.sidebar.text_area(key="prompt").set_value(too_long).run()
    assert not at.exception, at.exception
    assert any("8" in w.value for w in at.warning), [w.value for w in at.warning]
    assert _param(at, "prompt") == too_long


def test_no_page_stops_without_writing_its_link() -> None:
    """Pages end early through kit.stop(): after a bare st.stop() the shell's write of the link is lost."""
    bare = [str(path) for path in PAGES.rglob("*.py") if "st.stop()" in path.read_text() and path.name != "__init__.py"]
    assert bare == []


def test_a_refused_prompt_keeps_next_tokens_settings_in_the_link(open_page, monkeypatch) -> None:
    """While a prompt was refused, Next token's link dropped its top-p and bars (the page stopped before
    writing them): a reload then lost them too."""
    monkeypatch.setenv("XRAY_TOKEN_LIMIT", "8")
    settings.cache_clear()
    at = open_page("pages/next_token.py", top_p="0.6", bars="7")
    assert (_param(at, "top_p"), _param(at, "bars")) == ("0.6", "7")
    at.sidebar.text_area(key="prompt").set_value("one two three four five six seven eight nine ten eleven").run()
    assert not at.exception, at.exception
    assert any("8" in w.value for w in at.warning)
    assert (_param(at, "top_p"), _param(at, "bars")) == ("0.6", "7")


@pytest.mark.parametrize(("page", "param"), [(None, "layer"), (None, "temperature"), ("pages/lesson.py", "step"),
                                            ("pages/generate.py", "g_steps"), ("pages/mlp.py", "neuron")])
def test_a_link_value_in_a_notice_is_text_not_markdown(open_page, page, param):
    """Anyone can write a link: the value a notice quotes is literal (no live link, no bold) and short."""
    extra = {"g_mode": "greedy"} if param == "g_steps" else {}
    at = open_page(page, **{param: "[x](http://e.co) **b**", **extra})
    quoted = [w.value for w in at.warning if "Ignored" in w.value]
    bare = [re.sub(r"\\.", "", w) for w in quoted]  # what markdown could read: escaped characters taken out
    assert quoted and all("](" not in w and "**" not in w for w in bare), quoted
    assert any(r"\[x\](http" in w for w in quoted)


def test_a_link_may_not_name_the_servers_folders(open_page, tmp_path):
    """A link is anyone's: it may not load a folder of the server's, nor tell whether one exists (the same
    notice for a folder, a file and a missing path), and the default model answers."""
    from pages.kit.models import OTHER_MODEL

    (tmp_path / "file.txt").write_text("x")
    endings = set()
    for target in (str(tmp_path), str(tmp_path / "file.txt"), str(tmp_path / "missing"), "/etc"):
        at = open_page(None, model=target)
        assert not at.exception and not at.error and not at.sidebar.error
        (notice,) = [w.value for w in at.warning if "a link may name a hub model only" in w.value]
        endings.add(notice.rsplit("'", 1)[1])
        assert at.session_state["model_choice"] != OTHER_MODEL  # the embedded model answers
    assert len(endings) == 1  # the same words whatever the path is


def test_a_page_that_stops_still_draws_the_sidebar_footer(open_page):
    """A refused prompt ends Next token early (kit.stop): the sidebar still says what a link shares."""
    at = open_page("pages/next_token.py")
    at.number_input(key="token_limit").set_value(2).run()
    assert not at.exception and any("too long" in w.value or "limit" in w.value for w in at.warning)
    assert any("Copy the address bar" in c.value for c in at.sidebar.caption)


def test_a_linked_neuron_outside_the_picker_is_named(open_page):
    at = open_page("pages/mlp.py", neuron="999999")
    assert not at.exception
    assert any("Neuron 999,999 from the link is not among the" in w.value for w in at.warning)


def test_a_lowered_token_limit_rides_in_the_link(open_page):
    """A prompt refused under a lowered limit is refused the same way from the copied link."""
    at = open_page("pages/overview.py")
    at.number_input(key="token_limit").set_value(3).run()
    link = link_of(at)
    assert link["limit"] == "3"
    again = open_page("pages/overview.py", **link)
    assert not again.exception and again.number_input(key="token_limit").value == 3
    assert [w.value for w in again.warning] == [w.value for w in at.warning] and again.warning
    at.number_input(key="token_limit").set_value(again.session_state["_token_limit_most"]).run()
    assert "limit" not in at.query_params  # back at the most: nothing to say
    bad = open_page(None, limit="abc")
    assert any("Ignored limit 'abc'" in w.value for w in bad.warning)
