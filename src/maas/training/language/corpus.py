"""Text corpora for language models: the built-in one or a user's UTF-8 file, and their split.

A corpus is a list of documents: the paragraphs of a text file, separated by blank lines.
``"builtin"`` is the text shipped in this package (``builtin_corpus`` says how it was made).
Standard library only, so a torch-free caller (a job spec's check) can read and refuse a corpus.

>>> documents = load_corpus("builtin")
>>> train, validation = split_corpus(documents, seed=0)
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Final

from maas.errors import InvalidInputError
from maas.training.language.builtin_corpus import BUILTIN_FILE

__all__ = ["BUILTIN", "MAX_CORPUS_BYTES", "corpus_sha256", "load_corpus", "split_corpus"]

BUILTIN: Final = "builtin"
MAX_CORPUS_BYTES: Final = 64 * 2**20
"""A corpus is read whole into memory and tokenised at once; 64 MiB is far past what the
CPU trains on in a job's time and still fits easily."""

_PARAGRAPH_BREAK: Final = re.compile(r"\n[ \t]*\n")


def _refuse(message: str) -> InvalidInputError:
    return InvalidInputError(f"corpus: {message}", {"field": "corpus"})


def load_corpus(source: str | Path) -> list[str]:
    """The documents of ``"builtin"`` or of a UTF-8 text file, in file order.

    Lines ending ``\\r\\n`` count as ``\\n``; each document is stripped and empty ones dropped.
    Refuses (``InvalidInputError``, field ``corpus``, naming the file but never its folder or
    content) a missing, unreadable, oversized, non-UTF-8 or empty file.
    """
    if str(source) == BUILTIN:
        raw = (resources.files("maas.training.language") / "corpus" / BUILTIN_FILE).read_bytes()
        return _documents(raw.decode("utf-8"))
    path = Path(source)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise _refuse(f"{path.name} is not a file")
        if size > MAX_CORPUS_BYTES:
            raise _refuse(f"{path.name} is {size} bytes, over the {MAX_CORPUS_BYTES} allowed")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise _refuse(f"no such file {path.name!r}") from None
    except UnicodeDecodeError as error:
        raise _refuse(f"{path.name} is not UTF-8 text (byte {error.start})") from None
    except OSError:
        raise _refuse(f"{path.name} cannot be read") from None
    documents = _documents(text.removeprefix("\ufeff"))
    if not documents:
        raise _refuse(f"{path.name} holds no text")
    return documents


def _documents(text: str) -> list[str]:
    paragraphs = _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n"))
    return [p.strip() for p in paragraphs if p.strip()]


def split_corpus(
    documents: Sequence[str], *, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``(train, validation)``: a seeded random choice of whole documents, each kept in order.

    Whole documents, so no validation text was seen in training; at least one in each part.
    """
    if not 0 < validation_fraction < 1:
        raise InvalidInputError(
            f"validation_fraction must be in (0, 1), got {validation_fraction!r}",
            {"field": "validation_fraction"},
        )
    if len(documents) < 2:
        raise _refuse(
            f"needs at least 2 documents (paragraphs separated by a blank line) for a "
            f"validation split, got {len(documents)}"
        )
    count = min(len(documents) - 1, max(1, round(len(documents) * validation_fraction)))
    held_out = set(random.Random(seed).sample(range(len(documents)), count))
    train = [d for i, d in enumerate(documents) if i not in held_out]
    validation = [d for i, d in enumerate(documents) if i in held_out]
    return train, validation


def corpus_sha256(documents: Sequence[str]) -> str:
    """A digest of the documents (not of the file's bytes), recorded in a version's lineage."""
    digest = hashlib.sha256()
    for document in documents:
        data = document.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()
