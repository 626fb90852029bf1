"""A real HTTP endpoint for notifications: it records the entities of every notification POSTed to it, by path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.http_thread import serving

Entities = list[dict[str, Any]]


@dataclass
class Receiver:
    url: str = ""  # http://127.0.0.1:<port>, without a path: subscriptions add their own
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, one notified entity)
    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, whole notification)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold: threading.Event = field(default_factory=threading.Event)  # set: POSTs wait (a hanging endpoint)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """The whole notifications received at `path`, in the order they came."""
        with self.lock:
            return [body for p, body in self.notifications if p == path]

    def wait_for_bodies(self, path: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.bodies(path)) < count:
            time.sleep(0.05)
        return self.bodies(path)

    headers: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, headers) of each POST

    def at(self, path: str | None = None) -> Entities:
        """The entities notified so far at `path` (at every path when None), in the order they came."""
        with self.lock:
            return [entity for p, entity in self.got if path is None or p == path]

    def wait_until(self, path: str | None, done: Callable[[Entities], bool], timeout: float = 30.0) -> Entities:
        """The entities at `path` once `done` holds for them, or when `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.at(path)
            if done(found):
                return found
            time.sleep(0.05)
        return self.at(path)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port, answering 204 to every POST."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            with receiver.lock:
                receiver.got.extend((self.path, entity) for entity in body["data"])
                receiver.notifications.append((self.path, body))
                receiver.headers.append((self.path, dict(self.headers)))
            deadline = time.monotonic() + 30
            while receiver.hold.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        receiver.url = url
        yield receiver
