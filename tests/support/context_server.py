"""A local HTTP server for user @context documents (tests never touch the internet)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.http_thread import serving

CONTEXTS: dict[str, Any] = {
    "/a.jsonld": {
        "@context": {"Vehicle": "https://example.org/city#Vehicle", "speed": "https://example.org/city#speed"}
    },
    "/b.jsonld": {"@context": {"city": "https://example.org/city#"}},
}


class _Handler(BaseHTTPRequestHandler):
    documents: dict[str, Any] = CONTEXTS

    def do_GET(self) -> None:
        if self.path.startswith("/hang"):
            time.sleep(30)
        doc = self.documents.get(self.path)
        if doc is None:
            self.send_response(404)
            self.end_headers()
            return
        raw = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/ld+json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_contexts(documents: dict[str, Any] | None = None) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"documents": documents or CONTEXTS})
    with serving(handler) as url:
        yield url
