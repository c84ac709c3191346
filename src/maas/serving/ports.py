"""Securing the server's two ports before anything is loaded or announced.

A port another process holds must be refused up front, with the flag that changes it,
not discovered after models are loaded. Two Linux rules shape how (checked by hand on
6.x kernels and by ``tests/e2e/test_ports.py``):

* gRPC listens with SO_REUSEPORT, so a second maas's gRPC server would bind the same
  port without error and the kernel would split calls between two unrelated servers. A
  plain bind (SO_REUSEADDR only) fails against any listener, SO_REUSEPORT or not, so it
  is the probe. Once it passes, a *holder* socket bound with SO_REUSEPORT and without
  SO_REUSEADDR keeps the port for this server's lifetime: it never listens (only
  listening sockets take connections), it makes every later probe fail, and it still
  lets this server's own gRPC server, and its ``--workers`` processes, bind beside it.
* The REST socket is bound here with SO_REUSEADDR (as uvicorn binds it, so a restart
  over TIME_WAIT connections works) and listens at once: a bound socket that does not
  listen would let another SO_REUSEADDR bind through. uvicorn is handed this socket;
  connections made while the models load wait in its backlog instead of being refused.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from maas.errors import UnavailableError

__all__ = ["HeldPorts", "grpc_holder", "hold_ports", "rest_socket"]

# uvicorn's default backlog; uvicorn sets its own again when it starts serving the socket.
_BACKLOG = 2048

_FLAGS = {"REST": "--port or MAAS_PORT", "gRPC": "--grpc-port or MAAS_GRPC_PORT"}


@dataclass(slots=True)
class HeldPorts:
    """The REST socket (bound and listening, for uvicorn) and the gRPC port's holder
    (None when gRPC is off, or when it could not be held; see ``hold_ports``)."""

    rest: socket.socket
    grpc_holder: socket.socket | None

    @property
    def port(self) -> int:
        """The REST port (the one the kernel chose when 0 was asked for)."""
        return int(self.rest.getsockname()[1])

    def close(self) -> None:
        self.rest.close()
        if self.grpc_holder is not None:
            self.grpc_holder.close()


def _socket(host: str, *, reuse_addr: bool, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    if reuse_addr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _bind(sock: socket.socket, host: str, port: int, what: str) -> None:
    """Bind, or close the socket and say which port could not be had and how to change it."""
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UnavailableError(
                f"port {port} ({what}) on {host} is in use by another process; "
                f"choose another with {_FLAGS[what]}",
                {"host": host, "port": port},
            ) from None
        raise UnavailableError(
            f"cannot bind port {port} ({what}) on {host}: {exc.strerror or exc}",
            {"host": host, "port": port},
        ) from None


def grpc_holder(host: str, port: int) -> socket.socket | None:
    """Probe the gRPC port, then hold it (see the module docstring); ``port`` 0 holds a
    free one. UnavailableError when anything else has it.

    None when the probe passed but the holder cannot bind: TIME_WAIT connections left by
    a server without SO_REUSEPORT block it for a minute. The port is free then, and the
    gRPC server's own bind takes it a moment later; only that moment goes unguarded.
    """
    probe = _socket(host, reuse_addr=True, reuse_port=False)
    _bind(probe, host, port, "gRPC")
    if port == 0:
        port = int(probe.getsockname()[1])
    holder = _socket(host, reuse_addr=False, reuse_port=True)
    probe.close()
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        return None
    return holder


def rest_socket(host: str, port: int) -> socket.socket:
    """The REST socket, bound and listening; UnavailableError when the port is taken."""
    sock = _socket(host, reuse_addr=True, reuse_port=False)
    _bind(sock, host, port, "REST")
    try:
        sock.listen(_BACKLOG)
    except OSError as exc:  # another listener got in between bind and listen
        sock.close()
        raise UnavailableError(
            f"port {port} (REST) on {host} is in use by another process; "
            f"choose another with {_FLAGS['REST']}",
            {"host": host, "port": port},
        ) from exc
    return sock  # --workers: uvicorn's supervisor passes it to each process it spawns


def hold_ports(host: str, port: int, grpc_port: int) -> HeldPorts:
    """Secure the REST port and (unless ``grpc_port`` is 0: no gRPC) the gRPC port.

    >>> held = hold_ports("127.0.0.1", 8080, 8081)  # doctest: +SKIP
    >>> uvicorn.Server(config).run(sockets=[held.rest])  # doctest: +SKIP
    """
    if port and port == grpc_port:
        raise UnavailableError(
            f"port {port} is given to both REST and gRPC; choose another with {_FLAGS['gRPC']}",
            {"host": host, "port": port},
        )
    holder = grpc_holder(host, grpc_port) if grpc_port else None
    try:
        rest = rest_socket(host, port)
    except BaseException:
        if holder is not None:
            holder.close()
        raise
    return HeldPorts(rest, holder)
