"""AppTest helpers for the reliability tests: run the real app script and read what a user sees."""
from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def run_app(**params: str) -> AppTest:
    """The app's start page after its first run (query params as a shared link would give)."""
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def shown_text(at: AppTest) -> str:
    """Every error, warning and caption, as one string to search."""
    parts = [e.value for e in at.error] + [w.value for w in at.warning] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def vectors_metric(at: AppTest) -> str:
    """The start page's 'Vectors' metric (T × D): it only shows when a capture is on screen."""
    return next(m.value for m in at.metric if m.label == "Vectors")


def ask_for_model(typed: str, **params: str) -> AppTest:
    """A session whose sidebar asks for `typed` under 'Other…' from its first run.

    AppTest drops sidebar widgets from its tree after a rerun under st.navigation, so the choice
    is made before the first run, where sidebar messages are still visible.
    """
    from pages.kit import models

    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    at.session_state["model_choice"] = models.OTHER_MODEL
    at.session_state["model_custom"] = typed
    return at.run()


def sidebar_errors(at: AppTest) -> str:
    """The error boxes' text as shown: markdown's backslash escapes read as the character."""
    text = " ".join(e.value for e in at.sidebar.error) + " " + " ".join(e.value for e in at.error)
    return re.sub(r"\\(.)", r"\1", text)
