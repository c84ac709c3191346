"""Archives built to hurt their reader are refused from the central directory alone:
too many members, bombs, names outside the archive and symbolic links."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from maas.errors import InvalidArtifactError
from maas.runtimes.safety import ArchiveLimits, check_archive


def _zip(path: Path, members: dict[str, bytes], *, compress: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_an_ordinary_archive_passes(tmp_path: Path) -> None:
    check_archive(_zip(tmp_path / "a.zip", {"m/data.pkl": b"x" * 100, "m/code/f.py": b"y"}))


@pytest.mark.parametrize(
    "name", ["../escape.txt", "m/../../escape", "/etc/passwd", "\\windows\\x", "C:/x", "a\\..\\b"]
)
def test_a_member_named_outside_the_archive_is_refused(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path / "a.zip", {name: b"x"})
    with pytest.raises(InvalidArtifactError, match="outside the archive") as caught:
        check_archive(path)
    assert caught.value.details["member"] == name


def test_a_symbolic_link_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("m/data.pkl")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidArtifactError, match="symbolic link"):
        check_archive(path)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "many.zip", {f"m/{i}": b"" for i in range(101)})
    with pytest.raises(InvalidArtifactError, match="101 members"):
        check_archive(path, ArchiveLimits(max_members=100))
    check_archive(path, ArchiveLimits(max_members=101))


def test_a_bomb_is_refused_before_anything_inflates(tmp_path: Path) -> None:
    # 40 MB of zeros compresses to ~40 KB: the ratio a real model never has.
    path = _zip(tmp_path / "bomb.zip", {"m/data/0": bytes(40 * 2**20)})
    assert path.stat().st_size < 2**20
    with pytest.raises(InvalidArtifactError, match="zip bomb") as caught:
        check_archive(path)
    assert caught.value.details["inflated_bytes"] == 40 * 2**20


def test_the_inflated_total_is_bounded(tmp_path: Path) -> None:
    path = _zip(tmp_path / "big.zip", {"m/a": b"\x01" * 5000}, compress=False)
    with pytest.raises(InvalidArtifactError, match="inflates to"):
        check_archive(path, ArchiveLimits(max_inflated_bytes=4096))


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InvalidArtifactError, match="not a readable zip"):
        check_archive(path)
