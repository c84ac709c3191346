"""A language-model job as its worker runs it: the tiny LM trained on maas's own corpus,
registered as one ``hf`` archive whose folder loads back in transformers and generates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maas.errors import InvalidInputError
from maas.jobs.kinds import parse_job
from maas.jobs.submission import submit_job
from maas.registry import Registry
from maas.registry.entities import ModelVersion
from maas.runtimes.hf_archive import check_archive, extract_archive
from maas.store import LocalStore
from maas.training.language.spec import LanguageModelSpec

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

SMALL: dict[str, Any] = {
    "kind": "language-model",
    "model_name": "tiny-lm",
    "tokenizer": {"vocab_size": 512},
    "model": {"layers": 2, "heads": 2, "width": 64, "context_length": 64},
    "hyperparameters": {"steps": 80, "batch_size": 8, "eval_every": 40},
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    home = tmp_path_factory.mktemp("lm")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def version(registry: Registry) -> ModelVersion:
    from maas.training.language.pipeline import train_language_model

    spec = parse_job(SMALL)
    assert isinstance(spec, LanguageModelSpec)
    return train_language_model(registry, spec)


def test_the_version_is_one_checked_hf_archive_with_its_language_model_facts(
    registry: Registry, version: ModelVersion
) -> None:
    assert version.artifact_format == "hf" and set(version.artifacts) == {"hf"}
    info = check_archive(registry.artifact_path(version, "hf"))
    assert info.task == "generation" and info.model_type == "gpt2"
    assert version.lineage["language_model"] == {
        "task": "generation",
        "model_type": "gpt2",
        "context_length": 64,
        "vocab_size": info.vocab_size,
        "chat_template": True,
    }
    assert version.lineage["corpus"]["kind"] == "builtin"
    assert version.metrics["parameter_count"] == info.parameter_count
    assert [t.name for t in version.signature.inputs] == ["text_input"]
    # Trained: far better than guessing among the vocabulary.
    assert version.metrics["val_perplexity"] < info.vocab_size / 4, version.metrics


def test_the_registered_folder_loads_in_transformers_and_generates(
    registry: Registry, version: ModelVersion, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    extract_archive(registry.artifact_path(version, "hf"), folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, use_safetensors=True, trust_remote_code=False
    )
    prompt = tokenizer("Once upon a time", return_tensors="pt")
    output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, tokenize=False
    )
    assert chat.endswith("<|im_start|>assistant\n")


def test_a_job_is_validated_at_submission(registry: Registry, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    for document, field in (
        ({**SMALL, "corpus": {"kind": "text"}}, "corpus.path"),
        ({**SMALL, "corpus": {"kind": "text", "path": str(empty)}}, "corpus"),
        ({**SMALL, "model": {"width": 66, "heads": 4}}, "model"),
    ):
        with pytest.raises(InvalidInputError) as refused:
            submit_job(registry, document, actor="test")
        assert refused.value.details["field"] == field, refused.value.message
    assert registry.jobs.list_jobs() == []
    job = submit_job(registry, SMALL, actor="test")
    assert job.state == "queued" and job.model_name == "tiny-lm" and job.epochs == 1
