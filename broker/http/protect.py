"""Security headers on every response and request rate limits per client (issue 18, records 0206, 0207)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.auth.identity import Identity
from broker.core.errors import TooManyRequests
from broker.http.authn import IDENTITY_KEY
from broker.http.errors import problem_response

#: An API answers JSON, never a page: nothing of it may be sniffed as another type, framed, or leak its URL.
SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
#: Over HTTPS only (RFC 6797 clause 7.2: not over plain HTTP): a year, the usual value.
HSTS: Final = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [*SECURITY_HEADERS, HSTS] if scope.get("scheme") == "https" else list(SECURITY_HEADERS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One token bucket per client: `rate` tokens a second, at most `burst` held; a request takes one. The
    buckets of the least recently seen clients go first beyond `max_clients` (a full bucket is what a new
    client gets anyway, so forgetting one only ever favours that client)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst or max(10, math.ceil(2 * rate)))
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may go, else the seconds until a token is there."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(client, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[client] = bucket
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def client_key(identity: Identity | None, scope: Scope) -> str:
    """Whose budget a request spends: the token's subject with its issuer (the users of one portal application
    share its OAuth client, not their budget; a client-credentials token's subject is the client itself), the API
    key; for anyone else the peer address."""
    if identity is not None and identity.method in ("token", "key"):
        return f"{identity.issuer or 'key'}|{identity.subject}"
    peer = scope.get("client")
    return f"addr|{peer[0] if peer else '?'}"


class RateLimit:
    """429 Too Many Requests with Retry-After once a client has spent its budget (after authentication, so that a
    client is known by its credentials, not its address)."""

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity = scope.get(IDENTITY_KEY)
        wait = self.buckets.take(client_key(identity if isinstance(identity, Identity) else None, scope))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            error = TooManyRequests(f"request rate limit reached; retry in {seconds} s", seconds)
            await problem_response(error, Request(scope))(scope, receive, send)
            return
        await self.app(scope, receive, send)
