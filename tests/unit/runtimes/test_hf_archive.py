"""A Hugging Face folder travels as one uncompressed tar: packed deterministically,
judged without extracting (names, kinds, config, safetensors headers read by hand), and
extracted only when it passes. Every archive here is built in code, hostile ones too."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from maas.errors import InvalidArtifactError, MaasError
from maas.runtimes import hf_archive
from maas.runtimes.hf_archive import ArchiveInfo, check_archive, extract_archive, pack_folder

_DTYPE_BYTES = {"F32": 4, "F16": 2, "I64": 8}


def _safetensors(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A safetensors file written by hand: header length, JSON header, zero data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = _DTYPE_BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + bytes(offset)


def _raw_safetensors(
    header: dict[str, Any], data_bytes: int, *, length: int | None = None
) -> bytes:
    raw = json.dumps(header).encode()
    claimed = len(raw) if length is None else length
    return claimed.to_bytes(8, "little") + raw + bytes(data_bytes)


_GPT2_TENSORS = {
    "transformer.wte.weight": ("F32", [300, 16]),
    "transformer.wpe.weight": ("F32", [64, 16]),
    "transformer.ln_f.weight": ("F32", [16]),
}
_GPT2_PARAMETERS = 300 * 16 + 64 * 16 + 16


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _gpt2(**config: Any) -> dict[str, bytes]:
    base = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "n_positions": 64,
        "vocab_size": 300,
    }
    return {
        "config.json": _json({**base, **config}),
        "generation_config.json": _json({"bos_token_id": 0, "eos_token_id": 0}),
        "tokenizer.json": _json({"version": "1.0", "model": {"type": "BPE"}}),
        "tokenizer_config.json": _json({"eos_token": "<|endoftext|>"}),
        "chat_template.jinja": b"{% for m in messages %}{{ m['content'] }}{% endfor %}",
        "model.safetensors": _safetensors(_GPT2_TENSORS),
    }


def _bert(model_type: str = "bert", **config: Any) -> dict[str, bytes]:
    base = {
        "model_type": model_type,
        "architectures": ["BertModel"],
        "max_position_embeddings": 512,
        "vocab_size": 100,
        "pad_token_id": 0,
    }
    return {
        "config.json": _json({**base, **config}),
        "tokenizer.json": _json({"version": "1.0"}),
        "model.safetensors": _safetensors({"embeddings.word_embeddings.weight": ("F16", [100, 8])}),
    }


def _tar(path: Path, members: dict[str, bytes], *extra: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return path


def _refused(path: Path, match: str, **kwargs: Any) -> InvalidArtifactError:
    with pytest.raises(InvalidArtifactError, match=match) as caught:
        check_archive(path, **kwargs)
    assert str(path.parent) not in caught.value.message  # never the server's path
    return caught.value


def test_the_public_names_are_pinned() -> None:
    assert hf_archive.__all__ == [
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


def test_a_hand_made_causal_lm_passes_with_what_it_holds(tmp_path: Path) -> None:
    members = _gpt2()
    info = check_archive(_tar(tmp_path / "m.tar", members))
    assert info == ArchiveInfo(
        model_type="gpt2",
        architectures=("GPT2LMHeadModel",),
        task="generation",
        context_length=64,
        vocab_size=300,
        parameter_count=_GPT2_PARAMETERS,
        has_chat_template=True,
        files={name: len(data) for name, data in members.items()},
    )


def test_a_chat_template_in_the_tokenizer_config_counts(tmp_path: Path) -> None:
    members = _gpt2()
    del members["chat_template.jinja"]
    assert not check_archive(_tar(tmp_path / "a.tar", members)).has_chat_template
    members["tokenizer_config.json"] = _json({"chat_template": "{{ messages }}"})
    assert check_archive(_tar(tmp_path / "b.tar", members)).has_chat_template


def test_encoders_are_embedding_models(tmp_path: Path) -> None:
    info = check_archive(_tar(tmp_path / "bert.tar", _bert()))
    assert (info.task, info.context_length, info.parameter_count) == ("embedding", 512, 800)
    # RoBERTa's positions start after the padding index: 514 rows give 512 tokens.
    members = _bert("roberta", max_position_embeddings=514, pad_token_id=1)
    assert check_archive(_tar(tmp_path / "roberta.tar", members)).context_length == 512


def test_a_file_saved_by_the_safetensors_library_passes(tmp_path: Path) -> None:
    numpy = pytest.importorskip("numpy")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {
        "a": numpy.zeros((3, 5), dtype=numpy.float16),
        "b": numpy.ones((7,), dtype=numpy.int64),
        "c": numpy.zeros((0, 4), dtype=numpy.float32),
    }
    members = _gpt2()
    members["model.safetensors"] = safetensors_numpy.save(arrays)
    assert check_archive(_tar(tmp_path / "m.tar", members)).parameter_count == 15 + 7


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../config.json", "outside the archive"),
        ("/etc/passwd", "outside the archive"),
        ("a/../../b", "outside the archive"),
        ("C:/x", "outside the archive"),
        ("model/config.json", "inside a folder"),
    ],
)
def test_names_outside_the_top_of_the_archive_are_refused(
    tmp_path: Path, name: str, reason: str
) -> None:
    path = _tar(tmp_path / "m.tar", {**_gpt2(), name: b"{}"})
    assert _refused(path, reason).details == {"member": name}


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_special("vocab.json", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_special("vocab.json", tarfile.LNKTYPE, "config.json"), "hard link"),
        (_special("merges.txt", tarfile.DIRTYPE), "is a folder"),
        (_special("merges.txt", tarfile.CHRTYPE), "device or a pipe"),
        (_special("merges.txt", tarfile.FIFOTYPE), "device or a pipe"),
    ],
)
def test_links_folders_and_devices_are_refused(
    tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    path = _tar(tmp_path / "m.tar", _gpt2(), member)
    assert _refused(path, reason).details == {"member": member.name}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pytorch_model.bin", "pickle weights are refused: convert to safetensors"),
        ("training_args.PT", "pickle weights are refused"),
        ("optimizer.ckpt", "pickle weights are refused"),
        ("modeling_x.py", "code is refused: maas never runs a model's own code"),
        ("README.md", "is not a file maas reads from a Hugging Face folder; allowed: "),
        ("model-1-of-2.safetensors", "is not a file maas reads"),
    ],
)
def test_names_off_the_allow_list_are_refused_with_why(
    tmp_path: Path, name: str, reason: str
) -> None:
    path = _tar(tmp_path / "m.tar", {**_gpt2(), name: b"\x80\x04."})
    assert _refused(path, reason).details == {"member": name}


def test_a_member_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.tar"
    _tar(path, _gpt2())
    with tarfile.open(path, "a") as archive:  # a loader would see the second copy
        info = tarfile.TarInfo("config.json")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"{}"))
    _refused(path, "'config.json' appears twice")


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_remote_code_is_refused(tmp_path: Path, where: str) -> None:
    members = _gpt2()
    members[where] = _json({**json.loads(members[where]), "auto_map": {"AutoModel": "m.M"}})
    error = _refused(_tar(tmp_path / "m.tar", members), r"own code \(auto_map\)")
    assert error.details == {"member": where}


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"model_type": "t5"}, "model_type 't5', which maas does not serve; supported: bert,"),
        ({"model_type": None}, "gives no model_type"),
        ({"model_type": ["gpt2"] * 10_000}, "gives no model_type"),
        ({"architectures": ["GPT2Model"]}, "generates only with a causal LM head"),
        ({"architectures": "GPT2LMHeadModel"}, "not a list of class names"),
        ({"n_positions": 0}, "no positive integer n_positions"),
        ({"vocab_size": True}, "no positive integer vocab_size"),
    ],
)
def test_configs_maas_cannot_serve_are_refused(
    tmp_path: Path, config: dict[str, Any], reason: str
) -> None:
    error = _refused(_tar(tmp_path / "m.tar", _gpt2(**config)), reason)
    assert error.details == {"member": "config.json"}


def test_an_encoder_with_a_task_head_is_refused(tmp_path: Path) -> None:
    members = _bert(architectures=["BertForSequenceClassification"])
    _refused(_tar(tmp_path / "m.tar", members), "served for embeddings, as a bare encoder")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("config.json", b"{not json", "config.json is not valid JSON"),
        ("config.json", b"[1, 2]", "config.json is not a JSON object"),
        ("config.json", b'{"a": 1, "a": 2}', "no duplicate keys"),
        ("config.json", b'{"a": ' * 100_000, "config.json is not valid JSON"),
        ("generation_config.json", b"\xff\xfe", "generation_config.json is not valid JSON"),
        ("tokenizer.json", b"<html>", "tokenizer.json is not a JSON object"),
    ],
)
def test_malformed_json_is_refused(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = _tar(tmp_path / "m.tar", {**_gpt2(), name: data})
    assert _refused(path, reason).details == {"member": name}


def test_an_oversized_config_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_archive, "MAX_JSON_BYTES", 64)
    path = _tar(tmp_path / "m.tar", _gpt2(padding="x" * 100))
    _refused(path, r"config.json holds \d+ bytes; at most 64 are read")


@pytest.mark.parametrize("missing", ["config.json", "tokenizer.json"])
def test_the_config_and_the_tokenizer_are_required(tmp_path: Path, missing: str) -> None:
    members = _gpt2()
    del members[missing]
    assert _refused(_tar(tmp_path / "m.tar", members), f"holds no {missing}").details == {
        "member": missing
    }


def test_weights_are_required(tmp_path: Path) -> None:
    members = _gpt2()
    del members["model.safetensors"]
    _refused(_tar(tmp_path / "m.tar", members), "holds no weights")


_TENSOR = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        (b"\x01\x02", "shorter than its 8-byte header length"),
        ((2**40).to_bytes(8, "little") + b"{}", "claims a 1099511627776-byte header; at most"),
        (_raw_safetensors({"w": _TENSOR}, 16, length=10_000), "longer than the file"),
        (_raw_safetensors({"w": {**_TENSOR, "data_offsets": [0, 1 << 40]}}, 16), "beyond the end"),
        (_raw_safetensors({"w": {**_TENSOR, "data_offsets": [0, 12]}}, 12), "not what its shape"),
        (_raw_safetensors({"w": {**_TENSOR, "data_offsets": [8, 24]}}, 24), "leave a gap"),
        (_raw_safetensors({"w": _TENSOR, "v": _TENSOR}, 16), "overlap or leave a gap"),
        (_raw_safetensors({"w": _TENSOR}, 20), "4 bytes after its last tensor"),
        (_raw_safetensors({"w": {**_TENSOR, "dtype": "PICKLE"}}, 16), "unknown dtype"),
        (_raw_safetensors({"w": {**_TENSOR, "shape": [2, -2]}}, 16), "not a list of sizes"),
        (_raw_safetensors({"w": {**_TENSOR, "shape": [True]}}, 16), "not a list of sizes"),
        (_raw_safetensors({"w": {**_TENSOR, "data_offsets": [16]}}, 16), "not \\[begin, end\\]"),
        (_raw_safetensors({"w": [1]}, 0), "other than an object"),
        (_raw_safetensors({"__metadata__": {"a": 1}}, 0), "__metadata__ that is not"),
        (_raw_safetensors({}, 0), "holds no tensors"),
        ((4).to_bytes(8, "little") + b" {} ", "header that is not a JSON object"),
        ((4).to_bytes(8, "little") + b"{\xff} ", "not valid JSON"),
    ],
)
def test_safetensors_headers_are_judged_by_hand(
    tmp_path: Path, weights: bytes, reason: str
) -> None:
    path = _tar(tmp_path / "m.tar", {**_gpt2(), "model.safetensors": weights})
    assert _refused(path, reason).details == {"member": "model.safetensors"}


def _sharded(count: int = 2) -> dict[str, bytes]:
    members = _gpt2()
    del members["model.safetensors"]
    weight_map = {}
    for i, tensor in enumerate(_GPT2_TENSORS):
        weight_map[tensor] = f"model-{i % count + 1:05d}-of-{count:05d}.safetensors"
    for shard in set(weight_map.values()):
        own = {t: _GPT2_TENSORS[t] for t, s in weight_map.items() if s == shard}
        members[shard] = _safetensors(own)
    members["model.safetensors.index.json"] = _json({"metadata": {}, "weight_map": weight_map})
    return members


def test_sharded_weights_with_their_index_pass(tmp_path: Path) -> None:
    info = check_archive(_tar(tmp_path / "m.tar", _sharded()))
    assert info.parameter_count == _GPT2_PARAMETERS
    assert "model-00002-of-00002.safetensors" in info.files


def test_inconsistent_shards_are_refused(tmp_path: Path) -> None:
    members = _sharded()
    del members["model-00002-of-00002.safetensors"]
    _refused(_tar(tmp_path / "a.tar", members), "'model-00002-of-00002.safetensors' is missing")
    members = _sharded()
    del members["model.safetensors.index.json"]
    _refused(_tar(tmp_path / "b.tar", members), "need model.safetensors.index.json")
    members = {**_sharded(), "model.safetensors": _safetensors(_GPT2_TENSORS)}
    _refused(_tar(tmp_path / "c.tar", members), "model.safetensors and sharded weights")
    members = _sharded()
    index = json.loads(members["model.safetensors.index.json"])
    index["weight_map"]["transformer.ln_f.weight"] = "model-00002-of-00002.safetensors"
    members["model.safetensors.index.json"] = _json(index)
    _refused(_tar(tmp_path / "d.tar", members), "puts tensor 'transformer.ln_f.weight' in")
    index["weight_map"] = {"x": ["not", "a", "name"]}
    members["model.safetensors.index.json"] = _json(index)
    _refused(_tar(tmp_path / "e.tar", members), "does not name exactly the shards")


def test_what_is_not_an_uncompressed_tar_is_refused(tmp_path: Path) -> None:
    good = _tar(tmp_path / "m.tar", _gpt2()).read_bytes()
    (tmp_path / "m.tar.gz").write_bytes(gzip.compress(good))
    _refused(tmp_path / "m.tar.gz", "is a gzip file; a Hugging Face model travels as an")
    (tmp_path / "junk").write_bytes(b"no tar here" * 100)
    _refused(tmp_path / "junk", "not a readable tar archive")
    with tarfile.open(tmp_path / "m.tar") as archive:
        cut = archive.getmember("model.safetensors").offset_data + 100
    (tmp_path / "cut.tar").write_bytes(good[:cut])
    _refused(tmp_path / "cut.tar", "not a readable tar archive")


@pytest.mark.parametrize("size", ["1" + "0" * 30, "99999999999"])
def test_a_member_claiming_more_bytes_than_the_file_holds_is_refused(
    tmp_path: Path, size: str
) -> None:
    path = tmp_path / "m.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in _gpt2().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if name == "config.json":
                info.pax_headers = {"size": size}
            archive.addfile(info, io.BytesIO(data))
    _refused(path, "not a readable tar archive")


def test_the_total_size_is_bounded(tmp_path: Path) -> None:
    path = _tar(tmp_path / "m.tar", _gpt2())
    total = sum(check_archive(path).files.values())
    check_archive(path, max_bytes=total)
    _refused(path, f"hold more than {total - 1} bytes", max_bytes=total - 1)


def test_a_tar_of_the_folder_made_with_dot_passes(tmp_path: Path) -> None:
    # `tar -C folder -cf model.tar .` names the folder "." and its files "./name".
    path = tmp_path / "m.tar"
    with tarfile.open(path, "w") as archive:
        archive.addfile(_special(".", tarfile.DIRTYPE))
        for name, data in _gpt2().items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert "config.json" in check_archive(path).files
    extract_archive(path, tmp_path / "out")
    assert (tmp_path / "out" / "config.json").read_bytes() == _gpt2()["config.json"]


def _folder(path: Path, members: dict[str, bytes]) -> Path:
    path.mkdir()
    for name, data in members.items():
        (path / name).write_bytes(data)
    return path


def test_packing_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model", _gpt2())
    first = pack_folder(folder, tmp_path / "a.tar").read_bytes()
    for entry in folder.iterdir():
        os.utime(entry, (1_000_000, 1_000_000))
    assert pack_folder(folder, tmp_path / "b.tar").read_bytes() == first
    with tarfile.open(tmp_path / "a.tar") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(_gpt2())
    assert {(m.mtime, m.mode, m.uid, m.gid, m.uname) for m in members} == {(0, 0o644, 0, 0, "")}
    extract_archive(tmp_path / "a.tar", tmp_path / "out")
    for name, data in _gpt2().items():
        assert (tmp_path / "out" / name).read_bytes() == data
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644


def test_packing_follows_a_link_to_a_file_as_in_a_hub_cache(tmp_path: Path) -> None:
    members = _gpt2()
    blob = tmp_path / "blob"
    blob.write_bytes(members.pop("model.safetensors"))
    folder = _folder(tmp_path / "model", members)
    (folder / "model.safetensors").symlink_to(blob)
    info = check_archive(pack_folder(folder, tmp_path / "m.tar"))
    assert info.parameter_count == _GPT2_PARAMETERS


@pytest.mark.parametrize(
    ("name", "reason"),
    [("pytorch_model.bin", "pickle weights are refused"), ("onnx", "is not a file maas reads")],
)
def test_packing_refuses_what_is_not_allowed_before_writing(
    tmp_path: Path, name: str, reason: str
) -> None:
    folder = _folder(tmp_path / "model", _gpt2())
    if name == "onnx":
        (folder / name).mkdir()
    else:
        (folder / name).write_bytes(b"\x80\x04")
    with pytest.raises(InvalidArtifactError, match=reason) as caught:
        pack_folder(folder, tmp_path / "m.tar")
    assert caught.value.details == {"member": name}
    assert list(tmp_path.iterdir()) == [folder]


def test_packing_checks_what_it_wrote(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model", _gpt2(model_type="t5"))
    with pytest.raises(InvalidArtifactError, match="model_type 't5'"):
        pack_folder(folder, tmp_path / "m.tar")
    assert list(tmp_path.iterdir()) == [folder]  # neither the archive nor a partial file


def test_extracting_refuses_a_hostile_archive_and_writes_nothing(tmp_path: Path) -> None:
    link = _special("vocab.json", tarfile.SYMTYPE, "/etc/passwd")
    path = _tar(tmp_path / "m.tar", _gpt2(), link)
    with pytest.raises(InvalidArtifactError, match="symbolic link"):
        extract_archive(path, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_extracting_needs_an_empty_folder(tmp_path: Path) -> None:
    path = _tar(tmp_path / "m.tar", _gpt2())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "config.json").write_text("{}")
    with pytest.raises(MaasError, match="not empty"):
        extract_archive(path, tmp_path / "out")
    assert (tmp_path / "out" / "config.json").read_text() == "{}"
