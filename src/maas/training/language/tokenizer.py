"""A byte-level BPE tokenizer trained on a corpus, with maas's special tokens and chat template.

Byte-level (as GPT-2's): any UTF-8 text encodes, with no unknown token, and decoding gives the
text back. ``<|endoftext|>`` (id 0) is bos, eos and pad; ``<|im_start|>`` (1) and
``<|im_end|>`` (2) frame chat messages (``chat.CHAT_TEMPLATE``, saved with the tokenizer so
``apply_chat_template`` works after ``from_pretrained``).

BPE training has no randomness: the same texts and vocabulary size give the same tokenizer, so
it takes no seed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from maas.errors import InvalidInputError
from maas.training.language.chat import CHAT_TEMPLATE, END_OF_TEXT, SPECIAL_TOKENS

__all__ = ["MAX_VOCAB_SIZE", "MIN_VOCAB_SIZE", "train_tokenizer"]

MIN_VOCAB_SIZE: Final = 256 + len(SPECIAL_TOKENS)
"""The 256 byte symbols and the special tokens: a smaller vocabulary could not encode all text."""
MAX_VOCAB_SIZE: Final = 65_536
"""Far past what a corpus a CPU trains on can fill; bounds the embedding a job allocates."""

_SPECIAL: Final = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def _without_special_tokens(texts: Iterable[str]) -> Iterator[str]:
    """The pieces between special tokens, which BPE would otherwise learn merges from
    (``<|im_sta``...), spending vocabulary on tokens that encoding never produces."""
    for text in texts:
        yield from (piece for piece in _SPECIAL.split(text) if piece)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 2048, *, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Learn up to ``vocab_size`` tokens from ``texts`` (a pair must occur ``min_frequency``
    times to merge, so a small corpus may end with fewer: use ``len(tokenizer)``).

    >>> tokenizer = train_tokenizer(load_corpus("builtin"), 1024)  # doctest: +SKIP
    >>> tokenizer.decode(tokenizer("Once upon a time").input_ids)  # doctest: +SKIP
    'Once upon a time'
    """
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise InvalidInputError(
            f"vocab_size must be in [{MIN_VOCAB_SIZE}, {MAX_VOCAB_SIZE}], got {vocab_size!r}",
            {"field": "vocab_size", "value": vocab_size},
        )
    if min_frequency < 1:
        raise InvalidInputError(
            f"min_frequency must be >= 1, got {min_frequency!r}", {"field": "min_frequency"}
        )
    pieces = list(_without_special_tokens(texts))
    if not any(piece.strip() for piece in pieces):
        raise InvalidInputError(
            "corpus: holds no text to learn a vocabulary from", {"field": "corpus"}
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),  # first, so they take ids 0, 1, 2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(pieces, trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # unannotated __init__
        tokenizer_object=tokenizer,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
