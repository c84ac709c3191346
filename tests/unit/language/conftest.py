"""One small language model trained on the built-in corpus, shared by the language tests.

The model is smaller than the job default (2 layers, width 64, context 64: 167k weights) so
that its 150 steps take about 4 s on two idle CPU cores (18 s while a CI run shared them); it
still learns the corpus (validation perplexity from 996 to 2.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from maas.training.language.corpus import load_corpus, split_corpus
from maas.training.language.model import build_causal_lm
from maas.training.language.tokenizer import train_tokenizer
from maas.training.language.trainer import LMEvaluation, LMTrainConfig, train_causal_lm

VOCAB_SIZE = 1024
CONTEXT_LENGTH = 64
CONFIG = LMTrainConfig(
    steps=150, batch_size=8, learning_rate=1e-2, warmup_steps=15, eval_every=50, device="cpu"
)


@dataclass(frozen=True, slots=True)
class TrainedLM:
    model: PreTrainedModel
    history: list[LMEvaluation]


def greedy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, tokens: int
) -> list[int]:
    """The ids ``model`` adds to ``prompt`` by greedy decoding (``generate`` is untyped)."""
    encoded = tokenizer(prompt, return_tensors="pt")
    generate: Any = model.generate
    output = generate(**encoded, max_new_tokens=tokens, do_sample=False)
    return [int(i) for i in output[0, encoded.input_ids.shape[1] :]]


@pytest.fixture(scope="session")
def corpus() -> tuple[list[str], list[str]]:
    """The built-in corpus as ``(train, validation)`` documents."""
    return split_corpus(load_corpus("builtin"), seed=0)


@pytest.fixture(scope="session")
def tokenizer(corpus: tuple[list[str], list[str]]) -> PreTrainedTokenizerFast:
    return train_tokenizer(corpus[0], VOCAB_SIZE)


@pytest.fixture(scope="session")
def trained_lm(
    corpus: tuple[list[str], list[str]], tokenizer: PreTrainedTokenizerFast
) -> TrainedLM:
    model = build_causal_lm("gpt2", len(tokenizer), CONTEXT_LENGTH, layers=2, heads=4, width=64)
    history = train_causal_lm(model, tokenizer, *corpus, CONFIG)
    return TrainedLM(model, history)
