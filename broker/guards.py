"""The outbound guard (issue 18, decision record 0205): which addresses the broker may connect to when it fetches
a remote @context, delivers a notification or talks to a context source.

Every address a host name resolves to is classified:

    refused   link-local (169.254.0.0/16, fe80::/10: the cloud metadata services live there), the other metadata
              addresses (fd00:ec2::254, 100.100.100.200), unspecified, multicast, reserved: never, whatever the
              configuration says
    loopback  127.0.0.0/8, ::1, 0.0.0.0/8 (which reaches the host itself on Linux)
    private   RFC 1918, shared address space (100.64.0.0/10), unique local (fc00::/7), benchmarking, documentation
    public    the rest

Loopback and private addresses are refused unless the configuration allows them (`AGORA_OUTBOUND_ALLOW`, a list of
`loopback`, `private` and CIDR networks) or the broker runs in the open loopback mode. IPv4-mapped and NAT64
addresses are judged by the IPv4 address inside. A name is refused when any of its addresses is, and the
connection then goes to an address that was checked, never to a second resolution (DNS rebinding): the HTTP
clients of the broker connect through `GuardedBackend` (httpx, httpcore) or `OutboundPolicy.open_connection` (the
notifier's own HTTP/1.1 client), so every redirect is checked too.

One function answers for a URL, `OutboundPolicy.check` (raising OutboundRefused, a 400 BadRequestData naming the
policy): subscriptions and registrations call it when they are created or changed, the federation forwarder before
each request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpcore
import httpx

from broker.core.errors import OutboundRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The environment variable and option that allow loopback and private addresses: named in every refusal.
POLICY_NAME: Final = "AGORA_OUTBOUND_ALLOW"


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: Never connected to, whatever the configuration: the metadata services of the clouds answer on these.
METADATA: Final = _nets("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
LOOPBACK: Final = _nets("127.0.0.0/8", "::1/128", "0.0.0.0/8")
PRIVATE: Final = _nets(
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "2001:db8::/32",
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_KEYWORDS: Final = {"loopback": LOOPBACK, "private": PRIVATE}
#: Seconds a name may take to resolve.
RESOLVE_TIMEOUT: Final = 5.0


def _unwrapped(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address reaches."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def classify(ip: IPAddress) -> tuple[str, str]:
    """(kind, why) of an address: kind is refused, loopback, private or public; why is said in a refusal."""
    ip = _unwrapped(ip)
    if any(ip in net for net in METADATA):
        return "refused", "a link-local or cloud metadata address, always refused"
    if ip.is_unspecified or ip.is_multicast:
        return "refused", "an unspecified or multicast address, always refused"
    if any(ip in net for net in LOOPBACK):
        return "loopback", "a loopback address"
    if ip.is_reserved:
        return "refused", "a reserved address, always refused"
    if any(ip in net for net in PRIVATE) or not ip.is_global:
        return "private", "a private address"
    return "public", "a public address"


@dataclass(frozen=True)
class OutboundPolicy:
    """The networks beyond the public internet that the broker may connect to (`allowed`)."""

    allowed: tuple[IPNetwork, ...] = ()
    #: How the allowed networks came about, for refusals ("open loopback mode" or the setting's name).
    origin: str = POLICY_NAME

    @classmethod
    def open(cls) -> OutboundPolicy:
        """The open loopback mode's: loopback and private networks allowed (the metadata ones never)."""
        return cls(LOOPBACK + PRIVATE, "the open loopback mode")

    @classmethod
    def parse(cls, text: str) -> OutboundPolicy:
        """From `loopback`, `private` and CIDR networks, separated by commas or spaces; ValueError for others."""
        allowed: list[IPNetwork] = []
        for item in text.replace(",", " ").split():
            if item.lower() in _KEYWORDS:
                allowed.extend(_KEYWORDS[item.lower()])
                continue
            net = ipaddress.ip_network(item, strict=False)
            # A network inside the metadata ones can only mean to allow them: say so. A wider one (fc00::/7 holds
            # fd00:ec2::254) is taken, and the metadata addresses in it stay refused (classify judges them first).
            if any(net.version == m.version and net.subnet_of(m) for m in METADATA):  # type: ignore[arg-type]
                raise ValueError(f"{POLICY_NAME}: {item} is link-local or metadata addresses, never allowed")
            allowed.append(net)
        return cls(tuple(allowed))

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` is refused, or None when the broker may connect to it."""
        kind, why = classify(ip)
        if kind == "refused":
            return why
        if kind == "public" or any(_unwrapped(ip) in net for net in self.allowed):
            return None
        return f"{why}, refused unless {POLICY_NAME} allows it"

    def checked(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses, when every one is allowed; else OutboundRefused naming the first refused one."""
        found = list(dict.fromkeys(addresses))
        for address in found:
            why = self.refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if why is not None:
                shown = host if host == address else f"{host} ({address})"
                raise OutboundRefused(f"{shown} is {why}")
        return found

    async def resolve(self, host: str, port: int) -> list[str]:
        """The checked addresses of `host` (OutboundRefused when one is refused); OSError when it does not resolve."""
        literal = _literal(host)
        if literal is not None:
            return self.checked(host, [literal])
        # Bounded: a slow resolver must not hold a request; TimeoutError is an OSError, "does not resolve".
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return self.checked(host, [str(info[4][0]) for info in infos])

    async def check(self, url: str, what: str = "URL") -> None:
        """Refuse `url` (OutboundRefused, 400) when its host is or resolves to a refused address. A name that does
        not resolve now passes: it is checked again when the broker connects."""
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            return
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
        except ValueError:
            return  # a malformed port: the caller's own validation speaks of it
        try:
            await self.resolve(host, port)
        except OutboundRefused as exc:
            raise OutboundRefused(f"{what} {url} is refused by the outbound policy: {exc.detail}") from None
        except (OSError, UnicodeError):
            return

    async def open_connection(
        self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """asyncio.open_connection to a checked address of `host` (TLS verified against `host` itself)."""
        last: OSError | None = None
        for address in await self.resolve(host, port):
            try:
                server_hostname = host if ssl_context is not None else None
                return await asyncio.open_connection(address, port, ssl=ssl_context, server_hostname=server_hostname)
            except OSError as exc:
                last = exc
        raise last or OSError(f"{host} has no address")


_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with every TCP connection made to a checked address: a redirect, a second
    resolution or a name that resolves to a refused address never reaches the network."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the outbound guard allows no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: OutboundPolicy, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        # httpx takes no network backend of its own; its pool does (the documented httpcore extension point). TLS
        # still verifies the URL's host name (httpcore gives it as the server name), whatever address was dialled.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(), network_backend=GuardedBackend(policy)
        )


def guarded_client(
    policy: OutboundPolicy, *, ssl_context: ssl.SSLContext | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx client whose every connection, redirects included, goes through the outbound guard (`ssl_context`:
    the certificates to trust, default the system's). No proxy from the environment: a proxy would make the
    connection on the broker's behalf, past the guard."""
    return httpx.AsyncClient(transport=_GuardedTransport(policy, ssl_context), trust_env=False, **kwargs)


def policy_for(open_loopback: bool, allow: str) -> OutboundPolicy:
    """The broker's policy: the open loopback mode's, else the configured one (public addresses only by default)."""
    return OutboundPolicy.open() if open_loopback else OutboundPolicy.parse(allow)
