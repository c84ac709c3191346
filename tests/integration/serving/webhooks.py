"""A webhook receiver on loopback for alert tests: a real HTTP server in a thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Receiver", "receiving"]


@dataclass
class Receiver:
    """Records every POST (the status it answered, the JSON body); answers 500 to the
    first ``refuse`` of them, 200 after."""

    refuse: int = 0
    posts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for status, body in self.posts if status == 200]

    def all(self) -> list[tuple[int, dict[str, Any]]]:
        with self.lock:
            return list(self.posts)

    def take(self, body: dict[str, Any]) -> int:
        with self.lock:
            status = 500 if len(self.posts) < self.refuse else 200
            self.posts.append((status, body))
            return status


@contextmanager
def receiving(refuse: int = 0, path: str = "/hooks") -> Iterator[tuple[Receiver, str]]:
    """A receiver and its URL (``http://127.0.0.1:PORT{path}``); stopped on exit."""
    receiver = Receiver(refuse)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(receiver.take(body))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test says what matters

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
