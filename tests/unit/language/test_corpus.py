from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from maas.errors import InvalidInputError
from maas.training.language import corpus as corpus_module
from maas.training.language.builtin_corpus import BUILTIN_FILE, generate_corpus
from maas.training.language.chat import IM_END, IM_START
from maas.training.language.corpus import corpus_sha256, load_corpus, split_corpus


def test_shipped_corpus_is_what_the_generator_writes() -> None:
    shipped = resources.files("maas.training.language") / "corpus" / BUILTIN_FILE
    assert shipped.read_text(encoding="utf-8") == generate_corpus(0)


def test_builtin_corpus_is_a_few_hundred_kilobytes_of_varied_documents() -> None:
    documents = load_corpus("builtin")
    size = sum(len(d.encode()) for d in documents)
    assert 150_000 <= size <= 300_000
    assert len(documents) > 500
    starts = {d.split(",")[0].split()[0] for d in documents}
    assert {"Once", "One", "This", IM_START + "user", IM_START + "system"} <= starts
    chats = [d for d in documents if d.startswith(IM_START)]
    assert 0.1 < len(chats) / len(documents) < 0.4
    assert all(d.endswith(IM_END) for d in chats)
    assert generate_corpus(1) != generate_corpus(0)


def test_a_text_file_is_split_at_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_bytes(
        "\ufeffFirst one.\r\nStill first.\r\n\r\n  \n\nSecond. \n \t\nThird é\n".encode()
    )
    assert load_corpus(path) == ["First one.\nStill first.", "Second.", "Third é"]
    assert load_corpus(str(path)) == load_corpus(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no such file"),
        (b"", "holds no text"),
        (b" \n\n\t\n", "holds no text"),
        (b"caf\xe9 au lait", "not UTF-8 text"),
        ("folder", "not a file"),
    ],
)
def test_a_bad_file_is_refused_without_showing_its_folder(
    tmp_path: Path, content: bytes | str | None, reason: str
) -> None:
    path = tmp_path / "corpus.txt"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=f"^corpus: .*{reason}") as caught:
        load_corpus(path)
    assert caught.value.details == {"field": "corpus"}
    assert str(tmp_path) not in caught.value.message
    assert "caf" not in caught.value.message


def test_an_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "MAX_CORPUS_BYTES", 8)
    path = tmp_path / "big.txt"
    path.write_text("nine char", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"big\.txt is 9 bytes, over the 8 allowed"):
        load_corpus(path)


def test_split_is_seeded_whole_documents_in_order() -> None:
    documents = [f"document {i}" for i in range(50)]
    train, validation = split_corpus(documents, seed=3)
    assert (train, validation) == split_corpus(documents, seed=3)
    assert split_corpus(documents, seed=4) != (train, validation)
    assert len(validation) == 5
    assert sorted(train + validation) == sorted(documents)
    assert train == sorted(train, key=documents.index)
    assert validation == sorted(validation, key=documents.index)


def test_split_keeps_one_document_on_each_side() -> None:
    for fraction in (0.01, 0.99):
        train, validation = split_corpus(["a", "b", "c"], validation_fraction=fraction)
        assert len(train) >= 1 and len(validation) >= 1
    with pytest.raises(InvalidInputError, match="at least 2 documents"):
        split_corpus(["only one"])
    with pytest.raises(InvalidInputError, match="validation_fraction"):
        split_corpus(["a", "b"], validation_fraction=1.0)


def test_digest_follows_the_documents_not_their_joins() -> None:
    assert corpus_sha256(["ab", "c"]) == corpus_sha256(["ab", "c"])
    assert corpus_sha256(["ab", "c"]) != corpus_sha256(["a", "bc"])
    assert corpus_sha256(["ab", "c"]) != corpus_sha256(["c", "ab"])
