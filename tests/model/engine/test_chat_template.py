"""The chat template (issue 28, part 4): a prompt wrapped as the model's own chat template writes a user's
turn, up to the assistant's first token; the token limit counts the wrapped ids; a model without a
template refuses with a message."""
from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import tiny_model

from model import LanguageModel, PromptError
from model.core.tokens import readable_tokens
from model.engine.capture_cache import CaptureCache

PROMPT = "The capital of France is"


def _template_ids(lm: LanguageModel, prompt: str) -> list[int]:
    messages = [{"role": "user", "content": prompt}]
    return list(lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True)["input_ids"])


def test_wrapped_ids_are_the_templates_own(default_lm) -> None:
    wrapped = default_lm.encode(PROMPT, chat=True)
    assert wrapped == _template_ids(default_lm, PROMPT)
    rendered = default_lm.tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                                        add_generation_prompt=True, tokenize=False)
    assert wrapped == default_lm.tokenizer(rendered, add_special_tokens=False)["input_ids"]  # nothing added twice
    plain = default_lm.encode(PROMPT)
    tokens = readable_tokens(default_lm.tokenizer, wrapped)
    assert tokens[0] == "<|im_start|>" and tokens[1] != "<|im_start|>"  # the template's one opening token
    assert "".join(tokens[-4:]) == "<|im_start|>assistant↵"  # the next token is the assistant's first
    assert any(wrapped[i:i + len(plain)] == plain for i in range(len(wrapped)))  # the prompt inside, as typed


def test_the_limit_counts_the_wrapped_tokens(default_lm) -> None:
    n = len(default_lm.encode(PROMPT, chat=True))
    assert len(default_lm.encode(PROMPT, max_tokens=n, chat=True)) == n
    own = len(default_lm.encode(PROMPT))
    with pytest.raises(PromptError, match=f"The prompt is {n:,} tokens long, {n - own} of them the chat template's; "
                                          f"the limit is {n - 1:,} tokens"):
        default_lm.encode(PROMPT, max_tokens=n - 1, chat=True)  # the plain prompt (5 tokens) would fit


def test_a_cached_wrapped_capture_is_the_wrapped_ids_capture(default_lm) -> None:
    cache = CaptureCache(budget_bytes=2**30)
    cap = cache.get_or_extend("chat", default_lm, prompt=PROMPT, chat=True)
    assert cap.token_ids.tolist() == _template_ids(default_lm, PROMPT) and cap.prompt == PROMPT
    assert cache.get_or_extend("plain", default_lm, prompt=PROMPT).n_tokens == len(default_lm.encode(PROMPT))


def _tiny(tokenizer, template: str | None) -> LanguageModel:
    own = copy.copy(tokenizer)
    own.chat_template = template
    return LanguageModel(tiny_model("llama", len(tokenizer)), own, "tiny-base", "cpu", torch.float32)


def test_a_model_without_a_template_refuses(tokenizer) -> None:
    lm = _tiny(tokenizer, None)
    assert not lm.has_chat_template
    with pytest.raises(PromptError, match="tiny-base has no chat template"):
        lm.encode(PROMPT, chat=True)
    assert lm.encode(PROMPT) == tokenizer(PROMPT)["input_ids"]


def test_a_template_that_fails_gives_a_message(tokenizer) -> None:
    lm = _tiny(tokenizer, "{{ raise_exception('Conversation roles must alternate') }}")
    with pytest.raises(PromptError, match="chat template could not wrap the prompt.*roles must alternate"):
        lm.encode(PROMPT, chat=True)
