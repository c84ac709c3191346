"""What a TorchScript model may do: the operator allowlist that every archive is held to.

A TorchScript archive is a program. ``torch.jit.load`` runs its ``__setstate__`` methods,
and ``forward`` may call any operator torch knows, file and network ones included
(``torch.from_file`` reads a host file into a tensor; ``torch.save`` writes one; RPC
operators reach other machines). Two checks, both before a request runs:

* ``check_source``, before the archive is loaded: its serialized code (``code/*.py``,
  what TorchScript prints back from its IR) must name no denied operator and no custom
  class (``torch.classes``), so not even ``__setstate__`` can run one.
* ``check_module``, once it is loaded: every node of every method of every submodule,
  calls inlined, must be an operator of an allowed namespace (``aten``, ``prim``,
  ``quantized``) and not a denied one.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from maas.errors import InvalidArtifactError

if TYPE_CHECKING:
    import torch

__all__ = ["ALLOWED_NAMESPACES", "DENIED_OPERATORS", "check_module", "check_source"]

ALLOWED_NAMESPACES: Final = frozenset({"aten", "prim", "quantized"})
#: Operators of allowed namespaces that touch files, processes or the network.
DENIED_OPERATORS: Final = frozenset(
    {
        "aten::from_file",
        "aten::save",
        "aten::load",
        "aten::_load",
        "prim::PythonOp",
        "prim::CallFunction",  # only a Python function left unscripted produces one
        "prim::rpc_async",
        "prim::rpc_sync",
        "prim::rpc_remote",
        "aten::to_here",
        "aten::local_value",
        "aten::owner",
        "aten::owner_name",
        "aten::confirmed_by_owner",
    }
)
_DENIED_NAMES: Final = sorted({op.split("::", 1)[1] for op in DENIED_OPERATORS})
#: ``torch.from_file(`` or ``ops.aten.from_file(`` in the serialized code; custom classes.
_DENIED_SOURCE: Final = re.compile(
    r"\b(?:torch|ops\.\w+)\.(" + "|".join(map(re.escape, _DENIED_NAMES)) + r")\b"
    r"|\btorch\.classes\b|__torch__\.torch\.classes\b"
)
_MAX_CODE_BYTES: Final = 64 * 2**20


def check_source(path: Path) -> None:
    """Refuse an archive whose serialized code names a denied operator or a custom class."""
    with zipfile.ZipFile(path) as archive:
        total = 0
        for member in archive.infolist():
            if "/code/" not in member.filename or not member.filename.endswith(".py"):
                continue
            total += member.file_size
            if total > _MAX_CODE_BYTES:
                raise InvalidArtifactError("the TorchScript archive holds more code than is read")
            text = archive.read(member).decode("utf-8", "replace")
            found = _DENIED_SOURCE.search(text)
            if found is not None:
                _refuse(found.group(0))


def check_module(module: torch.jit.ScriptModule) -> None:
    """Refuse a loaded module that runs an operator outside the allowlist anywhere."""
    import torch

    for submodule in module.modules():
        compiled: Any = submodule._c
        for method in compiled._method_names():
            graph = compiled._get_method(method).graph.copy()
            torch._C._jit_pass_inline(graph)
            for kind in _kinds(graph.nodes()):
                namespace = kind.split("::", 1)[0]
                if namespace not in ALLOWED_NAMESPACES or kind in DENIED_OPERATORS:
                    _refuse(kind)


def _kinds(nodes: Any) -> Iterator[str]:
    for node in nodes:
        yield node.kind()
        for block in node.blocks():
            yield from _kinds(block.nodes())


def _refuse(operator: str) -> None:
    raise InvalidArtifactError(
        f"the TorchScript model uses {operator!r}, which maas does not run: TorchScript "
        "models may use tensor operators only (no file, process or network access)",
        {"operator": operator},
    )
