from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from maas.errors import MaasError
from maas.training.language.export import (
    REQUIRED_FILES,
    SAFE_FILES,
    save_hf_folder,
    verify_hf_folder,
)
from maas.training.language.model import build_causal_lm

from .conftest import CONTEXT_LENGTH, TrainedLM, greedy


@pytest.fixture(scope="module")
def folder(
    trained_lm: TrainedLM,
    tokenizer: PreTrainedTokenizerFast,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    target = tmp_path_factory.mktemp("export") / "tiny-lm"
    save_hf_folder(trained_lm.model, tokenizer, target)
    return target


def test_folder_holds_only_safe_data_files(folder: Path) -> None:
    names = {p.name for p in folder.iterdir()}
    assert REQUIRED_FILES <= names <= SAFE_FILES
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert "auto_map" not in config
    assert config["n_positions"] == CONTEXT_LENGTH
    generation = json.loads((folder / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [0, 2] and generation["pad_token_id"] == 0
    assert (folder / "model.safetensors").read_bytes()[8:9] == b"{"  # a safetensors header


def test_reloaded_folder_computes_what_the_trained_model_does(
    trained_lm: TrainedLM, tokenizer: PreTrainedTokenizerFast, folder: Path
) -> None:
    assert verify_hf_folder(trained_lm.model, tokenizer, folder) <= 1e-5
    model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
    reloaded = AutoTokenizer.from_pretrained(folder)
    assert reloaded.model_max_length == CONTEXT_LENGTH
    prompt = "One morning, Tom the"
    assert greedy(model, reloaded, prompt, 12) == greedy(trained_lm.model, tokenizer, prompt, 12)
    chat = [{"role": "user", "content": "What does a cow say?"}]
    assert reloaded.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nWhat does a cow say?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_llama_round_trips_too(tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    model = build_causal_lm("llama", len(tokenizer), 32, layers=1, heads=2, width=32)
    save_hf_folder(model, copy.deepcopy(tokenizer), tmp_path / "llama")
    config = json.loads((tmp_path / "llama" / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert config["max_position_embeddings"] == 32


def test_a_changed_model_fails_the_check(
    trained_lm: TrainedLM, tokenizer: PreTrainedTokenizerFast, folder: Path
) -> None:
    changed = copy.deepcopy(trained_lm.model)
    with torch.no_grad():
        changed.get_parameter("transformer.wte.weight")[:, 0] += 1e-3
    with pytest.raises(MaasError, match="max abs difference"):
        verify_hf_folder(changed, tokenizer, folder)


def test_a_non_empty_folder_is_refused(tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    (tmp_path / "stale.bin").write_bytes(b"x")
    model = build_causal_lm("gpt2", len(tokenizer), 16, 1, 2, 16)
    with pytest.raises(MaasError, match="not empty") as caught:
        save_hf_folder(model, copy.deepcopy(tokenizer), tmp_path)
    assert str(tmp_path.parent) not in caught.value.message
