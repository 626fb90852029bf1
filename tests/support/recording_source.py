"""A real context source on loopback for the distributed-write tests: it records every request it receives and
answers each path prefix with the status (and JSON body) a test set for it, 204 by default."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.http_thread import serving


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # percent-decoded, without the query
    params: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class RecordingSource:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    #: "path prefix" or "METHOD path prefix" -> (status, JSON body or None)
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.startswith(prefix)]

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        for prefix, answer in self.answers.items():
            if path.startswith(prefix) or f"{method} {path}".startswith(prefix):
                return answer
        return 204, None


@contextmanager
def running_source() -> Iterator[RecordingSource]:
    source = RecordingSource()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            path = unquote(split.path)
            got = Received(
                self.command,
                path,
                dict(parse_qsl(split.query)),
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            with source.lock:
                source.received.append(got)
            status, body = source.answer(self.command, path)
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        source.url = url
        yield source
