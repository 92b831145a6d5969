"""Next token: the model's prediction after any position, with a live temperature drawn in the
browser over the whole vocabulary (pages/temperature_bars), seeded sampling, and one-token-at-a-time
continuation."""
from __future__ import annotations

import streamlit as st

from model.analyses.generation import continuation_text
from model.analyses.sampling import probabilities, sample_token, top_tokens
from model.core.description import ModelFacts
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.session import CHAT_NO_APPEND
from pages.kit.shared_keys import DEFAULT_TEMPERATURE, TEMPERATURE_RANGE, TEMPERATURE_STEP
from pages.kit.temperature_bars import temperature_bars
from viz import model_text
from viz.next_token import byte_token_note, csv_filename, distinct_labels, next_token_bars, table_csv, table_rows


def explanation(facts: ModelFacts) -> str:
    """The page's explanation; the readout (norm, tied matrix, vocabulary size) is this model's."""
    return f"""
**From the last vector to a word.** After the final block, {model_text.readout(facts)}. Each position
predicts the token that follows it.

**Softmax** turns logits into probabilities: exponentiate, then divide by the total. Before that the
logits are divided by the **temperature** T. A low T widens the gaps, so the favourite takes almost
everything (sharper); a high T shrinks them, so unlikely tokens get a real chance (flatter). T = 0 is
*greedy*: all the mass on the single most likely token. The outlined bars keep the model's own
distribution (T = 1) in view while you move the slider.

**Top-k** keeps only the k most likely tokens; **top-p** keeps the smallest set of top tokens whose
probabilities add up to p. Either way the kept probabilities are scaled back up to sum to 1. Every
number here, including the entropy (how uncertain the choice is, in bits) and the "all other tokens"
bar, is computed over the whole vocabulary, not just the bars drawn.
"""


def _append(lm, ids: list[int], new_id: int) -> None:
    """Callback: extend the sidebar prompt by one token and follow the new last position."""
    st.session_state["prompt"] = kit.prompt() + continuation_text(lm, ids, [new_id])
    kit.forget("position")


# The page's own settings in its link (?top_k=5&top_p=0.9&bars=50): session key, parse, what is accepted.
LINKED = {"top_k": ("nt_top_k", int, "a whole number from 0"), "top_p": ("nt_top_p", float, "a number from 0 to 1"),
          "bars": ("nt_n", int, "a whole number from 1 to 100")}
DEFAULTS = {"temperature": DEFAULT_TEMPERATURE, "nt_top_k": 0, "nt_top_p": 1.0, "nt_n": 20}  # set in state: these
# keys persist across pages


def _read_link(vocab: int) -> None:
    """A session's first visit: top-k, top-p and the number of bars from the link; a value out of range
    is ignored with a warning that says what was expected."""
    if st.session_state.get("_nt_link_read"):
        return
    st.session_state["_nt_link_read"] = True
    ranges = {"top_k": (0, vocab), "top_p": (0.0, 1.0), "bars": (1, 100)}
    links.read_linked({name: links.Linked(key, kind, lambda v, r=ranges[name]: r[0] <= v <= r[1], expected)
                       for name, (key, kind, expected) in LINKED.items()})


def _link_settings() -> None:
    """The settings other than their defaults, for the page's link (the shell writes it after a full run)."""
    state = st.session_state
    links.page_params(**{name: str(state[key]) for name, (key, _, _) in LINKED.items() if state[key] != DEFAULTS[key]})


def _setting_changed() -> None:
    """A setting's on_change: a change inside the fragment reruns only the fragment, after which the shell
    does not write the link, so it is written here."""
    _link_settings()
    links.write_url()


def _settings(vocab: int) -> tuple[float, int | None, float | None, int]:
    """Temperature (reported by the bars' own slider), top-k, top-p and the number of bars."""
    cols = st.columns([1, 2, 1])  # their defaults are in state already (the page body set them)
    k = cols[0].number_input("Top-k (0 = off)", 0, vocab, step=1, key="nt_top_k", persist_state="session",
                             on_change=_setting_changed)
    p = cols[1].slider("Top-p (1 = off)", 0.0, 1.0, step=0.01, key="nt_top_p", persist_state="session",
                       on_change=_setting_changed)
    n = cols[2].number_input("Bars", 1, 100, step=5, key="nt_n", persist_state="session", on_change=_setting_changed)
    return float(st.session_state["temperature"]), int(k) or None, (float(p) if p < 1 else None), int(n)


def _continue_buttons(lm, cap, row, t, k, p, is_last: bool) -> None:
    """Seeded draw at the current settings and the two ways to append a token to the prompt."""
    seed = int(st.number_input("Seed", 0, 2**31 - 1, value=0, step=1, key="nt_seed", persist_state="session"))
    greedy_id = int(top_tokens(row, 1)[0])
    drawn = sample_token(probabilities(row, t, k, p), seed)
    greedy_txt, drawn_txt = readable_tokens(lm.tokenizer, [greedy_id, drawn])
    st.caption("The most likely token, and a draw at these settings (the same seed always gives the same token):")
    st.code(f"most likely : {greedy_txt}    (id {greedy_id})\nseeded draw : {drawn_txt}    (id {drawn})", language=None)
    ids = cap.token_ids.tolist()
    cols = st.columns(2)
    chat = kit.chat_on(lm)
    why_not = CHAT_NO_APPEND if chat else None if is_last else (
        f"Appending continues the text after its last token: choose position {cap.n_tokens - 1} (the last) "
        "in “Predict the token after” to append.")
    if cols[0].button("Append the most likely token", key="nt_append_greedy", disabled=why_not is not None,
                      on_click=_append, args=(lm, ids, greedy_id), help=why_not, width="stretch"):
        st.rerun()
    if cols[1].button("Append the seeded draw", key="nt_append_sampled", disabled=why_not is not None,
                      on_click=_append, args=(lm, ids, drawn), help=why_not, width="stretch"):
        st.rerun()
    if why_not is not None:  # a disabled button's hover is easy to miss: say it where the buttons are
        st.caption(why_not)


@st.fragment
def live_bars(lm, cap, pos: int) -> None:
    """The bars redraw in the browser at every temperature step; a released slider reruns only this
    fragment (over cached logits) so the table, the seeded draw and the link follow."""
    row = lm.logits_at(cap, pos)  # (V,) kept in the capture, or from its final stream: no forward pass here
    t, k, p, n = _settings(cap.summary.vocab_size)
    ids = top_tokens(row, n)
    labels = readable_tokens(lm.tokenizer, ids)
    temperature_bars(row, ids, distinct_labels(labels, ids), temperature=t, top_k=k, top_p=p, key="nt_bars",
                     limit=TEMPERATURE_RANGE[1], step=TEMPERATURE_STEP, on_report=links.write_url)
    note = byte_token_note(labels)
    if note:
        st.caption(note)
    with st.expander("Table and download"):
        bars = next_token_bars(row, n, t, k, p)
        st.dataframe(table_rows(bars, labels), hide_index=True)
        st.download_button("Download the table (CSV)", table_csv(bars, labels), key="nt_csv", on_click="ignore",
                           file_name=csv_filename(cap.prompt, pos), mime="text/csv")
    st.subheader("Continue the text")
    _continue_buttons(lm, cap, row, t, k, p, is_last=pos == cap.n_tokens - 1)


lm, cap = kit.page("Next token: what comes after")
if lm is not None:
    kit.explain("How the next token is chosen", explanation(lm.facts))
    _read_link(lm.summary.vocab_size)
    kit.set_defaults(DEFAULTS)
    _link_settings()  # before any stop: while a prompt is refused, the link keeps the settings
if lm is None or cap is None:
    kit.stop()
position = kit.select_position(cap, "Predict the token after")
kit.token_strip(cap, highlight=position)
live_bars(lm, cap, position)
