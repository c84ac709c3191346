"""The bounds a JSON body is held to before it is parsed (``json_codec.JsonLimits``)."""

from __future__ import annotations

import orjson
import pytest

from maas.config import Settings
from maas.errors import InvalidInputError
from maas.protocol.binary_codec import decode_request
from maas.protocol.json_codec import JSON_LIMITS, JsonLimits, load_json_object

SMALL = JsonLimits(max_depth=10, max_keys=20, max_elements=100)


def _request(**extra: object) -> dict[str, object]:
    tensor = {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}
    return {"inputs": [tensor], **extra}


def test_a_request_within_the_bounds_decodes() -> None:
    body = orjson.dumps(_request(parameters={"a": 1}))
    assert decode_request(body, None, SMALL).inputs[0].data.tolist() == [[1.0, 2.0]]


def test_too_deep_is_refused_naming_the_depth() -> None:
    nested: object = 1
    for _ in range(11):
        nested = [nested]
    body = orjson.dumps(_request(parameters={"deep": nested}))
    with pytest.raises(InvalidInputError, match=r"nested 13 levels deep, more than the 10"):
        load_json_object(body, SMALL)


def test_too_many_keys_are_refused_naming_the_count() -> None:
    body = orjson.dumps(_request(parameters={f"k{i}": i for i in range(30)}))
    with pytest.raises(InvalidInputError, match=r"\d+ object keys, more than the 20 accepted"):
        load_json_object(body, SMALL)


def test_too_many_values_are_refused_pointing_to_binary_data() -> None:
    body = orjson.dumps(_request(parameters={"list": list(range(200))}))
    with pytest.raises(InvalidInputError, match=r"values, more than the 100 accepted; send"):
        load_json_object(body, SMALL)


def test_structure_inside_strings_is_not_counted() -> None:
    # Raw counts would see 60 keys, 60 values and 60 levels; all are inside strings.
    text = ":,[{" * 15 + '\\"::[[' + "\\\\"
    body = orjson.dumps(_request(id=text, parameters={"s": text}))
    assert load_json_object(body, SMALL)["id"] == text


def test_escaped_quotes_do_not_end_a_string() -> None:
    # If \" ended the string, the colons after it would be counted as keys.
    text = 'a\\"' + ":" * 50
    body = orjson.dumps({"id": text})
    assert load_json_object(body, SMALL)["id"] == text
    text = "a\\" + '"' + ":" * 50  # a backslash, then a quote: both inside the string
    assert load_json_object(orjson.dumps({"id": text}), SMALL)["id"] == text


def test_a_block_boundary_inside_a_string_is_handled() -> None:
    # A string of structure longer than the scan's 1 MiB block.
    text = "[" * (1 << 21)
    body = orjson.dumps({"id": text})
    assert load_json_object(body, SMALL)["id"] == text


def test_a_million_keys_are_refused_before_they_are_built() -> None:
    body = b"{" + b",".join(b'"k%d":1' % i for i in range(1_000_000)) + b"}"
    with pytest.raises(InvalidInputError, match=r"1000000 object keys, more than the 10000"):
        load_json_object(body, JSON_LIMITS)


def test_the_binary_extension_bounds_its_json_header() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "INT8",
                    "shape": [1],
                    "parameters": {"binary_data_size": 1, **{f"k{i}": i for i in range(30)}},
                }
            ]
        }
    )
    with pytest.raises(InvalidInputError, match="object keys"):
        decode_request(header + b"\x07", str(len(header)), SMALL)


def test_the_default_bounds_are_the_settings_defaults() -> None:
    fields = Settings.model_fields
    defaults = (fields[f"json_max_{n}"].default for n in ("depth", "keys", "elements"))
    assert JsonLimits(*defaults) == JSON_LIMITS
