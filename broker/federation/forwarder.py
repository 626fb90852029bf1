"""The forwarding client (clauses 4.3.6, 4.3.6.5, 4.3.6.6, 6.3.x): one request to one registered context source.

    Forwarder.send(registration, method, path, caller=..., params=..., body=..., link=..., via=...)
        -> SourceReply   the source answered with any HTTP status (the caller reads status and body)
        -> SourceError   no usable answer: loop (Via), cooldown, refused by the outbound guard, timeout,
                         connection failure, or a body that is not JSON; `warning()` is the NGSILD-Warning value

`send` never raises for what a source does; a source that hangs, answers garbage or 500s is a SourceError or a
SourceReply with that status, never a 500 of this broker. The request carries:

- the registration's tenant as NGSILD-Tenant (clause 4.3.6.5: the tenant is the registration's, not the caller's);
- a Link header with the registration's contextSourceInfo `jsonldContext`, else the `link` given (the request's);
- every other contextSourceInfo key/value as a header (`accept`/`contentType` set Accept and Content-Type);
- a Via header: the incoming request's Via with this broker's identity appended (clause 6.3.18 / RFC 9110 7.6.3).
  A request whose incoming Via already holds this broker's identity, or the registration's contextSourceAlias
  (the source's own, clause 5.12), is not forwarded (`SourceError` "loop"), so a registration loop A -> B -> A
  ends with an error at once, never a hang;
- the registration's management.timeout (milliseconds, clause 5.2.34), else the broker's default.

After a failure (timeout, connection, a 5xx, garbage) the source is skipped until its management.cooldown
(milliseconds) has passed, else the default cooldown.

How distributed writes use it: plan the registrations with `Registrations.matching(tenant, <operation>, ...)`,
call `send` once per registration with the operation's path relative to the endpoint (for example
`/ngsi-ld/v1/entities/{id}/attrs`), the compacted or expanded body and the incoming Via; a SourceReply with status
2xx is a success for that source, any other reply or a SourceError goes into the 207 answer's errors (its
`warning()` into NGSILD-Warning). The outbound request is made in ONE place, `Forwarder._request`, where the
outbound guard (broker.guards) checks the URL before every request, and the client connects through it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from broker.core.caller import Caller
from broker.core.errors import NgsiLdError, OutboundRefused
from broker.core.registrations import Registration
from broker.guards import OutboundPolicy, guarded_client
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import TermMap
from broker.store.base import DEFAULT_TENANT

#: The contextSourceInfo value that stands for "the triggering request's value" (clause 4.3.6.5).
FROM_REQUEST: Final = "urn:ngsi-ld:request"
#: contextSourceInfo keys with a meaning of their own (clause 4.3.6.6): not sent as headers of the same name.
_RESERVED: Final = frozenset({"jsonldContext", "accept", "contentType", "ngsildConformance"})
_CORE_LINK_REL: Final = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
#: NGSILD-Warning codes of Table 6.3.17-1 (record 0184): 111 "the payload of the response was invalid", 199 "no
#: response was received ... within the specified timeout period or a registration loop has been detected".
_INVALID: Final = 111
_NO_ANSWER: Final = 199


@dataclass(frozen=True)
class SourceReply:
    """What a context source answered: its status, headers and JSON body (None when it sent none)."""

    registration_id: str
    endpoint: str
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class SourceError:
    """No usable answer from a source; `kind` is loop, cooldown, refused, timeout, unreachable, garbage, or context
    (its registration's jsonldContext could not be had, so it was not asked)."""

    registration_id: str
    endpoint: str
    kind: str
    detail: str
    status: int | None = None

    def warning(self) -> str:
        """This failure as one NGSILD-Warning value (clause 6.3.17): 111 for an answer that is not JSON, 199 for
        no answer (timeout, unreachable, cooling down, refused by the outbound guard, a loop)."""
        code = _INVALID if self.kind == "garbage" else _NO_ANSWER
        return warning(self.endpoint, code, f"registration {self.registration_id}: {self.kind}: {self.detail}")


def warning(endpoint: str, code: int, text: str) -> str:
    """One NGSILD-Warning value in the warning-value form of IETF RFC 7234 5.5 (clause 6.3.17): the code, the
    source's host[:port] as warn-agent (a URL is not a valid one), the text quoted."""
    agent = urlsplit(endpoint).netloc or "-"
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
    return f'{code} {agent} "{quoted}"'


def registered_context(reg: Registration) -> str | None:
    """The registration's contextSourceInfo `jsonldContext` (4.3.6.6), the @context its source is spoken to in
    (Link header, and the terms of every payload and query parameter); None without one."""
    for pair in reg.doc.get("contextSourceInfo", ()):
        if pair["key"] == "jsonldContext":
            return str(pair["value"])
    return None


async def registered_terms(resolver: ContextResolver, reg: Registration) -> TermMap | SourceError | None:
    """The term map of the registration's jsonldContext (clause 4.3.6.6: "the Context Broker shall apply a compaction
    operation ... over both payload and query parameters using the JSON-LD Context supplied"), shared by the reads
    and the writes; None without one; a SourceError (kind `context`, warning 199) when it cannot be had, and then
    the source is not asked."""
    url = registered_context(reg)
    if url is None:
        return None
    try:
        return await resolver.resolve(url)
    except NgsiLdError as exc:
        return SourceError(reg.id, reg.endpoint, "context", f"its jsonldContext {url}: {exc.detail}")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def via_holds(via: str | None, identity: str) -> bool:
    """Whether an incoming Via header already lists `identity` (its received-by field) at some hop."""
    if not via:
        return False
    for hop in via.split(","):
        parts = hop.split()
        if len(parts) >= 2 and parts[1] == identity:
            return True
    return False


def _millis(value: Any) -> float | None:
    return float(value) / 1000.0 if isinstance(value, int | float) and value > 0 else None


@dataclass
class Forwarder:
    """One shared httpx client for every context source, with cooldowns kept per registration (this process)."""

    identity: str
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy.open)
    default_timeout: float = 5.0
    default_cooldown: float = 10.0
    client: httpx.AsyncClient | None = None
    _cooling: dict[str, float] = field(default_factory=dict)

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = guarded_client(self.outbound, timeout=self.default_timeout)
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def loops(self, via: str | None) -> bool:
        """Whether a request with this incoming Via went through this broker already (then it is not forwarded)."""
        return via_holds(via, self.identity)

    def cooling(self, reg: Registration) -> bool:
        until = self._cooling.get(reg.id)
        return until is not None and until > time.monotonic()

    def headers(
        self,
        reg: Registration,
        caller: Caller,
        link: str | None,
        via: str | None,
        incoming: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The headers of a request to `reg` (the module docstring says which and why). A contextSourceInfo value
        "urn:ngsi-ld:request" is taken from the `incoming` request's header of that name, and left out when the
        request has none (4.3.6.5, record 0189)."""
        tenant = reg.doc.get("tenant") or (None if caller.tenant == DEFAULT_TENANT else caller.tenant)
        out = {"Accept": "application/json"}
        if tenant:
            out["NGSILD-Tenant"] = tenant
        context = link
        for pair in reg.doc.get("contextSourceInfo", ()):
            key, value = pair["key"], pair["value"]
            if key == "jsonldContext":
                context = value
            elif key == "accept":
                out["Accept"] = value
            elif key == "contentType":
                out["Content-Type"] = value
            elif key not in _RESERVED:
                if value == FROM_REQUEST:
                    given = _header(incoming, key)
                    if given is None:
                        continue
                    value = given
                out[key] = value
        if context:
            out["Link"] = f"<{context}>; {_CORE_LINK_REL}"
        hop = f"1.1 {self.identity}"
        out["Via"] = f"{via}, {hop}" if via else hop
        return out

    async def send(
        self,
        reg: Registration,
        method: str,
        path: str,
        *,
        caller: Caller,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        link: str | None = None,
        via: str | None = None,
        incoming: Mapping[str, str] | None = None,
    ) -> SourceReply | SourceError:
        """Send one request to `reg`'s endpoint + `path`; never raises for what the source does. `incoming` is the
        triggering request's headers (for contextSourceInfo values "urn:ngsi-ld:request")."""
        url = reg.endpoint.rstrip("/") + path
        if self.loops(via):
            return SourceError(reg.id, reg.endpoint, "loop", f"the request went through {self.identity} already")
        alias = reg.doc.get("contextSourceAlias")
        if isinstance(alias, str) and via_holds(via, alias):
            # 5.12: "no registration shall match if the CSourceRegistration contextSourceAlias can be found within
            # the listing of previously encountered Context Sources" (record 0472)
            return SourceError(reg.id, reg.endpoint, "loop", f"the request went through {alias} already")
        if self.cooling(reg):
            return SourceError(reg.id, reg.endpoint, "cooldown", "skipped: it failed recently (cooldown)")
        headers = self.headers(reg, caller, link, via, incoming)
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        management = reg.doc.get("management", {})
        timeout = _millis(management.get("timeout")) or self.default_timeout
        result = await self._request(reg, method, url, headers, params, content, timeout)
        if isinstance(result, SourceError) or result.status >= 500:
            cooldown = _millis(management.get("cooldown")) or self.default_cooldown
            self._cooling[reg.id] = time.monotonic() + cooldown
        return result

    async def _request(
        self,
        reg: Registration,
        method: str,
        url: str,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
        content: bytes | None,
        timeout: float,
    ) -> SourceReply | SourceError:
        """The one place an outbound request to a context source is made (the outbound guard checks it here)."""
        try:
            await self.outbound.check(url, "context source endpoint")
            async with asyncio.timeout(timeout):
                response = await self._client().request(
                    method, url, headers=headers, params=params, content=content, timeout=timeout
                )
        except OutboundRefused as exc:
            return SourceError(reg.id, reg.endpoint, "refused", exc.detail)
        except (TimeoutError, httpx.TimeoutException):
            return SourceError(reg.id, reg.endpoint, "timeout", f"no answer within {timeout:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return SourceError(
                reg.id, reg.endpoint, "unreachable", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            )
        return _reply(reg, response)


def _reply(reg: Registration, response: httpx.Response) -> SourceReply | SourceError:
    body: Any = None
    if response.content:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if response.is_success:
                return SourceError(reg.id, reg.endpoint, "garbage", "the answer is not JSON", response.status_code)
            body = None  # an error status with a non-JSON body: the status says enough
    return SourceReply(reg.id, reg.endpoint, response.status_code, dict(response.headers), body)
