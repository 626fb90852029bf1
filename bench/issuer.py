"""A minimal OpenID Connect issuer for the secured rows of the benchmark: discovery and a key set served from a
thread on a free loopback port, and RS256 tokens signed with its key (the broker verifies each once, then serves it
from its token cache, which is what the rows measure): `token` carries the admin role (no policy is read for it),
`operator_token` the role OPERATOR_ROLE, judged by the access policies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "agora-bench"
OPERATOR_ROLE = "bench-operator"


@dataclass
class BenchIssuer:
    url: str
    issuers_file: Path
    token: str
    operator_token: str


@contextmanager
def running_issuer(work: Path) -> Iterator[BenchIssuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench", "use": "sig", "alg": "RS256"}
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    documents["/.well-known/openid-configuration"] = json.dumps({"issuer": url, "jwks_uri": url + "/jwks"}).encode()
    documents["/jwks"] = json.dumps({"keys": [jwk]}).encode()
    claims = {"iss": url, "aud": AUDIENCE, "sub": "bench", "azp": "wrk", "exp": int(time.time()) + 86_400}
    token = jwt.encode({**claims, "roles": ["admin"]}, key, algorithm="RS256", headers={"kid": "bench"})
    operator = {**claims, "sub": "operator", "roles": [OPERATOR_ROLE]}
    operator_token = jwt.encode(operator, key, algorithm="RS256", headers={"kid": "bench"})
    issuers_file = work / "issuers.json"
    issuers_file.write_text(json.dumps({"issuers": [{"issuer": url, "audience": AUDIENCE}]}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield BenchIssuer(url, issuers_file, token, operator_token)
    finally:
        server.shutdown()
        server.server_close()
