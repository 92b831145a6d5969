"""Lesson step 13: steering. A topic's direction (ActAdd: "I love talking about <topic>" minus "I love
talking about", read at the last token) is added to the stream, and the next token after the learner's
prompt moves toward the topic. Widgets and layout only; numbers from model/analyses/steering.py."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses import lesson_checks as checks
from model.analyses import steering as steer
from model.analyses.sampling import top_tokens
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit.plotly_chart import plotly_chart
from viz import steering as draw
from viz.labels import literal, short

KEPT = {"lesson_topic": "weddings", "lesson_steer_coef": 0.0}
BASE = "I love talking about"


def block(lm: LanguageModel) -> int:
    """An early block (a fifth of the way in): the topic is read there before the model has settled
    on its next token, so adding it steers what follows."""
    return lm.summary.n_layers // 5


def _topic_tokens(lm: LanguageModel, topic: str) -> list[int]:
    """The topic's tokens as it stands after a space (' weddings')."""
    return [int(i) for i in lm.tokenizer(" " + topic, add_special_tokens=False)["input_ids"]]


def steering(lm: LanguageModel, cap: Capture) -> checks.Check | None:
    kit.set_defaults(KEPT)
    cols = st.columns([2, 3])
    topic = cols[0].text_input("Topic", key="lesson_topic", persist_state="session").strip()
    coefficient = cols[1].slider("Coefficient", 0.0, 6.0, step=0.5, key="lesson_steer_coef", persist_state="session")
    if not topic:
        st.info("Type a topic (one word, such as weddings or football).")
        return None
    tokens = _topic_tokens(lm, topic)
    if len(tokens) != 1:
        pieces = " ".join(readable_tokens(lm.tokenizer, tokens))
        st.info(literal(f"'{short(topic, 40)}' is {len(tokens)} tokens for this model ({short(pieces, 60)}): the check "
                        "follows one token's probability, so type a topic that is one token, such as weddings or "
                        "football."))
        return None
    at = block(lm)
    key = kit.cache_key(kit.model_key(lm), cap.token_ids.tolist(), topic, coefficient, "lesson_steer")
    try:
        direction = kit.derived("steering_direction", kit.cache_key(kit.model_key(lm), topic, at, "lesson"),
                                lambda: steer.actadd(lm, f"{BASE} {topic}", BASE, at))
        steering_setup = steer.Steering(direction.vector, at, coefficient)
        before, after = kit.derived("steering_next", key, lambda: steer.next_token_moves(lm, cap, steering_setup))
    except (ValueError, XrayError) as exc:
        st.warning(str(exc))
        return None
    token = tokens[0]
    # Nothing moved (coefficient 0): the likeliest next tokens, not seven that all stay at 0%.
    ranked, title = ((steer.most_moved(before, after, 7), None) if (after != before).any() else
                     (top_tokens(before, 7), "Next token after the prompt: the likeliest tokens"))
    shown = [token] + [int(i) for i in ranked if int(i) != token][:6]
    plotly_chart(draw.moved_figure(readable_tokens(lm.tokenizer, shown), before[shown], after[shown],
                                   **({"title": title} if title else {})), key="lesson_steer_bars")
    st.caption(f"The direction: the stream of '{BASE} {literal(topic)}' minus that of '{BASE}' at the last token, entering "
               f"block {at}, added at every position of your prompt. First bar: the topic's own token.")
    return checks.steered_toward(topic, float(before[token]), float(after[token]), coefficient)
