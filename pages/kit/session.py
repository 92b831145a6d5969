"""The sidebar's choices as every page reads them: the prompt, the token limit, the chat template and the model."""
from __future__ import annotations

import streamlit as st

from model.core.settings import DEFAULT_MODEL, settings

EXAMPLES = {
    "A fact to recall": "The capital of France is",
    "One word, two meanings": "The spy was a mole inside the agency. In the garden, a mole dug a tunnel under the",
    "A repeated sequence to copy": (
        "The cat sat on the mat and the dog ran to the park. The cat sat on the mat and the dog ran to the"
    ),
    "A line of code": "def add(a, b):\n    return a + b\n\nprint(add(2,",
    "Who gets the drink? (indirect object)": "When Mary and John went to the store, John gave a drink to",
    "Another language (French)": "La tour Eiffel se trouve dans la ville de",
}
DEFAULT_PROMPT = EXAMPLES["A fact to recall"]
FALLBACK_TOKEN_LIMIT = 512  # before a loaded model says what it allows (or when none loaded)
CHAT_TEMPLATE = "chat_template"  # the sidebar's switch: wrap the prompt in the model's chat template
CHAT_NO_APPEND = ("The chat template is on: the prompt is the user's message and this text is the assistant's, "
                  "which the prompt cannot hold. Switch the template off to continue the text itself.")
LIMIT_SHOWN = "_token_limit_shown"  # the value the sidebar's token limit widget returned this run
LIMIT_MOST = "_token_limit_most"  # the largest limit the loaded model allows here (a lower one rides in links)
# One word in several senses, each clue BEFORE the word: a left-to-right model cannot use what
# follows it. Meaning page and lesson; tests/pages/test_presets.py measures that they separate.
MOLE_CONTEXTS = (
    "The agency discovered that the spy was a mole.",
    "In the garden the gardener caught a mole.",
    "Under the lawn lived a small furry mole.",
    "The chemist weighed one mole.",
)


def model_name() -> str:
    """The model the sidebar asks for; falls back to the last model that loaded."""
    return st.session_state.get("active_model", DEFAULT_MODEL)


def token_limit() -> int:
    """The sidebar's token limit as its widget showed it this run (at most the model's): a widget's own
    key can be missing from the state after a rerun. Before the sidebar drew it, the operator's, else 512."""
    return int(st.session_state.get(LIMIT_SHOWN, settings().token_limit or FALLBACK_TOKEN_LIMIT))


def prompt() -> str:
    """The sidebar's prompt."""
    return st.session_state.get("prompt", DEFAULT_PROMPT)


def chat_template() -> bool:
    """Whether the sidebar's switch asks for the chat template (the model may have none: captures.chat_on)."""
    return bool(st.session_state.get(CHAT_TEMPLATE, False))
