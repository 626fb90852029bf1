"""A real MQTT broker for tests: mosquitto on a free loopback port, anonymous, with a config file in a temp dir."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import free_port

MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass
class Mosquitto:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def uri(self, topic: str, scheme: str = "mqtt") -> str:
        return f"{scheme}://{self.host}:{self.port}/{topic}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_mosquitto(
    directory: Path, *, port: int | None = None, timeout: float = 10.0, extra_config: str = ""
) -> Iterator[Mosquitto]:
    """Start mosquitto (on `port`, else a free one; `extra_config` lines added to its configuration), wait until
    it accepts connections, stop it afterwards. Fails (never skips) when mosquitto is not installed."""
    if not MOSQUITTO.exists():
        pytest.fail(f"{MOSQUITTO} is missing: the MQTT notification tests need it; `apt-get install mosquitto`")
    port = port or free_port()
    config = directory / f"mosquitto-{port}.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n" + extra_config)
    log_path = directory / f"mosquitto-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(MOSQUITTO), "-c", str(config), "-v"], stdout=log, stderr=subprocess.STDOUT)
    server = Mosquitto("127.0.0.1", port, process, log_path)
    try:
        _wait_until_listening(server, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_listening(server: Mosquitto, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"mosquitto exited with {server.process.returncode}:\n{server.log()}")
        try:
            with socket.create_connection((server.host, server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen on {server.port} within {timeout} s:\n{server.log()}")
