"""The download sink on its own: a file appears only complete and with the right sha256
(the server verifies what it sends too, so this side is checked directly)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from maas.client._plan import FileSink
from maas.errors import IntegrityError

DATA = b"model bytes " * 1000


def _write(sink: FileSink) -> None:
    with sink.writing() as write:
        for start in range(0, len(DATA), 4096):
            write(DATA[start : start + 4096])


def test_a_complete_file_with_the_right_digest_appears(tmp_path: Path) -> None:
    target = tmp_path / "out" / "m-1.onnx"
    _write(FileSink(target, hashlib.sha256(DATA).hexdigest(), len(DATA)))
    assert target.read_bytes() == DATA
    assert [p.name for p in target.parent.iterdir()] == ["m-1.onnx"]


@pytest.mark.parametrize(
    ("sha256", "size_bytes", "words"),
    [("0" * 64, len(DATA), "sha256"), (hashlib.sha256(DATA).hexdigest(), 5, "bytes")],
)
def test_a_wrong_digest_or_size_leaves_no_file(
    tmp_path: Path, sha256: str, size_bytes: int, words: str
) -> None:
    target = tmp_path / "m-1.onnx"
    target.write_bytes(b"the previous download")
    with pytest.raises(IntegrityError, match=words):
        _write(FileSink(target, sha256, size_bytes))
    assert [p.name for p in tmp_path.iterdir()] == ["m-1.onnx"]
    assert target.read_bytes() == b"the previous download"


def test_an_interrupted_download_leaves_no_file(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "m-1.onnx")
    with pytest.raises(ConnectionError), sink.writing() as write:
        write(b"half")
        raise ConnectionError("gone")
    assert list(tmp_path.iterdir()) == []
