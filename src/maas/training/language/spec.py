"""The language-model job spec: a byte-level BPE tokenizer and a small causal LM, trained on
a text corpus and registered as a Hugging Face folder (one ``hf`` artifact). Torch-free: the
server parses it.

>>> LanguageModelSpec(kind="language-model").model.architecture
'gpt2'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from maas.training.spec import _MODEL_NAME, _Strict

__all__ = [
    "CorpusSpec",
    "LanguageModelArchitecture",
    "LanguageModelSpec",
    "LanguageModelTraining",
    "TokenizerSpec",
]


class CorpusSpec(_Strict):
    """The text: the corpus shipped with maas, or a UTF-8 file (paragraphs are documents)."""

    kind: Literal["builtin", "text"] = "builtin"
    path: Path | None = Field(default=None, validate_default=True)
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)

    @field_validator("path")
    @classmethod
    def _path_matches_kind(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        kind = info.data.get("kind")
        if kind == "builtin" and value is not None:
            raise ValueError("the built-in corpus takes no path")
        if kind == "text" and value is None:
            raise ValueError("required for kind 'text'")
        return value


class TokenizerSpec(_Strict):
    """Byte-level BPE: every byte is a token, merges learnt up to ``vocab_size``."""

    vocab_size: int = Field(default=1024, ge=300, le=65_536)


class LanguageModelArchitecture(_Strict):
    """A decoder-only transformer; the defaults make about a million parameters."""

    architecture: Literal["gpt2", "llama"] = "gpt2"
    layers: int = Field(default=4, ge=1, le=48)
    heads: int = Field(default=4, ge=1, le=64)
    width: int = Field(default=128, ge=16, le=8192)
    context_length: int = Field(default=256, ge=16, le=32_768)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> LanguageModelArchitecture:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        return self


class LanguageModelTraining(_Strict):
    """Optimiser steps over blocks of ``context_length`` tokens, evaluated every
    ``eval_every`` steps on the held-out documents."""

    steps: int = Field(default=300, ge=1, le=1_000_000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(default=0.01, ge=0.0, le=1.0)
    warmup_steps: int = Field(default=30, ge=0, le=1_000_000)
    eval_every: int = Field(default=100, ge=1, le=1_000_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class LanguageModelSpec(_Strict):
    """One language-model job: what to train, on what text, under which registered name."""

    kind: Literal["language-model"]
    model_name: str = Field(default="tiny-lm", pattern=f"^{_MODEL_NAME}$")
    corpus: CorpusSpec = Field(default_factory=CorpusSpec)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    model: LanguageModelArchitecture = Field(default_factory=LanguageModelArchitecture)
    hyperparameters: LanguageModelTraining = Field(default_factory=LanguageModelTraining)
    device: Literal["auto", "cpu", "cuda"] = "auto"
