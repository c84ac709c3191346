from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from maas.errors import InvalidInputError
from maas.training.language.model import build_causal_lm, configure_generation
from maas.training.language.trainer import LMTrainConfig, perplexity, train_causal_lm

from .conftest import CONFIG, TrainedLM, greedy


def test_validation_perplexity_falls_far_below_the_untrained_models(
    trained_lm: TrainedLM, tokenizer: PreTrainedTokenizerFast
) -> None:
    history = trained_lm.history
    assert [e["step"] for e in history] == [0, 50, 100, 150]
    before, after = history[0]["val_perplexity"], history[-1]["val_perplexity"]
    assert before > len(tokenizer) / 2  # knowing nothing is about uniform over the vocabulary
    assert after < len(tokenizer) / 4 and after < before / 50
    assert history[0]["train_loss"] is None
    losses = [e["train_loss"] for e in history[1:]]
    assert losses == sorted(losses, reverse=True)  # type: ignore[type-var]  # no None after step 0
    assert all(math.isclose(e["val_perplexity"], math.exp(e["val_loss"])) for e in history)


def test_perplexity_matches_the_last_evaluation(
    trained_lm: TrainedLM,
    tokenizer: PreTrainedTokenizerFast,
    corpus: tuple[list[str], list[str]],
) -> None:
    measured = perplexity(trained_lm.model, tokenizer, corpus[1])
    assert math.isclose(measured, trained_lm.history[-1]["val_perplexity"], rel_tol=1e-6)
    assert perplexity(trained_lm.model, tokenizer, corpus[1], context_length=32) > measured


def test_greedy_generation_continues_a_corpus_sentence(
    trained_lm: TrainedLM,
    tokenizer: PreTrainedTokenizerFast,
    corpus: tuple[list[str], list[str]],
) -> None:
    text = "\n\n".join(corpus[0])
    animals = set(re.findall(r"there was a little (\w+)", text))
    words = set(re.findall(r"\w+", text))
    configure_generation(trained_lm.model, tokenizer)
    ids = greedy(trained_lm.model, tokenizer, "Once upon a time, there was a little", 24)
    continuation = tokenizer.decode(ids)
    assert isinstance(continuation, str)
    generated = re.findall(r"\w+", continuation)
    assert generated[0] in animals, continuation
    assert generated[1] == "named", continuation
    assert set(generated) <= words, continuation


def test_same_seed_same_weights(tokenizer: PreTrainedTokenizerFast) -> None:
    texts = ["Tom has two apples. Lily gives Tom three more apples."] * 20
    config = LMTrainConfig(steps=4, batch_size=2, warmup_steps=1, seed=5, device="cpu")

    def run(seed: int) -> torch.nn.Module:
        model = build_causal_lm("llama", len(tokenizer), 16, 1, 2, 16, seed=1)
        train_causal_lm(model, tokenizer, texts, texts[:2], dataclasses.replace(config, seed=seed))
        return model

    first, second, other = run(5), run(5), run(6)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert any(
        not torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters(), strict=True)
    )


def test_on_step_sees_every_step_and_can_cancel(tokenizer: PreTrainedTokenizerFast) -> None:
    texts = ["The cat says meow. The dog says woof."] * 10
    model = build_causal_lm("gpt2", len(tokenizer), 16, 1, 2, 16)
    seen: list[tuple[int, int]] = []

    def on_step(step: int, steps: int) -> None:
        seen.append((step, steps))
        if step == 3:
            raise KeyboardInterrupt  # what a cancelled job raises does not matter

    config = LMTrainConfig(steps=10, batch_size=2, warmup_steps=0, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        train_causal_lm(model, tokenizer, texts, texts, config, on_step)
    assert seen == [(1, 10), (2, 10), (3, 10)]


def test_evaluations_are_reported_as_made(tokenizer: PreTrainedTokenizerFast) -> None:
    texts = ["The cat says meow."] * 4
    model = build_causal_lm("gpt2", len(tokenizer), 8, 1, 2, 16)
    config = LMTrainConfig(steps=5, batch_size=1, warmup_steps=0, eval_every=2, device="cpu")
    reported: list[object] = []
    history = train_causal_lm(model, tokenizer, texts, texts, config, on_evaluation=reported.append)
    assert reported == history
    assert [e["step"] for e in history] == [0, 2, 4, 5]
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_refuses_a_corpus_the_model_cannot_learn_from(tokenizer: PreTrainedTokenizerFast) -> None:
    model = build_causal_lm("gpt2", len(tokenizer), 8, 1, 2, 16)
    with pytest.raises(InvalidInputError, match="corpus: the training text"):
        train_causal_lm(model, tokenizer, [], ["x y"], CONFIG)
    small = build_causal_lm("gpt2", 300, 8, 1, 2, 16)
    with pytest.raises(InvalidInputError, match="the model only 300"):
        train_causal_lm(small, tokenizer, ["x y"], ["x y"], CONFIG)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("warmup_steps", 400),
        ("device", "tpu"),
    ],
)
def test_config_refuses_nonsense(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=field):
        LMTrainConfig(**{field: value})  # type: ignore[arg-type]  # parametrised field name
