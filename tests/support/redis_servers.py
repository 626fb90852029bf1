"""Real Redis for tests: a redis-server or a 3-master Redis Cluster, plain or TLS only (with a certificate authority
made at test time), on free loopback ports in a temp dir, started from the installed binaries (never the system
Redis on 6379). Fails, never skips, when redis-server (or, for TLS, the openssl command) is missing."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
OPENSSL = Path("/usr/bin/openssl")


def _binary(path: Path, package: str = "redis-server redis-tools") -> str:
    found = str(path) if path.exists() else shutil.which(path.name)
    if found is None:
        pytest.fail(f"{path} is missing: the Redis store tests need it; `apt-get install {package}`")
    return found


@dataclass(frozen=True)
class TlsFiles:
    """A certificate authority made for one test session, and a server and a client certificate it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_kwargs(self) -> dict[str, Any]:
        """For redis-py: verify the server against the CA, present the client certificate."""
        return {
            "ssl": True,
            "ssl_ca_certs": str(self.ca),
            "ssl_certfile": str(self.client_cert),
            "ssl_keyfile": str(self.client_key),
        }


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA (EC P-256, valid two days) and certificates for 127.0.0.1/localhost, made with the openssl
    command (the `cryptography` package is not a dependency of Agora)."""
    openssl = _binary(OPENSSL, "openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.fail(f"openssl {' '.join(args)} failed:\n{done.stderr}")

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Agora test CA")
    (directory / "leaf.cnf").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    for name in ("server", "client"):
        run("req", "-new", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=agora-test-{name}")
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", "leaf.cnf",
        )  # fmt: skip
    return TlsFiles(*(directory / f for f in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")))


def free_port_pair() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 >= 65536:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@dataclass
class RedisServer:
    """One redis-server process; `restart` keeps its port and data directory (so AOF and RDB files)."""

    port: int
    directory: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None  # TLS only (no plain port), clients must show a certificate the CA signed

    @property
    def url(self) -> str:
        if self.tls is None:
            return f"redis://127.0.0.1:{self.port}/0"
        files = {"tls_ca": self.tls.ca, "tls_cert": self.tls.client_cert, "tls_key": self.tls.client_key}
        return f"rediss://127.0.0.1:{self.port}/0?{urlencode(files)}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous client of this server (over TLS when it has TLS)."""
        return redis.Redis(port=self.port, **(self.tls.client_kwargs() if self.tls else {}), **kwargs)

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = [
                "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.server_cert),
                "--tls-key-file", str(self.tls.server_key), "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "yes",
            ]  # fmt: skip
        cmd = [
            _binary(REDIS_SERVER),
            *ports, "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--logfile", str(self.log_path), "--daemonize", "no", *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with self.client(socket_timeout=1) as client:
                    if client.ping():
                        return
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                time.sleep(0.05)
        pytest.fail(f"redis-server did not answer on {self.port} within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: Redis gets no chance to write anything more, as in a crash or a power cut for the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()


@contextmanager
def running_redis(directory: Path, *, appendonly: bool = False, tls: bool = False) -> Iterator[RedisServer]:
    """A redis-server on a free port; with `appendonly`, every write is fsynced to the AOF before the reply; with
    `tls`, it speaks TLS only, with a certificate authority made for it (`server.tls`, `server.url` names them)."""
    args = ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    files = make_tls_files(directory / "tls") if tls else None
    server = RedisServer(free_port_pair(), directory, args, tls=files)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RedisClusterServers:
    nodes: list[RedisServer]
    tls: TlsFiles | None = None  # TLS only: client, cluster bus and replication (tls-cluster, tls-replication)

    @property
    def url(self) -> str:
        addresses = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        if self.tls is None:
            return f"redis+cluster://{addresses}"
        files = {"tls_ca": self.tls.ca, "tls_cert": self.tls.client_cert, "tls_key": self.tls.client_key}
        return f"rediss+cluster://{addresses}?{urlencode(files)}"

    def flush(self) -> None:
        for node in self.nodes:
            with node.client() as client:
                client.flushall()


@contextmanager
def running_redis_cluster(
    directory: Path, masters: int = 3, timeout: float = 30.0, *, tls: bool = False
) -> Iterator[RedisClusterServers]:
    """`masters` cluster-enabled redis-servers joined by `redis-cli --cluster create` (no replicas); with `tls`,
    each speaks TLS only (no plain port), on the cluster bus too, with one certificate authority made for them."""
    files = make_tls_files(directory / "tls") if tls else None
    cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no"]
    if files is not None:
        cluster_args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
    nodes = []
    try:
        for n in range(masters):
            node = RedisServer(free_port_pair(), directory / f"node{n}", list(cluster_args), tls=files)
            node.start()
            nodes.append(node)
        _create_cluster(nodes, files, timeout)
        _wait_for_cluster(nodes, timeout)
        yield RedisClusterServers(nodes, files)
    finally:
        for node in nodes:
            node.stop()


def _create_cluster(nodes: list[RedisServer], tls: TlsFiles | None, timeout: float) -> None:
    addresses = [f"127.0.0.1:{node.port}" for node in nodes]
    options = []
    if tls is not None:
        options = ["--tls", "--cacert", str(tls.ca), "--cert", str(tls.client_cert), "--key", str(tls.client_key)]
    create = subprocess.run(
        [_binary(REDIS_CLI), *options, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        timeout=timeout,
    )
    if create.returncode != 0:
        pytest.fail(f"redis-cli --cluster create failed:\n{create.stdout.decode()}\n{create.stderr.decode()}")


def _wait_for_cluster(nodes: list[RedisServer], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for node in nodes:
            with node.client() as client:
                info = client.cluster("info")
                states.append(
                    info.get("cluster_state") == "ok" if isinstance(info, dict) else b"cluster_state:ok" in info
                )
        if all(states):
            return
        time.sleep(0.1)
    pytest.fail(f"the Redis Cluster on {[n.port for n in nodes]} did not become ok within {timeout} s")


def with_option(url: str, option: str, value: str | None) -> str:
    """`url` with its query option `option` set to `value` (removed when None): the TLS files of a test's URL."""
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(option + "=")]
    return base + "?" + "&".join(kept + ([f"{option}={value}"] if value is not None else []))
