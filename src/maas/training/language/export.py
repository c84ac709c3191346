"""Save a trained language model in the Hugging Face layout, and prove the folder reloads to it.

The folder holds only data files (``SAFE_FILES``): the config and generation config, the
weights as safetensors (never a pickled ``.bin``), the tokenizer and its chat template. It is
then loaded back the way a server will load it (``from_pretrained`` with safetensors only, no
remote code, no network) and checked to encode as the trained tokenizer does and to give the
same logits within ``1e-5``, as ``maas.training.export`` checks ONNX files against torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from maas.errors import MaasError
from maas.training.language._quiet import quiet_transformers
from maas.training.language.chat import render_chat
from maas.training.language.model import configure_generation, context_length_of

__all__ = ["REQUIRED_FILES", "SAFE_FILES", "save_hf_folder", "verify_hf_folder"]

REQUIRED_FILES: Final = frozenset({"config.json", "model.safetensors", "tokenizer.json"})
SAFE_FILES: Final = REQUIRED_FILES | {
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",  # written by transformers 4, not 5
    "chat_template.jinja",  # transformers 5 (4 keeps the template in tokenizer_config.json)
}
"""Every file the folder may hold; any other name that transformers writes is an error."""

_MAX_ABS_DIFF: Final = 1e-5
_SAMPLE_TEXT: Final = "Once upon a time, there was a little cat named Tom. Tom liked to read books."
_SAMPLE_CHAT: Final = (
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What does a cow say?"},
)


def save_hf_folder(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    *,
    max_abs_diff: float = _MAX_ABS_DIFF,
) -> None:
    """Write ``model`` and ``tokenizer`` to ``folder`` (new or empty), then verify it.

    Sets ``model``'s generation defaults from ``tokenizer`` (``configure_generation``) and the
    tokenizer's ``model_max_length`` to the model's context first, so the folder says both.
    Raises ``MaasError`` if transformers wrote a file outside ``SAFE_FILES`` or the reloaded
    folder differs (``verify_hf_folder``).

    >>> save_hf_folder(model, tokenizer, Path("tiny-lm"))  # doctest: +SKIP
    """
    if folder.exists() and any(folder.iterdir()):
        raise MaasError(f"export folder {folder.name!r} is not empty", {"folder": folder.name})
    folder.mkdir(parents=True, exist_ok=True)
    module: torch.nn.Module = model  # transformers' own annotations of eval/to are broken
    module.eval()
    configure_generation(model, tokenizer)
    tokenizer.model_max_length = context_length_of(model)
    with quiet_transformers():
        model.save_pretrained(
            folder
        )  # safetensors: the only format transformers >= 4.35 writes by default
        tokenizer.save_pretrained(folder)
    names = {p.name for p in folder.iterdir()}
    if unexpected := sorted(names - SAFE_FILES):
        raise MaasError(
            f"export wrote {unexpected[0]!r}, which is not a safe Hugging Face file",
            {"file": unexpected[0]},
        )
    if missing := sorted(REQUIRED_FILES - names):
        raise MaasError(f"export did not write {missing[0]!r}", {"file": missing[0]})
    verify_hf_folder(model, tokenizer, folder, max_abs_diff=max_abs_diff)


def verify_hf_folder(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    *,
    max_abs_diff: float = _MAX_ABS_DIFF,
) -> float:
    """Reload ``folder`` and compare it with ``model`` and ``tokenizer``; return the max abs
    difference of the logits on a sample.

    Raises ``MaasError`` when the reloaded tokenizer encodes the sample or renders the chat
    template differently, or a logit differs by more than ``max_abs_diff``.
    """
    with quiet_transformers():
        reloaded = AutoModelForCausalLM.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, local_files_only=True
        )
        reloaded_tokenizer = AutoTokenizer.from_pretrained(
            folder, trust_remote_code=False, local_files_only=True
        )
    chat = render_chat(_SAMPLE_CHAT, add_generation_prompt=True)
    for sample in (_SAMPLE_TEXT, chat):
        if reloaded_tokenizer(sample).input_ids != tokenizer(sample).input_ids:
            raise MaasError("export check failed: the saved tokenizer encodes differently")
    if tokenizer.chat_template is not None:
        rendered = reloaded_tokenizer.apply_chat_template(
            list(_SAMPLE_CHAT), tokenize=False, add_generation_prompt=True
        )
        if rendered != tokenizer.apply_chat_template(
            list(_SAMPLE_CHAT), tokenize=False, add_generation_prompt=True
        ):
            raise MaasError("export check failed: the saved chat template renders differently")
    device = next(model.parameters()).device
    ids = tokenizer(_SAMPLE_TEXT + chat).input_ids[: context_length_of(model)]
    batch = torch.tensor([ids], dtype=torch.long, device=device)
    module: torch.nn.Module = model  # transformers' own annotations of eval/to are broken
    loaded: torch.nn.Module = reloaded
    module.eval()
    loaded.to(device).eval()
    with torch.no_grad():
        expected = model(input_ids=batch, use_cache=False).logits.double().cpu().numpy()
        actual = reloaded(input_ids=batch, use_cache=False).logits.double().cpu().numpy()
    if actual.shape != expected.shape:
        raise MaasError(
            f"export check failed: logits shape {actual.shape} != the model's {expected.shape}"
        )
    diff = float(np.max(np.abs(actual - expected)))
    if not diff <= max_abs_diff:  # also catches NaN
        raise MaasError(
            f"export check failed: max abs difference {diff:.3g} from the trained model "
            f"exceeds {max_abs_diff:.3g}",
            {"max_abs_diff": diff, "tolerance": max_abs_diff},
        )
    return diff
