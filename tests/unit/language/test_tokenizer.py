from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from maas.errors import InvalidInputError
from maas.training.language.chat import (
    CHAT_TEMPLATE,
    END_OF_TEXT,
    IM_END,
    IM_START,
    SPECIAL_TOKENS,
    render_chat,
)
from maas.training.language.tokenizer import MIN_VOCAB_SIZE, train_tokenizer

from .conftest import VOCAB_SIZE

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What does a cow say?"},
]


def test_special_tokens_take_the_first_ids_and_frame_the_vocabulary(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    vocabulary = tokenizer.get_vocab()
    assert [vocabulary[t] for t in SPECIAL_TOKENS] == [0, 1, 2]
    assert tokenizer.bos_token == tokenizer.eos_token == tokenizer.pad_token == END_OF_TEXT
    assert MIN_VOCAB_SIZE < len(tokenizer) <= VOCAB_SIZE
    # BPE learnt no pieces of the special tokens: they only ever encode whole.
    assert not [t for t in vocabulary if ("<|" in t or "|>" in t) and t not in SPECIAL_TOKENS]
    ids = tokenizer(f"{IM_START}user{IM_END}{END_OF_TEXT}").input_ids
    assert ids == [1, vocabulary["user"], 2, 0]


def test_any_text_round_trips_byte_for_byte(tokenizer: PreTrainedTokenizerFast) -> None:
    for text in ("Once upon a time, there was a little cat.", "Zoë's 日本語 😀\n\ttabs  two", ""):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token is None
    # The merges learnt the corpus: each of its common words is one token.
    assert len(tokenizer("Once upon a time, there was a little").input_ids) == 9


def test_training_is_deterministic(corpus: tuple[list[str], list[str]]) -> None:
    texts = corpus[0][:200]
    first, second = train_tokenizer(texts, 400), train_tokenizer(texts, 400)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    assert len(first) == 400


def test_chat_template_renders_chatml(tokenizer: PreTrainedTokenizerFast) -> None:
    assert tokenizer.chat_template == CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert text == render_chat(CHAT, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat does a cow say?<|im_end|>\n<|im_start|>assistant\n"
    )
    closed = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert closed == render_chat(CHAT, add_generation_prompt=False)
    ids: Any = tokenizer.apply_chat_template(CHAT, add_generation_prompt=True, return_dict=True)
    assert ids["input_ids"] == tokenizer(text, add_special_tokens=False).input_ids


def test_chat_template_survives_save_and_load(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    expected = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert reloaded.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == (
        expected
    )
    assert reloaded("Once upon a time").input_ids == tokenizer("Once upon a time").input_ids
    assert not list(tmp_path.glob("*.py")) and not list(tmp_path.glob("*.bin"))


@pytest.mark.parametrize(
    ("texts", "vocab_size", "field"),
    [
        (["some text"], MIN_VOCAB_SIZE - 1, "vocab_size"),
        (["some text"], 70_000, "vocab_size"),
        ([], 512, "corpus"),
        (["  \n", END_OF_TEXT], 512, "corpus"),
    ],
)
def test_bad_arguments_are_refused(texts: list[str], vocab_size: int, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        train_tokenizer(texts, vocab_size)
    assert caught.value.details["field"] == field
