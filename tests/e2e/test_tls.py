"""``maas serve --tls-cert --tls-key``: REST and gRPC speak only TLS, and the CLI, the SDK and
tritonclient verify the certificate (a self-signed one through MAAS_CA_BUNDLE)."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from maas.client import Client
from maas.errors import UnavailableError
from maas.testing.processes import free_ports, stop_process

MAAS = str(Path(sys.executable).parent / "maas")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate to serve with")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def server(
    certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, dict[str, str]]]:
    cert, key = certificate
    home = tmp_path_factory.mktemp("home")
    port, grpc_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env |= {"MAAS_HOME": str(home), "MAAS_PORT": str(port), "MAAS_GRPC_PORT": str(grpc_port)}
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [MAAS, "serve", "--tls-cert", str(cert), "--tls-key", str(key)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert process.poll() is None, (home / "serve.log").read_text()
            try:
                trusted = ssl.create_default_context(cafile=str(cert))
                if httpx.get(f"{url}/v2/health/ready", verify=trusted, timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            subprocess.run(["sleep", "0.1"], check=True)
        else:
            pytest.fail("the TLS server did not start:\n" + (home / "serve.log").read_text())
        yield url, f"127.0.0.1:{grpc_port}", env
    finally:
        stop_process(process, signal.SIGINT)
        log.close()


def test_rest_speaks_tls_and_its_certificate_is_verified(
    server: tuple[str, str, dict[str, str]], certificate: tuple[Path, Path]
) -> None:
    url, _, _ = server
    cert, _ = certificate
    with Client(url, verify=str(cert)) as client:
        assert client.live()
    with pytest.raises(UnavailableError), Client(url) as unverified:  # self-signed: refused
        unverified.live()
    plain = url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/v2/health/live", timeout=5)  # no plain HTTP on that port


def test_grpc_speaks_tls(
    server: tuple[str, str, dict[str, str]], certificate: tuple[Path, Path]
) -> None:
    _, address, _ = server
    cert, _ = certificate
    secure = grpcclient.InferenceServerClient(address, ssl=True, root_certificates=str(cert))
    try:
        assert secure.is_server_live()
    finally:
        secure.close()
    insecure = grpcclient.InferenceServerClient(address)
    try:
        with pytest.raises(InferenceServerException):
            insecure.is_server_live()
    finally:
        insecure.close()


def test_the_cli_trusts_the_bundle_it_is_given(
    server: tuple[str, str, dict[str, str]], certificate: tuple[Path, Path]
) -> None:
    url, _, env = server
    cert, _ = certificate
    trusted = subprocess.run(
        [MAAS, "--server", url, "models", "list"],
        env=env | {"MAAS_CA_BUNDLE": str(cert)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert trusted.returncode == 0, trusted.stderr
    refused = subprocess.run(
        [MAAS, "--server", url, "models", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "certificate" in refused.stderr.lower() and "Traceback" not in refused.stderr
