"""Train, save and register a language model in one call: the path of a ``language-model`` job.

The corpus is split into whole training and held-out documents, a byte-level BPE tokenizer
is learnt from the training documents, a causal LM is trained on them, the Hugging Face
folder is written and reloaded (``export.save_hf_folder``), packed as one archive and checked
as any uploaded archive is (``maas.runtimes.hf_archive``), then registered as a version of
format ``hf``. Serving that format is the next step of issue 12: until a runtime for it is
installed, such a version is registered and listed but refused at load with the reason.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import tokenizers
import torch
import transformers

import maas
from maas.protocol.signature import Signature, TensorSpec
from maas.registry.entities import ModelVersion
from maas.runtimes.hf_archive import check_archive, pack_folder
from maas.training.language.corpus import corpus_sha256, load_corpus, split_corpus
from maas.training.language.export import save_hf_folder
from maas.training.language.model import build_causal_lm, parameter_count
from maas.training.language.spec import CorpusSpec, LanguageModelSpec
from maas.training.language.tokenizer import train_tokenizer
from maas.training.language.trainer import LMTrainConfig, train_causal_lm
from maas.training.pipeline import TrainingHooks, VersionRegistrar

__all__ = ["GENERATION_SIGNATURE", "HF_FORMAT", "train_language_model", "validate_language_model"]

HF_FORMAT: Final = "hf"
"""The artifact format of a Hugging Face folder packed as one uncompressed tar."""
GENERATION_SIGNATURE: Final = Signature(
    inputs=(TensorSpec("text_input", "BYTES", (-1,)),),
    outputs=(TensorSpec("text_output", "BYTES", (-1,)),),
)
"""The V2 generate extension's tensors: text in, text out."""
_log = logging.getLogger("maas.training")


def _documents(corpus: CorpusSpec) -> list[str]:
    return load_corpus("builtin" if corpus.kind == "builtin" else Path(str(corpus.path)))


def validate_language_model(spec: LanguageModelSpec) -> None:
    """The checks that need the text, so a job that cannot train is never queued."""
    documents = _documents(spec.corpus)
    split_corpus(
        documents,
        validation_fraction=spec.corpus.validation_fraction,
        seed=spec.hyperparameters.seed,
    )


def _train_config(spec: LanguageModelSpec) -> LMTrainConfig:
    h = spec.hyperparameters
    return LMTrainConfig(
        steps=h.steps,
        batch_size=h.batch_size,
        learning_rate=h.learning_rate,
        weight_decay=h.weight_decay,
        warmup_steps=min(h.warmup_steps, h.steps),
        eval_every=h.eval_every,
        seed=h.seed,
        device=spec.device,
    )


def train_language_model(
    registry: VersionRegistrar, spec: LanguageModelSpec, hooks: TrainingHooks | None = None
) -> ModelVersion:
    """Train what ``spec`` asks for and register it; ``hooks.on_step(1, step, steps)`` reports
    progress (and cancels by raising), ``hooks.lineage`` is merged into the lineage."""
    hooks = hooks or TrainingHooks()
    started = time.monotonic()
    documents = _documents(spec.corpus)
    h = spec.hyperparameters
    train_texts, val_texts = split_corpus(
        documents, validation_fraction=spec.corpus.validation_fraction, seed=h.seed
    )
    _log.info(
        "corpus %s: %d training, %d held-out documents",
        spec.corpus.kind if spec.corpus.path is None else Path(spec.corpus.path).name,
        len(train_texts),
        len(val_texts),
    )
    tokenizer = train_tokenizer(train_texts, spec.tokenizer.vocab_size)
    _log.info("tokenizer: byte-level BPE, %d tokens", len(tokenizer))
    arch = spec.model
    model = build_causal_lm(
        arch.architecture,
        len(tokenizer),
        arch.context_length,
        arch.layers,
        arch.heads,
        arch.width,
        h.seed,
    )
    _log.info(
        "model %s: %d parameters; training %d steps of %d x %d tokens",
        arch.architecture,
        parameter_count(model),
        h.steps,
        h.batch_size,
        arch.context_length,
    )
    on_step = hooks.on_step

    def report(step: int, steps: int) -> None:
        if on_step is not None:
            on_step(1, step, steps)

    evaluations = train_causal_lm(
        model,
        tokenizer,
        train_texts,
        val_texts,
        _train_config(spec),
        report,
        on_evaluation=lambda e: _log.info(
            "step %d: val_loss %.4f, val_perplexity %.2f",
            e["step"],
            e["val_loss"],
            e["val_perplexity"],
        ),
    )
    last = evaluations[-1]
    with tempfile.TemporaryDirectory(prefix="maas-lm-") as workdir:
        folder = Path(workdir) / "model"
        _log.info("saving the Hugging Face folder (safetensors), reloaded and checked")
        save_hf_folder(model, tokenizer, folder)
        archive = pack_folder(folder, Path(workdir) / f"{spec.model_name}.tar")
        info = check_archive(archive)
        metrics: dict[str, Any] = {
            "val_loss": last["val_loss"],
            "val_perplexity": last["val_perplexity"],
            "parameter_count": info.parameter_count,
            "size_bytes": archive.stat().st_size,
            "training_seconds": round(time.monotonic() - started, 1),
            "evaluations": list(evaluations),
        }
        lineage: dict[str, Any] = {
            "source": "language-model",
            "corpus": {
                "kind": spec.corpus.kind,
                "sha256": corpus_sha256(documents),
                "documents": len(documents),
                "train_documents": len(train_texts),
                "validation_documents": len(val_texts),
            },
            "language_model": {
                "task": info.task,
                "model_type": info.model_type,
                "context_length": info.context_length,
                "vocab_size": info.vocab_size,
                "chat_template": info.has_chat_template,
            },
            "spec": spec.model_dump(mode="json"),
            "seed": h.seed,
            "libraries": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
                "maas": maas.__version__,
            },
        }
        return registry.register_version(
            spec.model_name,
            archive,
            artifact_format=HF_FORMAT,
            signature=GENERATION_SIGNATURE,
            metrics=metrics,
            lineage=lineage | hooks.lineage,
            actor="train",
        )
