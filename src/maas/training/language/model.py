"""Small causal language models, GPT-2 or Llama, built from a config with seeded weights.

The defaults (4 layers, 4 heads, width 128, context 256) make about a million weights at a
2k vocabulary: small enough to train on two CPU cores in minutes, large enough to learn the
built-in corpus. Input and output embeddings are tied (GPT-2's default, and set for Llama), so
the vocabulary costs its embedding once. Dropout is off by default: a short run on a small
corpus learns faster without it and does not overfit the templated text.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import torch
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from maas.errors import InvalidInputError
from maas.training.language._quiet import quiet_transformers
from maas.training.language.chat import END_OF_TEXT, IM_END

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "build_causal_lm",
    "configure_generation",
    "context_length_of",
    "parameter_count",
]

Architecture = Literal["gpt2", "llama"]
ARCHITECTURES: Final[tuple[str, ...]] = get_args(Architecture)
_MAX_VOCAB: Final = 2**20
_MAX_LAYERS: Final = 48
_MAX_WIDTH: Final = 4096
_MAX_CONTEXT: Final = 32_768
_WIDTH_RULE: Final = f"must be a multiple of heads, up to {_MAX_WIDTH}"


def build_causal_lm(
    architecture: Architecture,
    vocab_size: int,
    context_length: int = 256,
    layers: int = 4,
    heads: int = 4,
    width: int = 128,
    seed: int = 0,
    *,
    dropout: float = 0.0,
) -> PreTrainedModel:
    """A freshly initialised ``GPT2LMHeadModel`` or ``LlamaForCausalLM``; the same arguments
    give the same weights, and the caller's torch RNG is untouched.

    ``vocab_size`` should be ``len(tokenizer)``. Llama's feed-forward width is 8/3 of
    ``width`` (rounded up to a multiple of 32), which matches GPT-2's 4x in weights.

    >>> model = build_causal_lm("gpt2", len(tokenizer), context_length=128)  # doctest: +SKIP
    """
    arguments: dict[str, object] = {
        "architecture": architecture,
        "vocab_size": vocab_size,
        "context_length": context_length,
        "layers": layers,
        "heads": heads,
        "width": width,
        "dropout": dropout,
    }
    head_size = width // heads if heads >= 1 else 0
    checks: list[tuple[str, bool, str]] = [
        ("architecture", architecture in ARCHITECTURES, f"must be one of {ARCHITECTURES}"),
        ("vocab_size", 1 <= vocab_size <= _MAX_VOCAB, f"must be in [1, {_MAX_VOCAB}]"),
        ("context_length", 2 <= context_length <= _MAX_CONTEXT, f"must be in [2, {_MAX_CONTEXT}]"),
        ("layers", 1 <= layers <= _MAX_LAYERS, f"must be in [1, {_MAX_LAYERS}]"),
        ("heads", 1 <= heads <= width, "must be in [1, width]"),
        ("width", width <= _MAX_WIDTH and head_size * heads == width, _WIDTH_RULE),
        ("width", architecture != "llama" or head_size % 2 == 0, "/ heads must be even in llama"),
        ("dropout", 0 <= dropout < 1, "must be in [0, 1)"),
    ]
    for name, ok, message in checks:
        if not ok:
            value = arguments[name]
            raise InvalidInputError(
                f"{name} {message}, got {value!r}", {"field": name, "value": value}
            )
    with torch.random.fork_rng(devices=[]), quiet_transformers():
        torch.manual_seed(seed)
        if architecture == "gpt2":
            config = GPT2Config(
                vocab_size=vocab_size,
                n_positions=context_length,
                n_embd=width,
                n_layer=layers,
                n_head=heads,
                resid_pdrop=dropout,
                embd_pdrop=dropout,
                attn_pdrop=dropout,
            )
            return GPT2LMHeadModel(config)
        llama = LlamaConfig(
            vocab_size=vocab_size,
            max_position_embeddings=context_length,
            hidden_size=width,
            intermediate_size=-(-8 * width // 3 // 32) * 32,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            attention_dropout=dropout,
            tie_word_embeddings=True,
        )
        return LlamaForCausalLM(llama)


def context_length_of(model: PreTrainedModel) -> int:
    """The longest sequence ``model`` takes: GPT-2's ``n_positions``, else
    ``max_position_embeddings``."""
    length = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    return int(length)


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct weights; tied embeddings count once."""
    return sum(p.numel() for p in model.parameters())


def configure_generation(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Set ``model``'s special-token ids and generation defaults from ``tokenizer``.

    Generation stops at ``<|endoftext|>`` and at ``<|im_end|>`` (the end of a chat reply);
    ``<|endoftext|>`` pads. Greedy by default: a request's sampling parameters override it.
    """
    vocabulary = tokenizer.get_vocab()
    end = vocabulary[END_OF_TEXT]
    stops = [end] + ([vocabulary[IM_END]] if IM_END in vocabulary else [])
    model.config.bos_token_id = end
    model.config.eos_token_id = end
    model.config.pad_token_id = end
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]  # unannotated
        bos_token_id=end, eos_token_id=stops, pad_token_id=end, do_sample=False
    )
