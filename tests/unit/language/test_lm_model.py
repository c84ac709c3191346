from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel, LlamaForCausalLM, PreTrainedTokenizerFast

from maas.errors import InvalidInputError
from maas.training.language.model import (
    build_causal_lm,
    configure_generation,
    context_length_of,
    parameter_count,
)


@pytest.mark.parametrize(
    ("architecture", "kind"), [("gpt2", GPT2LMHeadModel), ("llama", LlamaForCausalLM)]
)
def test_builds_a_small_tied_causal_lm(architecture: str, kind: type) -> None:
    model = build_causal_lm(architecture, 1000, context_length=64, layers=2, heads=4, width=64)  # type: ignore[arg-type]  # parametrised
    assert isinstance(model, kind)
    assert context_length_of(model) == 64
    output = model.get_output_embeddings()  # type: ignore[no-untyped-call]  # unannotated upstream
    assert model.get_input_embeddings().weight is output.weight
    assert 100_000 < parameter_count(model) < 200_000
    with torch.no_grad():
        logits = model(input_ids=torch.zeros(3, 64, dtype=torch.long)).logits
    assert logits.shape == (3, 64, 1000)


def test_defaults_are_about_a_million_weights() -> None:
    for architecture in ("gpt2", "llama"):
        count = parameter_count(build_causal_lm(architecture, 2048))
        assert 800_000 < count < 1_500_000


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b, c = (build_causal_lm("llama", 300, 32, 1, 2, 16, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_generation_stops_at_either_end_token(tokenizer: PreTrainedTokenizerFast) -> None:
    model = build_causal_lm("gpt2", len(tokenizer), 32, 1, 2, 16)
    configure_generation(model, tokenizer)
    assert model.generation_config.eos_token_id == [0, 2]
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"architecture": "bert"}, "architecture"),
        ({"width": 30, "heads": 4}, "width"),
        ({"width": 12, "heads": 4, "architecture": "llama"}, "width"),  # head size 3: odd
        ({"layers": 0}, "layers"),
        ({"context_length": 1}, "context_length"),
        ({"dropout": 1.0}, "dropout"),
        ({"vocab_size": 0}, "vocab_size"),
    ],
)
def test_nonsense_is_refused(arguments: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"architecture": "gpt2", "vocab_size": 300, **arguments}
    with pytest.raises(InvalidInputError) as caught:
        build_causal_lm(**values)  # type: ignore[arg-type]  # parametrised
    assert caught.value.details["field"] == field
