"""Real Redis for tests: a redis-server, or a 3-master Redis Cluster, on free loopback ports in a temp dir, started
from the installed binaries (never the system Redis on 6379). Fails, never skips, when redis-server is missing."""

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

import pytest
import redis

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")


def _binary(path: Path) -> str:
    found = str(path) if path.exists() else shutil.which(path.name)
    if found is None:
        pytest.fail(f"{path} is missing: the Redis store tests need it; `apt-get install redis-server redis-tools`")
    return found


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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            _binary(REDIS_SERVER),
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--logfile", str(self.log_path), "--daemonize", "no", *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with redis.Redis(port=self.port, socket_timeout=1) as client:
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
        with redis.Redis(port=self.port) as client:
            client.flushall()


@contextmanager
def running_redis(directory: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    """A redis-server on a free port; with `appendonly`, every write is fsynced to the AOF before the reply."""
    args = ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    server = RedisServer(free_port_pair(), directory, args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RedisClusterServers:
    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def flush(self) -> None:
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                client.flushall()


@contextmanager
def running_redis_cluster(directory: Path, masters: int = 3, timeout: float = 30.0) -> Iterator[RedisClusterServers]:
    """`masters` cluster-enabled redis-servers joined by `redis-cli --cluster create` (no replicas)."""
    nodes = []
    try:
        for n in range(masters):
            node = RedisServer(
                free_port_pair(),
                directory / f"node{n}",
                ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no"],
            )
            node.start()
            nodes.append(node)
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        create = subprocess.run(
            [_binary(REDIS_CLI), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=timeout,
        )
        if create.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed:\n{create.stdout.decode()}\n{create.stderr.decode()}")
        _wait_for_cluster(nodes, timeout)
        yield RedisClusterServers(nodes)
    finally:
        for node in nodes:
            node.stop()


def _wait_for_cluster(nodes: list[RedisServer], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for node in nodes:
            with redis.Redis(port=node.port) as client:
                info = client.cluster("info")
                states.append(
                    info.get("cluster_state") == "ok" if isinstance(info, dict) else b"cluster_state:ok" in info
                )
        if all(states):
            return
        time.sleep(0.1)
    pytest.fail(f"the Redis Cluster on {[n.port for n in nodes]} did not become ok within {timeout} s")
