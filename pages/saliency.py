"""Input saliency: which input tokens made the prediction at a position, read four ways (gradient ×
input, integrated gradients, occlusion by replacing or removing each token). Widgets and layout only;
the methods are in model/analyses/saliency.py, the drawings in viz/saliency.py."""
from __future__ import annotations

import streamlit as st

from model import Capture, LanguageModel, XrayError
from model.analyses.saliency import MAX_TOKENS, METHODS, Method, Saliency, neutral_token, saliency, work
from model.core.tokens import readable_tokens
from pages import kit
from pages.kit import links
from pages.kit.contrast import Contrast
from pages.kit.plotly_chart import plotly_chart
from viz import saliency as draw
from viz.labels import count

STEPS = (8, 16, 32, 64, 128)
DEFAULT_STEPS = 64  # the default prompt's delta: 0.21 of a 7.2 change at 64 steps, 4.4 at 32 (abrupt path)
AT_ONCE_S = 4.0  # a reading expected to take longer waits for its button, its cost said up front
METHOD, N_STEPS, LINK_READ, REQUESTED = "sal_method", "sal_steps", "_sal_link_read", "_sal_requested"
RATES = "_sal_rates"  # (model key, method) -> (seconds per unit of work, its length), this session's last run
PRICED_FROM = 64  # a capture shorter than this is priced as if this long: its time is mostly fixed costs
CHIPS_FROM, CHIPS_FOR = "sal_chips_from", "_sal_chips_for"  # a long reading's chip window, and whose it is

EXPLANATION = """
**The question.** The model predicted a token at the chosen position. Which of the tokens before it
(and the token there) made it do so? Each method gives every input token a number: positive (blue)
means the token raised the target (the logit of A, or A minus B), negative (red) means it lowered it.

**Gradient × input.** One forward and one backward pass give the slope of the target with respect to
every token's input vector; multiplying the slope by the vector itself guesses how much each token
contributed. It is instant, but it only looks at the slope where the prompt is, and the model is far
from a straight line.

**Integrated gradients.** Start from a prompt where every token but the first is the neutral token,
and slide every vector in a straight line to the real prompt, adding up the slope on the way. The shares then add up to
the whole change of the target along that line, up to the error of taking the path in steps: the
*convergence delta*, shown beside the result. Where the model changes its mind abruptly on the way, the
steps can miss it and the delta grows; more steps shrink it. The steps run as rows of a few batched
passes, not one pass each (Captum's `IntegratedGradients`). The first token stays as it is: the
model parks much of its attention on it, and moving it too made the path jump so abruptly that even
the default prompt's delta was as large as the change itself. So its share here is always 0.

**Occlusion.** Take one token out and run the prompt again: replace it by the neutral token (same
length, the other tokens keep their positions) or remove it (the tokens after it move one place
left). The share is how much the target fell. It measures the real effect of each token alone, but
tokens work together: two tokens that say the same thing can each look unimportant.

Only the tokens up to the position are run: the model never reads later tokens to predict there.
"""


def _read_link() -> None:
    """A session's first visit: the method and the steps from the link (?method=integrated&steps=64)."""
    if st.session_state.get(LINK_READ):
        return
    st.session_state[LINK_READ] = True
    method, steps = st.query_params.get("method"), st.query_params.get("steps")
    if method is not None:
        if method in METHODS:
            st.session_state[METHOD] = method
        else:
            st.warning(f"Ignored method '{links.quoted(method)}' from the link (expected one of {', '.join(METHODS)}).")
    if steps is not None:
        if steps.isdigit() and int(steps) in STEPS:
            st.session_state[N_STEPS] = int(steps)
        else:
            st.warning(f"Ignored steps '{links.quoted(steps)}' from the link (expected one of {', '.join(map(str, STEPS))}).")


def _choices() -> tuple[Method, int]:
    """The method picker, and the steps of integrated gradients (drawn only for that method)."""
    method = kit.picker("Method", dict(draw.METHOD_NAMES), key=METHOD, default="gradient", radio=True,
                        horizontal=True, persist_state="session")
    steps = int(kit.picker("Integrated-gradient steps", {s: str(s) for s in STEPS}, key=N_STEPS,  # type: ignore[arg-type]
                           default=DEFAULT_STEPS, persist_state="session", where=st.columns(4)[0],
                           help="Points along the path from the neutral prompt to yours. More steps: a smaller "
                                "convergence delta, and a longer wait.") if method == "integrated"
                else st.session_state.get(N_STEPS, DEFAULT_STEPS))
    links.page_params(method=str(method), steps=str(steps))
    return method, steps  # type: ignore[return-value]


def _seconds(lm: LanguageModel, cap: Capture, method: Method, n_tokens: int, steps: int) -> float:
    """A guess of the wait: at the rate this method last ran at here when that was at a like length
    (within 2x, lengths under PRICED_FROM alike), else at the capture's rate (a pass's cost per token
    changes with the length: a rate learned at 10 tokens priced 3,500 at 240 s, where it took 40 s)."""
    rate = cap.pass_seconds / max(PRICED_FROM, cap.n_tokens)
    learned = st.session_state.get(RATES, {}).get((kit.model_key(lm), method))
    if learned is not None and _alike(learned[1], n_tokens):
        rate = learned[0]
    return work(method, n_tokens, steps) * rate


def _alike(learned_at: int, n_tokens: int) -> bool:
    """Whether a rate learned at one length prices another: within a factor of 2, short ones alike."""
    a, b = max(PRICED_FROM, learned_at), max(PRICED_FROM, n_tokens)
    return a / 2 <= b <= 2 * a


def _learn_rate(lm: LanguageModel, result: Saliency) -> None:
    """Keep the rate a reading ran at and its length, so the next guess at a like length is priced on
    this machine's real speed."""
    n_tokens = result.position + 1
    rate = result.seconds / work(result.method, n_tokens, result.steps)
    st.session_state.setdefault(RATES, {})[(kit.model_key(lm), result.method)] = (rate, n_tokens)


def _cost_note(method: Method, n_tokens: int, steps: int, seconds: float) -> str:
    """What the method will run, said before it runs."""
    runs = {"gradient": "one forward and one backward pass",
            "integrated": f"{steps} steps × {n_tokens:,} tokens forward and backward, in batched passes",
            "replace": f"{n_tokens:,} prompts of {n_tokens:,} tokens, in batched passes",
            "remove": f"{n_tokens:,} prompts of {n_tokens - 1:,} tokens, in batched passes"}[method]
    cap = "" if method == "gradient" else f" Up to {MAX_TOKENS} tokens; the cost grows with the square of the length."
    return f"Reads the {n_tokens:,} tokens up to the position: {runs}, about {max(1, round(seconds))} s here.{cap}"


def _compute(lm: LanguageModel, cap: Capture, pos: int, choice: Contrast, method: Method, steps: int,
             reading: str) -> Saliency:
    """The reading, once per `reading` (prompt, position, target, method and steps); a progress bar while it runs."""
    bar = st.empty()

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{draw.METHOD_NAMES[method]}: {done} of {total} batched passes")

    result = kit.derived("saliency", reading, lambda: saliency(lm, list(cap.token_ids), pos, choice.a, choice.b,
                                                           method, steps, progress=progress))
    bar.empty()
    _learn_rate(lm, result)
    return result


def _wanted(lm: LanguageModel, cap: Capture, pos: int, method: Method, steps: int, reading: str) -> bool:
    """Whether to run now: at once when cheap, else when its button was pressed for these very choices."""
    n_tokens = pos + 1
    seconds = _seconds(lm, cap, method, n_tokens, steps)
    st.caption(_cost_note(method, n_tokens, steps, seconds))
    if seconds <= AT_ONCE_S or (method != "gradient" and n_tokens > MAX_TOKENS):
        return True  # past MAX_TOKENS the analysis says why it refuses
    requested = st.session_state.setdefault(REQUESTED, set())
    if st.button(f"Run {draw.METHOD_NAMES[method].lower()} (about {round(seconds)} s)", key="sal_run", type="primary"):
        requested.add(reading)
    if reading not in requested:
        st.info("This reading takes a while on this prompt: press the button to run it.")
    return reading in requested


def _chips_window(n: int, reading: str) -> tuple[int, int] | None:
    """Every chip, or past draw.CHIPS a window of them moved by a slider, which starts on the window that
    ends at the prediction and goes back there whenever the reading changes (position, target, method,
    steps, prompt)."""
    if n <= draw.CHIPS:
        return None
    last = n - draw.CHIPS
    if st.session_state.get(CHIPS_FOR) != reading:
        st.session_state[CHIPS_FOR], st.session_state[CHIPS_FROM] = reading, last
    shown = kit.long.window(n, draw.CHIPS, CHIPS_FROM, "Chips shown from", last)
    st.caption(f"{n:,} tokens up to the prediction: the chips show {draw.CHIPS} at a time, on the colour scale "
               "of all of them; the bars below show every token.")
    return shown


def _show(result: Saliency, cap: Capture, choice: Contrast, neutral: str, reading: str) -> None:
    """The chips, the numbers that matter for the method, the bars and the reading in words."""
    tokens = cap.tokens[:result.position + 1]
    st.html(draw.chips_html(tokens, result.values, _chips_window(len(tokens), reading)))
    cols = st.columns(4)
    cols[0].metric(choice.metric, f"{result.target:+.2f}")
    cols[1].metric("Sum of the shares", f"{result.values.sum():+.2f}")
    if result.delta is not None and result.reference is not None:
        cols[2].metric("Change along the path", f"{result.target - result.reference:+.2f}",
                       help="The target on your prompt minus the target on the neutral prompt.")
        cols[3].metric(f"Convergence delta ({result.steps} steps)", f"{result.delta:+.3f}",
                       help="Sum of the shares minus the change along the path: the error of taking the path in "
                            "steps (Captum's convergence delta). More steps make it smaller.")
    passes = count(result.passes, "pass", "passes")
    cols[-1 if result.delta is None else 3].caption(f"{passes}, {result.seconds:.1f} s")
    if result.delta is not None and result.reference is not None and \
            abs(result.delta) > 0.1 * abs(result.target - result.reference):
        st.warning(f"The shares miss {abs(result.delta):.2f} of the change along the path: the model changes its mind "
                   f"abruptly somewhere on the way and {result.steps} steps do not catch it. Choose more steps.")
    plotly_chart(draw.bars_figure(tokens, result.values, result.method, choice.metric), key="sal_bars")
    st.html(draw.reading_html(tokens, result.values, result.method, choice.metric, result.target,
                              reference=result.reference, delta=result.delta, steps=result.steps,
                              neutral=neutral))


def _neutral_name(lm: LanguageModel) -> str:
    """This model's neutral token as the page names it: its text, then what it is ('· (a space)')."""
    neutral = neutral_token(lm.tokenizer)
    return f"{readable_tokens(lm.tokenizer, [neutral.id])[0]} ({neutral.what}, id {neutral.id})"


lm, cap = kit.page("Input saliency: which input tokens made this prediction")
if cap is not None and lm is not None:
    _read_link()
    cols = st.columns([1, 2])
    pos = kit.select_position(cap, "Prediction at position", where=cols[0])
    choice = kit.contrast_token(lm, cap, pos, where=cols[1], label_a="Token to explain")
    method, steps = _choices()
    try:
        neutral = _neutral_name(lm)
        st.caption(f"Neutral token on this model: {neutral}. Integrated gradients start from a prompt of it after "
                   "the first token; occlusion by replacement puts it in place of each token.")
        # Steps shape integrated gradients only: another count keeps the other methods' readings.
        reading = kit.cache_key(kit.current_key(lm), pos, choice.a, choice.b, method,
                                steps if method == "integrated" else None)
        if _wanted(lm, cap, pos, method, steps, reading):
            _show(_compute(lm, cap, pos, choice, method, steps, reading), cap, choice, neutral, reading)
    except XrayError as exc:
        st.warning(str(exc))
if lm is not None:
    kit.explain("What input saliency measures", EXPLANATION)
