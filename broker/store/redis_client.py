"""How the Redis store reaches Redis (decision records 0040, 0043, 0048, 0081, 0084): what a store URL says, the
redis-py clients made from it (one server with a blocking pool, or a cluster; TLS with one shared SSL context;
commands packed by hiredis), and the auto-pipelining of the hot-path commands (`Batcher`)."""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hiredis
from redis.asyncio.connection import Connection, RedisSSLContext, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError

DEFAULT_CLUSTER_SHARDS = 16
MAX_CONNECTIONS = 128  # per process (and per cluster node: times 8)
DEFAULT_TIMEOUT_S = 10.0  # a command unanswered this long (Redis hung, a network partition) fails: 503
RECONNECT_ATTEMPTS = 8  # about 4 s of retries with backoff: a Redis restart with a small AOF fits in it


def _pack_command(*args: Any) -> list[bytes]:
    """hiredis packs a command in C, five times faster than redis-py's Python packer: it counts for the long
    argument lists of the write script (about a hundred per PATCH)."""
    if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT LOAD" and the like: one argument per word
        args = (*args[0].split(), *args[1:])
    return [hiredis.pack_command(args)]


class FastConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _pack_command(*args)


class FastSSLConnection(SSLConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _pack_command(*args)


@dataclass(frozen=True)
class RedisUrl:
    """What a store URL says: the client to make, the key prefix and the number of shards."""

    cluster: bool
    nodes: tuple[tuple[str, int], ...]
    client_url: str  # for a single server: the URL redis-py understands, without our options
    prefix: str
    shards: int
    tls: tuple[tuple[str, str], ...] = ()  # rediss:// and rediss+cluster:// only: (TLS option, file) pairs
    secure: bool = False  # TLS: rediss:// or rediss+cluster:// (decision records 0043, 0048)
    timeout: float = DEFAULT_TIMEOUT_S  # seconds a command may wait for Redis (decision record 0084)


#: The TLS options of a rediss:// URL (decision record 0043) and the redis-py arguments they become.
TLS_OPTIONS = {"tls_ca": "ssl_ca_certs", "tls_cert": "ssl_certfile", "tls_key": "ssl_keyfile"}
#: URL scheme -> (a cluster, over TLS).
SCHEMES = {
    "redis": (False, False),
    "rediss": (False, True),
    "redis+cluster": (True, False),
    "rediss+cluster": (True, True),
}


def parse_url(url: str) -> RedisUrl:
    """`redis://[user:pass@]host:port/db`, `rediss://...` (TLS), `redis+cluster://host:port[,host:port...]`,
    `rediss+cluster://...` (a cluster over TLS), each with optional query parameters `prefix` (default agora) and
    `shards` (1 on a server, 16 on a cluster); the TLS schemes also take `tls_ca` (a PEM file of the CA to trust
    besides the system's), `tls_cert` and `tls_key` (the client certificate and key, for a server with
    tls-auth-clients)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"a Redis store URL looks like redis://host:port/db or redis+cluster://host:port (rediss:// and "
            f"rediss+cluster:// over TLS), not {url!r}"
        )
    cluster, secure = SCHEMES[scheme]
    base, _, query = rest.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True, strict_parsing=bool(query)).items()}
    unknown = set(params) - {"prefix", "shards", "timeout", *TLS_OPTIONS}
    if unknown:
        raise ValueError(f"unknown Redis store option(s) {sorted(unknown)} in {url!r}")
    tls = tuple((k, v) for k, v in params.items() if k in TLS_OPTIONS)
    if tls and not secure:
        raise ValueError(f"TLS options need rediss:// or rediss+cluster:// (a TLS connection), not {url!r}")
    if any(not v for _, v in tls):
        raise ValueError(f"a TLS option names a file, and cannot be empty: {url!r}")
    prefix = params.get("prefix", "agora")
    if not prefix or any(c in prefix for c in "{}"):
        raise ValueError(f"prefix must be non-empty and without braces: {prefix!r}")
    shards = int(params.get("shards", DEFAULT_CLUSTER_SHARDS if cluster else 1))
    if not 1 <= shards <= 1024:
        raise ValueError(f"shards must be between 1 and 1024, not {shards}")
    timeout = _seconds(params.get("timeout"), url)
    if cluster:
        return RedisUrl(True, _cluster_nodes(base, url), "", prefix, shards, tls, secure, timeout)
    split = urlsplit(f"{scheme}://{base}")
    if not split.hostname:
        raise ValueError(f"no host in Redis store URL {url!r}")
    client_url = f"{scheme}://{base}"
    return RedisUrl(False, ((split.hostname, split.port or 6379),), client_url, prefix, shards, tls, secure, timeout)


def _seconds(text: str | None, url: str) -> float:
    """The `timeout` option: seconds, more than 0 and at most an hour."""
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 3600:  # also refuses nan and inf
        raise ValueError(f"timeout must be a number of seconds between 0 and 3600, not {text!r} in {url!r}")
    return value


def _cluster_nodes(base: str, url: str) -> tuple[tuple[str, int], ...]:
    """The startup nodes `host:port,host:port` of a cluster URL."""
    nodes = []
    for part in base.split("/")[0].split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster node looks like host:port, not {part!r} in {url!r}")
        nodes.append((host, int(port)))
    return tuple(nodes)


def server_client(config: RedisUrl) -> Any:
    """The client of a redis:// or rediss:// URL: one server, a blocking pool (a burst of requests waits for a
    connection instead of failing)."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    fast = FastSharedSSLConnection if config.secure else FastConnection
    pool = BlockingConnectionPool.from_url(
        config.client_url,
        max_connections=MAX_CONNECTIONS,
        timeout=30,
        decode_responses=False,
        connection_class=fast,
        # A hung Redis fails the command after this, instead of holding the request forever (0084).
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        # After a Redis restart every pooled connection is stale: each command retries on a fresh one. A resent
        # write script finds its own mark and counts as done (0083). A timeout is not retried: a Redis that did not
        # answer in `timeout` would make the request wait that long again, and again.
        retry=Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=1.0),
            RECONNECT_ATTEMPTS,
            supported_errors=(RedisConnectionError,),
        ),
        **_tls_arguments(config),
    )
    pool.connection_class = fast  # from_url sets its own class for rediss://, which packs in Python
    if config.secure:  # one SSL context for every connection, as on a cluster (0048)
        ssl_args = {k: v for k, v in pool.connection_kwargs.items() if k.startswith("ssl_")}
        pool.connection_kwargs["shared_ssl"] = SSLConnection(**ssl_args).ssl_context
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


class FastSharedSSLConnection(FastSSLConnection):
    """A TLS connection of a cluster client, sharing one SSL context with the client's other connections: redis-py
    makes one per connection, and loading the system's trust store into it costs about 75 ms of CPU (measured
    here), for each of the hundreds of connections a cluster client may open."""

    def __init__(self, *, shared_ssl: RedisSSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if shared_ssl is not None:
            self.ssl_context = shared_ssl


def cluster_client(config: RedisUrl) -> Any:
    """The RedisCluster client of a redis+cluster:// or rediss+cluster:// URL (decision record 0048)."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    fast = FastSharedSSLConnection if config.secure else FastConnection
    tls: dict[str, Any] = {"ssl": True, **_tls_arguments(config)} if config.secure else {}
    nodes = [ClusterNode(host, port, connection_class=fast) for host, port in config.nodes]
    # The cluster client has no waiting pool: past max_connections a command fails, so the bound is high.
    # With ssl=True every node it connects to, given or discovered, is reached over TLS with these files.
    client = RedisCluster(
        startup_nodes=nodes,
        decode_responses=False,
        max_connections=MAX_CONNECTIONS * 8,
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        **tls,
    )
    # The nodes it discovers are made from these arguments: hiredis packs their commands too.
    shared: dict[str, Any] = {"connection_class": fast}
    if config.secure:  # one context, made from exactly the arguments each connection would make its own from
        ssl_args = {k: v for k, v in client.connection_kwargs.items() if k.startswith("ssl_")}
        shared["shared_ssl"] = SSLConnection(**ssl_args).ssl_context
    client.connection_kwargs.update(shared)
    for node in client.nodes_manager.startup_nodes.values():  # made already, from the arguments before these
        node.connection_class = fast
        node.connection_kwargs.update({k: v for k, v in shared.items() if k != "connection_class"})
    return client


def _tls_arguments(config: RedisUrl) -> dict[str, str]:
    """redis-py's arguments for the TLS files of a URL, each checked to exist: else the first command would fail
    deep in the TLS handshake instead of naming the option."""
    for option, path in config.tls:
        if not os.path.isfile(path):
            raise ValueError(f"Redis TLS file {path!r} ({option}) does not exist or is not a file")
    return {TLS_OPTIONS[option]: path for option, path in config.tls}


class Batcher:
    """Auto-pipelining (decision record 0081): the commands that a process's requests issue in one turn of the event
    loop go to Redis together, as one pipeline on one pooled connection, as ioredis's enableAutoPipelining does.
    Sent one by one, every command pays a pool checkout, a system call to send and a wake-up to read in the broker,
    and a read and a write system call in Redis; under load a process has many requests in flight, and a batch
    shares those costs. Each command keeps its own reply or error: a pipeline is not a transaction, and a command
    of the batch does not see or affect another's outcome."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future gets its reply (or its error) when its batch returns."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._flush)  # after every callback already ready in this turn
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for args, _ in batch:
                pipe.execute_command(*args)
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed (after the client's retries), or we are cancelled
            cancelled = isinstance(exc, asyncio.CancelledError)
            for _, future in batch:
                if future.done():
                    continue
                if cancelled:  # the loop is shutting down: so are the callers
                    future.cancel()
                else:
                    future.set_exception(exc)
            if cancelled:
                raise
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def close(self) -> None:
        """Wait for the batches in flight, so that a closing store answers every caller."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
