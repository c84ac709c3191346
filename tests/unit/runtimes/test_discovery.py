from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from maas.errors import InvalidArtifactError
from maas.runtimes import discovery
from maas.runtimes.onnx import OnnxRuntime


@dataclass(frozen=True)
class _FakeEntryPoint:
    """An entry point whose module imports a missing package (the way torch can be)."""

    name: str
    value: str
    result: type[object] | None = None
    missing: str = ""

    def load(self) -> type[object]:
        if self.result is None:
            raise ModuleNotFoundError(f"No module named {self.missing!r}", name=self.missing)
        return self.result


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    entries = [
        _FakeEntryPoint("onnx", "maas.runtimes.onnx:OnnxRuntime", OnnxRuntime),
        _FakeEntryPoint("torchscript", "maas.runtimes.torchscript:X", missing="torch"),
        _FakeEntryPoint("exotic", "maas_exotic:X", missing="exotic_framework"),
    ]
    monkeypatch.setattr(discovery, "entry_points", lambda group: entries)
    discovery._found.cache_clear()
    yield
    discovery._found.cache_clear()


@pytest.mark.usefixtures("fake_entry_points")
def test_a_runtime_with_a_missing_extra_is_skipped_and_named() -> None:
    assert discovery.available_formats() == ["onnx"]
    assert set(discovery.unavailable_formats()) == {"torchscript", "exotic"}
    with pytest.raises(InvalidArtifactError, match=r"maas\[torch\]"):
        discovery.runtime_class("torchscript")
    with pytest.raises(InvalidArtifactError, match="exotic_framework"):
        discovery.runtime_class("exotic")
    with pytest.raises(InvalidArtifactError, match="no runtime for format 'nope'"):
        discovery.runtime_class("nope")


def test_installed_runtimes_are_found() -> None:
    assert {"onnx", "torchscript"} <= set(discovery.available_formats())
