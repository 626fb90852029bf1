"""API keys for machine clients (adapters, gateways): decision record 0203.

A key reads `agora_<key id>_<secret>`: the key id (12 hex digits) finds the record, the secret (256 random bits)
proves the holder. The store keeps the SHA-256 of the secret, never the secret, which is shown once, when the key
is made (`agora keys create`). A fast hash is enough here: the secret is random, not a password a person chose, so
there is nothing to guess from the hash, and the check stays cheap on every request.

A verified key is remembered for CACHE_SECONDS, so that a request does not read the store each time; a key revoked
through another process stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from typing import Final

from broker.auth.identity import Identity
from broker.core.errors import Unauthenticated
from broker.core.model import now_iso
from broker.store.base import ApiKeyRecord, Store

PREFIX: Final = "agora_"
_SHAPE: Final = re.compile(r"^agora_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
CACHE_SECONDS: Final = 10.0
CACHE_SIZE: Final = 4096


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(name: str, roles: tuple[str, ...], tenants: tuple[str, ...] | None) -> tuple[ApiKeyRecord, str]:
    """A fresh record and the key to give its holder (the only time the secret exists outside the holder)."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = ApiKeyRecord(key_id, name, secret_hash(secret), roles, tenants, now_iso())
    return record, f"{PREFIX}{key_id}_{secret}"


def identity_of(record: ApiKeyRecord) -> Identity:
    return Identity(f"apikey:{record.id}", record.roles, record.name, (), None, record.tenants, "key")


class ApiKeys:
    """Verifies presented keys against the store, with a short cache of the verified ones."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._verified: OrderedDict[str, tuple[float, Identity]] = OrderedDict()

    async def verify(self, presented: str) -> Identity:
        cached = self._verified.get(presented)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            self._verified.move_to_end(presented)
            return cached[1]
        identity = await self._check(presented)
        self._verified[presented] = (now + CACHE_SECONDS, identity)
        while len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    async def _check(self, presented: str) -> Identity:
        match = _SHAPE.match(presented)
        if match is None:
            raise Unauthenticated("the API key is malformed")
        record = await self.store.get_api_key(match.group(1))
        # Compared in constant time even when the id is unknown, so that timing tells nothing about which ids exist.
        expected = record.secret_hash if record is not None else "0" * 64
        if not hmac.compare_digest(expected, secret_hash(match.group(2))) or record is None:
            raise Unauthenticated("the API key is not valid")
        if record.revoked_at is not None:
            raise Unauthenticated("the API key was revoked")
        return identity_of(record)
