"""A local OpenID Connect issuer for the tests: a small Starlette app under uvicorn on a free loopback port that
serves the discovery document and the key set, and signs real tokens with real keys (RSA, P-256, Ed25519)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import free_port, uvicorn_thread

AUDIENCE = "agora"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        exporter: Any = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.alg]
        doc: dict[str, Any] = exporter.to_jwk(self.private.public_key(), as_dict=True)
        return {**doc, "kid": self.kid, "use": "sig", "alg": self.alg}


def new_key(alg: str) -> SigningKey:
    private: Any
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(f"{alg}-{uuid.uuid4().hex[:8]}", alg, private)


@dataclass
class Issuer:
    url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    jwks_fetches: int = 0

    def key(self, alg: str) -> SigningKey:
        return next(k for k in self.keys if k.alg == alg)

    def token(self, alg: str = "RS256", *, key: SigningKey | None = None, **claims: Any) -> str:
        """A token signed by this issuer's `alg` key (or `key`), with sensible claims that `claims` override
        (a claim given as None is left out)."""
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300, "azp": "portal"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signer = key or self.key(alg)
        return jwt.encode(body, signer.private, algorithm=signer.alg, headers={"kid": signer.kid})

    def rotate(self, alg: str = "RS256") -> SigningKey:
        """A new key of `alg` replaces the old one in the key set."""
        fresh = new_key(alg)
        self.keys = [k for k in self.keys if k.alg != alg] + [fresh]
        return fresh

    def config(self, **extra: Any) -> dict[str, Any]:
        """This issuer's entry of an issuers file."""
        return {"issuer": self.url, "audience": AUDIENCE, **extra}


def _app(issuer: Issuer) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})

    async def jwks(request: Request) -> JSONResponse:
        issuer.jwks_fetches += 1
        return JSONResponse({"keys": [k.public_jwk() for k in issuer.keys]})

    return Starlette(
        routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)],
    )


@contextmanager
def running_issuer(path: str = "/realms/city") -> Iterator[Issuer]:
    """An issuer at http://127.0.0.1:<port><path> with one key of each algorithm."""
    port = free_port()
    issuer = Issuer(f"http://127.0.0.1:{port}{path}", [new_key("RS256"), new_key("ES256"), new_key("EdDSA")])
    app = Starlette()
    app.mount(path, _app(issuer))
    with uvicorn_thread(app, port):
        yield issuer
