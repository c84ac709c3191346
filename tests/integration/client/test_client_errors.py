"""Failures through the SDK: the class comes from the error body's code, never the status;
replies that are not maas's, unreachable servers and another registry's server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from maas.client import Client
from maas.errors import (
    InvalidArtifactError,
    InvalidInputError,
    MaasError,
    NotFoundError,
    NotServableError,
    RegistryMismatchError,
    UnavailableError,
)
from maas.registry import Registry
from maas.testing.models import write_nan_model

X = np.ones((2, 4), np.float32)
PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class _NotMaas(BaseHTTPRequestHandler):
    """Not maas: HTML pages, a 200 that is not JSON, JSON of another shape, an answer that
    comes too late."""

    def _answer(self) -> None:
        if self.path.startswith("/v2/health/live"):
            time.sleep(1.0)
        status, body, kind = 502, PAGE, "text/html"
        if self.path == "/api/models":
            status, body = 200, b"<html>ok</html>"
        elif self.path == "/api/models/other":
            status, body, kind = 200, b'{"hello": "world"}', "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout case)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_maas() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotMaas)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_errors_are_chosen_by_the_body_code(client: Client, linear: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.get_model("nope")
    assert "nope" in missing.value.message and missing.value.code == "not_found"
    with pytest.raises(NotFoundError):
        client.infer("nope", {"input": X})
    client.upload("lin", linear)
    with pytest.raises(NotFoundError):
        client.get_version("lin", 7)

    with pytest.raises(InvalidInputError) as shape:
        client.infer("lin", {"input": np.ones((2, 5), np.float32)})
    assert shape.value.details == {"input": "input", "expected_shape": [-1, 4]}
    with pytest.raises(InvalidInputError) as datatype:
        client.infer("lin", {"input": X.astype(np.float64)}, binary=False)
    assert datatype.value.details["expected_datatype"] == "FP32"
    with pytest.raises(InvalidArtifactError):
        client.upload("lin", b"definitely not onnx")
    with pytest.raises(InvalidInputError, match="give a split, a shadow, or both"):
        client.set_traffic("lin", {"split": []})


def test_a_version_that_cannot_serve_is_refused(
    client: Client, linear: Path, tmp_path: Path
) -> None:
    client.upload("lin", linear)
    client.promote("lin", 1)
    client.upload("lin", write_nan_model(tmp_path / "nan.onnx"))
    with pytest.raises(NotServableError) as refused:
        client.promote("lin", 2)
    assert refused.value.code == "not_servable"
    assert refused.value.details["version"] == 2 and "NaN" in refused.value.details["reason"]
    assert client.get_model("lin").aliases == {"production": 1}
    assert client.infer("lin", {"input": X}).model_version == "1"


def test_replies_that_are_not_maas_errors(not_maas: str) -> None:
    with Client(not_maas, timeout_s=0.3) as client:
        with pytest.raises(MaasError) as page:
            client.get_model("lin")
        assert type(page.value) is MaasError
        assert "answered 502 Bad Gateway without a maas error body" in page.value.message
        assert "<html><body><h1>502" in page.value.message
        assert page.value.details == {"status": 502}

        with pytest.raises(MaasError, match="not JSON") as not_json:
            client.list_models()
        assert type(not_json.value) is MaasError

        with pytest.raises(MaasError, match="a document this SDK cannot read") as other:
            client.get_model("other")  # JSON, but not a model
        assert type(other.value) is MaasError

        with pytest.raises(MaasError, match="502") as ready:
            client.ready()  # a readiness answer is {"ready": ...}; a page is not one
        assert type(ready.value) is MaasError

        with pytest.raises(UnavailableError, match="did not answer GET /v2/health/live"):
            client.live()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_server_that_cannot_be_reached_is_unavailable() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with Client(url + "/", timeout_s=5) as client:
        assert client.base_url == url
        with pytest.raises(UnavailableError) as refused:
            client.list_models()
    assert refused.value.message.startswith(f"cannot reach the maas server at {url}: ")
    assert refused.value.details == {"server": url}


def test_registry_id_is_checked_before_the_first_call(server: str, registry: Registry) -> None:
    own = registry.registry_id()
    with Client(server) as client:
        info = client.registry()
    assert info.id == own and info.maas_version
    with Client(server, registry_id="another-registry") as wrong:
        with pytest.raises(RegistryMismatchError) as mismatch:
            wrong.list_models()
        assert mismatch.value.message == (
            f"the server at {server} serves registry {own}, "
            "not this configuration's another-registry"
        )
        with pytest.raises(RegistryMismatchError):
            wrong.list_models()  # every call, until the server is the right one
    with Client(server, registry_id=own) as right:
        assert right.list_models() == []
        assert right.live()
