"""Connection and request limits (``maas.serving.http_limits``) on a real server on loopback.

Attacks use raw sockets; checks use httpx. The limits are set short here (timeouts of
1 s, 100 connections, 20 in the test of the cap) so every test is over in a few seconds.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server

TIMEOUT_S = 1.0
CAP = 20


@contextlib.contextmanager
def _serve(home: Path, registry: Registry, **limits: Any) -> Iterator[str]:
    short = {
        "header_timeout_s": TIMEOUT_S,
        "body_timeout_s": TIMEOUT_S,
        "write_timeout_s": TIMEOUT_S,
        "keep_alive_timeout_s": TIMEOUT_S,
        "max_connections": 100,
    }
    settings = Settings(home=home, job_concurrency=0, **(short | limits))
    with running_server(settings, registry) as served:
        yield served


@pytest.fixture
def url(tmp_path: Path, local_registry: Registry) -> Iterator[str]:
    with _serve(tmp_path, local_registry) as served:
        yield served


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@contextlib.contextmanager
def _sockets(url: str, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(_address(url), timeout=5) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def _closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before it closed ``sock``, or None while it is still open."""
    if not select.select([sock], [], [], 0)[0]:
        return None
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError, BlockingIOError):
        pass
    return received


def _wait_closed(sock: socket.socket, within_s: float) -> tuple[float, bytes]:
    """(seconds until the server closed ``sock``, what it sent), failing after ``within_s``."""
    start = time.monotonic()
    sock.settimeout(within_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {within_s} s")
    return time.monotonic() - start, received


def test_slowloris_connections_are_closed_after_the_header_timeout(url: str) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with _sockets(url, 50) as attackers, httpx.Client(base_url=url, timeout=5) as check:
        start = time.monotonic()
        closed: dict[int, float] = {}
        sent = 0
        while len(closed) < len(attackers) and time.monotonic() - start < 4 * TIMEOUT_S:
            for i, sock in enumerate(attackers):
                if i in closed:
                    continue
                if _closed_by_server(sock) is not None:
                    closed[i] = time.monotonic() - start
                    continue
                with contextlib.suppress(OSError):
                    sock.send(head[sent : sent + 1])
            sent += 1
            assert check.get("/v2/health/live").status_code == 200  # served meanwhile
            time.sleep(0.1)
        assert len(closed) == len(attackers), f"{len(attackers) - len(closed)} still open"
        assert min(closed.values()) >= 0.8 * TIMEOUT_S  # by the timeout, not at once
        assert max(closed.values()) < 3 * TIMEOUT_S


def test_a_head_sent_in_time_is_served(url: str) -> None:
    with _sockets(url, 1) as (sock,):
        for byte in b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n":
            sock.send(bytes([byte]))
        time.sleep(0.01)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_silent_connection_is_closed_after_the_header_timeout(url: str) -> None:
    with _sockets(url, 1) as (sock,):
        elapsed_s, received = _wait_closed(sock, 5 * TIMEOUT_S)
    assert 0.8 * TIMEOUT_S <= elapsed_s < 3 * TIMEOUT_S
    assert received == b""  # nothing was asked, nothing is answered


def test_a_stalled_body_is_answered_408_and_closed(url: str) -> None:
    with _sockets(url, 1) as (sock,):
        sock.sendall(
            b"POST /v2/models/m/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"inputs": '
        )
        elapsed_s, received = _wait_closed(sock, 5 * TIMEOUT_S)
    assert 0.8 * TIMEOUT_S <= elapsed_s < 3 * TIMEOUT_S
    assert received.startswith(b"HTTP/1.1 408")


def test_a_body_that_keeps_coming_is_not_cut_off(url: str) -> None:
    body = b'{"inputs": []}'
    with _sockets(url, 1) as (sock,):
        sock.sendall(
            b"POST /v2/models/m/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        for byte in body:  # 14 bytes over about 2.8 s: longer than the timeout, never idle
            time.sleep(0.2 * TIMEOUT_S)
            sock.send(bytes([byte]))
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 404")  # model 'm' is unknown


def test_an_idle_keep_alive_connection_is_closed(url: str) -> None:
    with _sockets(url, 1) as (sock,):
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        elapsed_s, _ = _wait_closed(sock, 5 * TIMEOUT_S)
    assert 0.8 * TIMEOUT_S <= elapsed_s < 3 * TIMEOUT_S


def test_connections_beyond_the_cap_are_refused_and_health_still_answers(
    tmp_path: Path, local_registry: Registry
) -> None:
    # Long timeouts here: the connections within the cap must stay open while counted.
    with (
        _serve(
            tmp_path,
            local_registry,
            header_timeout_s=30,
            keep_alive_timeout_s=30,
            max_connections=CAP,
        ) as url,
        httpx.Client(base_url=url, timeout=5) as kept,
    ):
        assert kept.get("/v2/health/live").status_code == 200  # one connection, kept alive
        flood = CAP + 5
        with _sockets(url, flood) as attackers:
            start = time.monotonic()
            refused: dict[int, bytes] = {}
            while len(refused) < flood - (CAP - 1) and time.monotonic() - start < 5:
                for i, sock in enumerate(attackers):
                    if i not in refused and (received := _closed_by_server(sock)) is not None:
                        refused[i] = received
                time.sleep(0.01)
            refused_s = time.monotonic() - start
            time.sleep(0.2)  # and no more than those
            refused.update(
                (i, r)
                for i, sock in enumerate(attackers)
                if i not in refused and (r := _closed_by_server(sock)) is not None
            )
            # CAP - 1 flood connections fit beside the kept one; the others are refused.
            assert len(refused) == flood - (CAP - 1)
            assert refused_s < 1
            assert all(r == b"" or r.startswith(b"HTTP/1.1 503") for r in refused.values())
            assert kept.get("/v2/health/live").status_code == 200
        deadline = time.monotonic() + 5
        while True:  # the flood gone (its closes seen by the server), new ones come in
            try:
                if httpx.get(f"{url}/v2/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_an_oversized_head_is_refused_after_a_bounded_read(url: str) -> None:
    rss_before = _rss_bytes()
    with _sockets(url, 1) as (sock,):
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * 65536
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 64 * 1024 * 1024:  # 64 MB offered: the server stops it early
                sock.sendall(chunk)
                sent += len(chunk)
        assert sent < 16 * 1024 * 1024
        _, received = _wait_closed(sock, 5)
    assert received == b"" or received.startswith(b"HTTP/1.1 431")
    assert _rss_bytes() - rss_before < 16 * 1024 * 1024  # the server kept none of it
    assert httpx.get(f"{url}/v2/health/live", timeout=5).status_code == 200


def test_a_large_head_that_arrives_in_one_read_is_refused_431(url: str) -> None:
    with _sockets(url, 1) as (sock,):
        value = b"a" * (70 * 1024)
        sock.sendall(
            b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: %s\r\n\r\n" % value
        )
        _, received = _wait_closed(sock, 5)
    assert received.startswith(b"HTTP/1.1 431")


def test_too_many_headers_are_refused_431(url: str) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    with _sockets(url, 1) as (sock,):
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % headers)
        _, received = _wait_closed(sock, 5)
    assert received.startswith(b"HTTP/1.1 431")


def test_headers_within_the_limits_are_served(url: str) -> None:
    headers = {f"X-H{i}": "v" * 500 for i in range(90)}  # 90 headers, about 46 KiB
    with httpx.Client(base_url=url, timeout=5) as client:
        assert client.get("/v2/health/live", headers=headers).status_code == 200
        assert client.get("/v2/health/live").status_code == 200  # and on the same connection


def test_a_json_body_over_the_key_bound_is_refused_400_off_the_loop(
    tmp_path: Path, local_registry: Registry
) -> None:
    register_upload(local_registry, "lin", write_linear_model(tmp_path / "m.onnx"), actor="t")
    # 400,000 keys (7 MB, so decoded in a thread): refused before orjson builds them.
    keys = b",".join(b'"k%d":1' % i for i in range(400_000))
    body = b'{"inputs":[],"parameters":{' + keys + b"}}"
    with (
        _serve(tmp_path, local_registry) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        reply = client.post(
            "/v2/models/lin/infer", content=body, headers={"Content-Type": "application/json"}
        )
        assert client.get("/v2/health/live").status_code == 200
    assert reply.status_code == 400, reply.text
    assert "400002 object keys, more than the 10000 accepted" in reply.json()["error"]
