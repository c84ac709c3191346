"""A Hugging Face model folder as one maas artifact: an uncompressed tar, judged before
anything loads it.

A version's artifact is one file, so a folder (config, tokenizer files, safetensors
weights) travels as a tar of its files, packed here deterministically (``pack_folder``:
sorted names, mtime 0, owner 0, mode 0o644) so that the same folder gives the same
bytes and the same digest. The tar is uncompressed: safetensors weights barely
compress, and an uncompressed member is read in place, so ``check_archive`` looks at
every header without inflating anything (no bomb can be built).

``check_archive`` reads the tar without extracting it and refuses, naming the member:
anything but a regular file with a plain name (no folder, ``..``, absolute path, link or
device); any name off the allow-list, pickles (``.bin``, ``.pt``...) and Python code
(``.py``) with a message saying why; a ``config.json`` whose ``model_type`` maas does not
serve or that asks for the model's own code (``auto_map``); a safetensors file whose
header (read by hand, as the safetensors loader reads it: a header that passes here is
one it accepts) is oversized, malformed or points outside the file. The weights are
never deserialised and nothing is executed. ``extract_archive`` re-checks from the same
open file, then writes only the allowed files, never following a link.

The module passes 300 lines because the three judgements (the tar, the safetensors
headers, the config) share one walk of the archive and one vocabulary of refusals.
Memory stays bounded by the caps below, except that Python's tarfile reads a pax or GNU
long-name header whole, so a hostile one costs at most the archive's own size.
"""

from __future__ import annotations

import json
import math
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeGuard

from maas.errors import InvalidArtifactError, InvalidInputError, MaasError

__all__ = [
    "ALLOWED_NAMES",
    "EMBEDDING_MODEL_TYPES",
    "GENERATION_MODEL_TYPES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_BYTES",
    "ArchiveInfo",
    "HfTask",
    "check_archive",
    "extract_archive",
    "pack_folder",
]

HfTask = Literal["generation", "embedding"]

#: Every file of a folder maas reads, besides ``model-0000i-of-0000N.safetensors`` shards.
ALLOWED_NAMES: Final = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "merges.txt",
        "chat_template.jinja",
        "model.safetensors",
        "model.safetensors.index.json",
    }
)
#: Decoder families transformers builds from a config alone (no remote code).
GENERATION_MODEL_TYPES: Final = frozenset(
    {
        "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen2",
        "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text", "phi", "phi3",
        "olmo", "olmo2", "opt", "starcoder2", "stablelm",
    }
)  # fmt: skip
#: Encoders served as embedding models (mean-pooled hidden states).
EMBEDDING_MODEL_TYPES: Final = frozenset(
    {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra"}
)
# Their positions start after the padding index, so the usable length is shorter.
_PADDED_POSITIONS: Final = frozenset({"roberta", "xlm-roberta", "mpnet"})
_CAUSAL_HEADS: Final = ("ForCausalLM", "LMHeadModel")
_ENCODER_HEADS: Final = ("Model", "ForMaskedLM", "ForPreTraining")

_SHARD: Final = re.compile(r"model-(\d{5})-of-(\d{5})\.safetensors")
_INDEX: Final = "model.safetensors.index.json"
_PICKLE_SUFFIXES: Final = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
_CODE_SUFFIXES: Final = (".py", ".pyc", ".pyo")
#: The JSON files parsed here (config, index...); an index spends ~100 bytes a tensor.
#: Python's json can take ~25 times a document's size in memory, hence a cap well
#: under safetensors' own 100 MB.
MAX_JSON_BYTES: Final = 8 * 2**20
#: A safetensors header, ~100 bytes a tensor: room for ~80,000 tensors in one file.
MAX_HEADER_BYTES: Final = 8 * 2**20
# Bits per element of every safetensors dtype (F4 and F6 pack several per byte).
_DTYPE_BITS: Final = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
_MAX_RANK: Final = 64


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """What ``check_archive`` learnt, for the version's signature and the runtime.

    ``context_length`` is the usable number of positions; ``parameter_count`` sums the
    elements of the stored tensors (tied weights are stored, and counted, once).
    """

    model_type: str
    architectures: tuple[str, ...]
    task: HfTask
    context_length: int
    vocab_size: int
    parameter_count: int
    has_chat_template: bool
    files: dict[str, int]


def check_archive(path: Path, *, max_bytes: int | None = None) -> ArchiveInfo:
    """Judge the tar at ``path`` without extracting it; raise ``InvalidArtifactError``
    naming the member at fault, or return what the archive holds.

    >>> check_archive(Path("tiny-lm.tar")).task  # doctest: +SKIP
    'generation'
    """
    with _open_tar(path) as archive:
        return _inspect(archive, max_bytes)[0]


def extract_archive(path: Path, folder: Path) -> None:
    """Check the tar at ``path`` again, then write its files into ``folder`` (created if
    absent, and it must be empty): regular files only, mode 0o644, never through a link."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise MaasError("the folder to extract a Hugging Face archive into is not empty")
    with _open_tar(path) as archive:
        _, members = _inspect(archive, None)
        written: list[Path] = []
        try:
            for name, member in members.items():
                target = folder / name
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(target, flags, 0o644)
                written.append(target)
                with os.fdopen(fd, "wb") as out, _member_file(archive, member) as source:
                    while chunk := source.read(2**20):
                        out.write(chunk)
        except BaseException:
            for target in written:
                target.unlink(missing_ok=True)
            raise


def pack_folder(folder: Path, target: Path) -> Path:
    """Write the files of ``folder`` as a deterministic tar at ``target`` and check it.

    Every entry must be an allowed file (a link to one is read as the file it names, as
    in a Hugging Face cache snapshot); anything else is refused before a byte is
    written. ``target`` appears only once the archive passed ``check_archive``.
    """
    if not folder.is_dir():
        raise InvalidInputError("the model folder does not exist", {"field": "folder"})
    entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    for entry in entries:
        _check_allowed(entry.name, "the folder's file")
        if not entry.is_file():
            raise InvalidArtifactError(
                f"the folder's entry {_shown(entry.name)!r} is not a regular file",
                {"member": _shown(entry.name)},
            )
    partial = target.with_name(f".{target.name}.partial")
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            for entry in entries:
                with entry.open("rb") as source:
                    info = tarfile.TarInfo(entry.name)
                    info.size = os.fstat(source.fileno()).st_size
                    info.mtime, info.mode, info.uid, info.gid = 0, 0o644, 0, 0
                    info.uname = info.gname = ""
                    archive.addfile(info, source)
        check_archive(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


# --- the walk --------------------------------------------------------------------------

_COMPRESSED: Final = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}


@contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    with path.open("rb") as file:
        head = file.read(8)
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            raise InvalidArtifactError(
                f"the artifact is a {kind} file; a Hugging Face model travels as an "
                "uncompressed tar of its folder's files"
            )
    try:  # a member cut short, read later, raises from the body: the same refusal
        with tarfile.open(path, "r:") as archive:
            yield archive
    except (tarfile.TarError, ValueError, OverflowError):  # tarfile's, on hostile headers
        raise InvalidArtifactError("the artifact is not a readable tar archive") from None


def _inspect(
    archive: tarfile.TarFile, max_bytes: int | None
) -> tuple[ArchiveInfo, dict[str, tarfile.TarInfo]]:
    members = _members(archive, max_bytes)
    for required in ("config.json", "tokenizer.json"):
        if required not in members:
            raise InvalidArtifactError(f"the archive holds no {required}", {"member": required})
    tensors = _check_weights(archive, members)
    config = _read_json(archive, members["config.json"])
    model_type, architectures, task = _judge_config(config)
    tokenizer_config: dict[str, Any] = {}
    if "tokenizer_config.json" in members:
        tokenizer_config = _read_json(archive, members["tokenizer_config.json"])
    for name in ("generation_config.json", "special_tokens_map.json"):
        if name in members:
            _read_json(archive, members[name])  # read by transformers: JSON objects at least
    for name in ("tokenizer.json", "vocab.json"):
        if name in members:
            _check_starts_json_object(archive, members[name])
    if "auto_map" in tokenizer_config:
        raise InvalidArtifactError(
            "tokenizer_config.json asks for the tokenizer's own code (auto_map); maas never "
            "runs a model's code",
            {"member": "tokenizer_config.json"},
        )
    template = tokenizer_config.get("chat_template")  # a string, or a list of named ones
    info = ArchiveInfo(
        model_type=model_type,
        architectures=architectures,
        task=task,
        context_length=_context_length(config, model_type),
        vocab_size=_positive_int(config, "vocab_size"),
        parameter_count=sum(tensors.values()),
        has_chat_template="chat_template.jinja" in members
        or (isinstance(template, (str, list)) and bool(template)),
        files={name: member.size for name, member in members.items()},
    )
    return info, members


def _members(archive: tarfile.TarFile, max_bytes: int | None) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    seen_root = False
    total = 0
    for member in archive:
        if member.name in (".", "") and member.isdir() and not seen_root:
            seen_root = True  # `tar -C folder -cf model.tar .` adds the folder itself
            continue
        member.name = member.name.removeprefix("./")  # ... and names its files ./name
        _check_member(member)
        shown = _shown(member.name)
        if member.name in members:
            raise InvalidArtifactError(
                f"the archive member {shown!r} appears twice", {"member": shown}
            )
        members[member.name] = member
        total += member.size
        if max_bytes is not None and total > max_bytes:
            raise InvalidArtifactError(
                f"the archive's files hold more than {max_bytes} bytes",
                {"member": shown, "max_bytes": max_bytes},
            )
    return members


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    shown = _shown(name)
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        reason = "has a name outside the archive (absolute, or with '..')"
    elif len(parts) > 1:
        reason = "is inside a folder: pack the model folder's files, not the folder"
    elif member.issym():
        reason = "is a symbolic link"
    elif member.islnk():
        reason = "is a hard link"
    elif member.isdir():
        reason = "is a folder: pack the model folder's files, not the folder"
    elif member.isdev():
        reason = "is a device or a pipe"
    elif not member.isreg() or member.issparse():
        reason = "is not a regular file"
    else:
        _check_allowed(name, "the archive member")
        return
    raise InvalidArtifactError(f"the archive member {shown!r} {reason}", {"member": shown})


def _check_allowed(name: str, what: str) -> None:
    if name in ALLOWED_NAMES or _SHARD.fullmatch(name):
        return
    shown = _shown(name)
    lowered = name.lower()
    if lowered.endswith(_PICKLE_SUFFIXES):
        reason = ": pickle weights are refused: convert to safetensors (maas never loads pickles)"
    elif lowered.endswith(_CODE_SUFFIXES):
        reason = ": code is refused: maas never runs a model's own code (trust_remote_code)"
    else:
        reason = (
            " is not a file maas reads from a Hugging Face folder; allowed: "
            + ", ".join(sorted(ALLOWED_NAMES))
            + ", model-0000i-of-0000N.safetensors"
        )
    raise InvalidArtifactError(f"{what} {shown!r}{reason}", {"member": shown})


def _shown(name: str) -> str:
    """``name`` as it may appear in a message: short, and encodable as UTF-8."""
    return name[:200].encode("utf-8", "backslashreplace").decode("utf-8")


# --- weights ---------------------------------------------------------------------------


def _check_weights(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> dict[str, int]:
    """Every tensor of the archive's weights, by name, with its element count."""
    shards = sorted(name for name in members if _SHARD.fullmatch(name))
    if "model.safetensors" in members:
        if shards or _INDEX in members:
            raise InvalidArtifactError(
                "the archive holds model.safetensors and sharded weights; keep one",
                {"member": shards[0] if shards else _INDEX},
            )
        return _check_safetensors(archive, members["model.safetensors"])
    if not shards:
        raise InvalidArtifactError(
            "the archive holds no weights: model.safetensors (or model-0000i-of-0000N"
            ".safetensors shards with model.safetensors.index.json) is required",
            {"member": "model.safetensors"},
        )
    if _INDEX not in members:
        raise InvalidArtifactError(
            "sharded weights need model.safetensors.index.json", {"member": _INDEX}
        )
    total = int(shards[0].rsplit("-of-", 1)[1].removesuffix(".safetensors"))
    expected = [f"model-{i:05d}-of-{total:05d}.safetensors" for i in range(1, total + 1)]
    if shards != expected:
        missing = sorted(set(expected) - set(shards)) or sorted(set(shards) - set(expected))
        raise InvalidArtifactError(
            f"the weight shards do not match: {missing[0]!r} is missing or out of place",
            {"member": missing[0]},
        )
    by_shard = {name: _check_safetensors(archive, members[name]) for name in shards}
    weight_map = _read_json(archive, members[_INDEX]).get("weight_map")
    if (
        not isinstance(weight_map, dict)
        or not all(isinstance(shard, str) for shard in weight_map.values())
        or set(weight_map.values()) != set(shards)
    ):
        raise InvalidArtifactError(
            "model.safetensors.index.json's weight_map does not name exactly the shards",
            {"member": _INDEX},
        )
    for tensor, shard in weight_map.items():
        if tensor not in by_shard[shard]:
            raise InvalidArtifactError(
                f"model.safetensors.index.json puts tensor {_shown(tensor)[:100]!r} in "
                f"{shard!r}, which does not hold it",
                {"member": _INDEX},
            )
    return {tensor: n for shard in by_shard.values() for tensor, n in shard.items()}


def _check_safetensors(archive: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, int]:
    name = member.name

    def refuse(reason: str) -> InvalidArtifactError:
        return InvalidArtifactError(f"the safetensors file {name!r} {reason}", {"member": name})

    with _member_file(archive, member) as file:
        head = file.read(8)
        if len(head) < 8:
            raise refuse("is shorter than its 8-byte header length")
        length = int.from_bytes(head, "little")
        if length > MAX_HEADER_BYTES:
            raise refuse(f"claims a {length}-byte header; at most {MAX_HEADER_BYTES} are read")
        if 8 + length > member.size:
            raise refuse(f"claims a {length}-byte header, longer than the file")
        raw = file.read(length)
    if not raw.startswith(b"{"):  # as safetensors demands: no leading space
        raise refuse("has a header that is not a JSON object")
    header = _parse_json(raw, refuse)
    data_bytes = member.size - 8 - length
    tensors: dict[str, int] = {}
    spans: list[tuple[int, int, str]] = []
    for key, value in header.items():
        if key == "__metadata__":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise refuse("has __metadata__ that is not an object of strings")
            continue
        tensor = _shown(key)[:100]
        if not isinstance(value, dict):
            raise refuse(f"describes tensor {tensor!r} with something other than an object")
        dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPE_BITS:
            raise refuse(f"gives tensor {tensor!r} an unknown dtype")
        if not _is_ints(shape, 0, 2**64) or len(shape) > _MAX_RANK:
            raise refuse(f"gives tensor {tensor!r} a shape that is not a list of sizes")
        if not _is_ints(offsets, 0, 2**64) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise refuse(f"gives tensor {tensor!r} data_offsets that are not [begin, end]")
        begin, end = offsets
        if end > data_bytes:
            raise refuse(f"places tensor {tensor!r} beyond the end of the file")
        elements = math.prod(shape)
        if elements * _DTYPE_BITS[dtype] != (end - begin) * 8:
            raise refuse(f"gives tensor {tensor!r} {end - begin} bytes, not what its shape holds")
        tensors[key] = elements
        spans.append((begin, end, tensor))
    position = 0
    for begin, end, tensor in sorted(spans):
        if begin != position:
            raise refuse(f"has tensors that overlap or leave a gap (at {tensor!r})")
        position = end
    if position != data_bytes:
        raise refuse(f"holds {data_bytes - position} bytes after its last tensor")
    if not tensors:
        raise refuse("holds no tensors")
    return tensors


def _is_ints(value: object, low: int, high: int) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) and low <= item < high
        for item in value
    )


# --- config and tokenizer --------------------------------------------------------------


def _judge_config(config: dict[str, Any]) -> tuple[str, tuple[str, ...], HfTask]:
    def refuse(reason: str) -> InvalidArtifactError:
        return InvalidArtifactError(f"config.json {reason}", {"member": "config.json"})

    for key in ("auto_map", "custom_pipelines"):
        if key in config:
            raise refuse(f"asks for the model's own code ({key}); maas never runs a model's code")
    model_type = config.get("model_type")
    supported = GENERATION_MODEL_TYPES | EMBEDDING_MODEL_TYPES
    if not isinstance(model_type, str):
        raise refuse("gives no model_type (a string such as 'llama')")
    if model_type not in supported:
        raise refuse(
            f"gives model_type {_shown(model_type)[:60]!r}, which maas does not serve; "
            "supported: " + ", ".join(sorted(supported))
        )
    names = config.get("architectures") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise refuse("gives architectures that are not a list of class names")
    architectures = tuple(_shown(n)[:100] for n in names)
    named = list(architectures[:3])
    if model_type in GENERATION_MODEL_TYPES:
        if any(n.endswith(_CAUSAL_HEADS) for n in architectures):
            return model_type, architectures, "generation"
        raise refuse(
            f"names architectures {named}; a {model_type} model generates "
            "only with a causal LM head (...ForCausalLM or ...LMHeadModel)"
        )
    if all(n.endswith(_ENCODER_HEADS) and not n.endswith(_CAUSAL_HEADS) for n in architectures):
        return model_type, architectures, "embedding"
    raise refuse(
        f"names architectures {named}; a {model_type} model is served for "
        "embeddings, as a bare encoder (...Model or ...ForMaskedLM)"
    )


def _context_length(config: dict[str, Any], model_type: str) -> int:
    key = next(
        (k for k in ("max_position_embeddings", "n_positions", "n_ctx") if k in config),
        "max_position_embeddings",
    )
    length = _positive_int(config, key)
    pad = config.get("pad_token_id")
    if model_type in _PADDED_POSITIONS and isinstance(pad, int) and 0 <= pad < length - 1:
        length -= pad + 1
    return length


def _positive_int(config: dict[str, Any], key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArtifactError(
            f"config.json gives no positive integer {key}", {"member": "config.json"}
        )
    return value


def _check_starts_json_object(archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    """Tokenizer files are large and parsed by the tokenizers library, not here: only
    their first bytes are judged."""
    name = member.name
    with _member_file(archive, member) as file:
        head = file.read(64).lstrip()
    if not head.startswith(b"{"):
        raise InvalidArtifactError(f"{name} is not a JSON object", {"member": name})


def _read_json(archive: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, Any]:
    name = member.name

    def refuse(reason: str) -> InvalidArtifactError:
        return InvalidArtifactError(f"{name} {reason}", {"member": name})

    if member.size > MAX_JSON_BYTES:
        raise refuse(f"holds {member.size} bytes; at most {MAX_JSON_BYTES} are read")
    with _member_file(archive, member) as file:
        return _parse_json(file.read(), refuse)


def _parse_json(raw: bytes, refuse: Callable[[str], InvalidArtifactError]) -> dict[str, Any]:
    """``raw`` as a JSON object, refusing duplicate keys (a loader might keep another)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            raise ValueError("duplicate key")
        return result

    try:
        parsed = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refuse("is not valid JSON (UTF-8, no duplicate keys)") from None
    if not isinstance(parsed, dict) or not raw.lstrip().startswith(b"{"):
        raise refuse("is not a JSON object")
    return parsed


def _member_file(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    file = archive.extractfile(member)
    if file is None:  # only regular files get here; tarfile gives None for the rest
        raise InvalidArtifactError("an archive member is not a regular file")
    return file
