"""Real servers for end-to-end tests: the broker under uvicorn in its own process, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.redis_servers import running_redis, running_redis_cluster


@contextmanager
def uvicorn_thread(app: Any, port: int) -> Iterator[None]:
    """Serve an ASGI app (a test's own small server) under uvicorn in a thread on 127.0.0.1:`port`, until the end."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BrokerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_broker(
    store_url: str,
    log_dir: Path,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    timeout: float = 30.0,
    extra_args: Sequence[str] = (),
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
    port: int | None = None,
) -> BrokerProcess:
    """`agora serve` on `port`, else a free one; ready once it answers (a secured one answers 401 without a
    credential, and over `scheme` https the certificate is checked against `verify`)."""
    port = port or free_port()
    log_path = log_dir / f"broker-{port}.log"
    env = {**os.environ, **(extra_env or {})}
    cmd = [
        sys.executable,
        "-m",
        "broker.cli",
        "serve",
        "--port",
        str(port),
        "--store",
        store_url,
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        *extra_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    broker = BrokerProcess(f"{scheme}://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited with {process.returncode}:\n{broker.log()}")
        try:
            response = httpx.get(broker.url + "/ngsi-ld/v1/info/sourceIdentity", timeout=1, verify=verify)
            if response.status_code in (200, 401):
                return broker
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    broker.stop()
    raise RuntimeError(f"broker did not answer within {timeout} s:\n{broker.log()}")


@contextmanager
def running_broker(store_url: str, log_dir: Path, **kwargs: object) -> Iterator[BrokerProcess]:
    broker = start_broker(store_url, log_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield broker
    finally:
        broker.stop()


def store_url_for(backend: str, tmp: Path, stack: ExitStack) -> str:
    """A fresh store of one backend by name (sqlite, memory, redis, redis-cluster) under `tmp`; the servers it needs
    are started in `stack` and stop with it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'agora.db'}"
    if backend == "memory":
        return "memory://"
    if backend == "redis":
        return stack.enter_context(running_redis(tmp / "redis")).url
    if backend == "redis-cluster":
        return stack.enter_context(running_redis_cluster(tmp / "cluster")).url
    raise ValueError(f"unknown backend {backend!r}")
