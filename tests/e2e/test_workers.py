"""`agora serve --workers 2` (broker/workers.py, decision record 0046): each worker listens on its own SO_REUSEPORT
socket, so a burst of keep-alive connections is spread over both processes by the kernel; they share the store;
SIGTERM stops every worker gracefully; a worker killed with SIGKILL is replaced while the other keeps answering; a
SIGKILLed supervisor takes its workers along; a port that cannot be used is refused at once, and workers that keep
failing at start-up stop `agora serve`. Workers and their connections are found in /proc, as `ss -tnp` would."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from tests.e2e.helpers import uid
from tests.support.servers import BrokerProcess, free_port, running_broker, store_url_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT workers are Linux only")

BASE = "/ngsi-ld/v1"
CONNECTIONS = 32
ESTABLISHED, LISTEN = "01", "0A"  # TCP states as /proc/net/tcp writes them


# -- what /proc says -------------------------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is not: it has exited and only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_sockets(port: int, state: str, peers: set[int] | None = None) -> set[int]:
    """Inodes of the TCP sockets whose local port is `port`, in `state` (and connected from one of `peers`)."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if local == port and fields[3] == state and (peers is None or remote in peers):
                inodes.add(int(fields[9]))
    return inodes


def port_of(broker: BrokerProcess) -> int:
    return int(broker.url.rsplit(":", 1)[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def serving_workers(broker: BrokerProcess) -> dict[int, set[int]]:
    """Worker pid -> its socket inodes, once exactly two children of `agora serve` each listen on the port."""
    port = port_of(broker)
    found: dict[int, set[int]] = {}

    def two_listening() -> bool:
        found.clear()
        listening = tcp_sockets(port, LISTEN)
        found.update({pid: socket_inodes(pid) for pid in children(broker.process.pid) if alive(pid)})
        return len(found) == 2 and all(inodes & listening for inodes in found.values())

    wait_for(two_listening, "two workers listening")
    return found


# -- a burst of keep-alive connections -------------------------------------------------------------------------


def request(conn: http.client.HTTPConnection, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


@pytest.fixture
def connections() -> Iterator[Callable[[BrokerProcess], list[http.client.HTTPConnection]]]:
    with ExitStack() as stack:

        def open_all(broker: BrokerProcess) -> list[http.client.HTTPConnection]:
            conns = [
                stack.enter_context(closing(http.client.HTTPConnection("127.0.0.1", port_of(broker), timeout=10)))
                for _ in range(CONNECTIONS)
            ]
            for conn in conns:  # all established before any request, as wrk does
                conn.connect()
            return conns

        yield open_all


def connections_per_worker(
    broker: BrokerProcess, workers: dict[int, set[int]], conns: list[http.client.HTTPConnection]
) -> dict[int, int]:
    """How many of `conns` each worker holds: the server ends of exactly these connections (by client port)."""
    client_ports = {conn.sock.getsockname()[1] for conn in conns}
    established = tcp_sockets(port_of(broker), ESTABLISHED, client_ports)
    return {pid: len(inodes & established) for pid, inodes in workers.items()}


def assert_spread_and_shared(broker: BrokerProcess, conns: list[http.client.HTTPConnection]) -> dict[int, int]:
    """A write through the first connection is read through every one; both workers hold some of them."""
    eid = uid("Tram")
    assert request(conns[0], "POST", f"{BASE}/entities", {"id": eid, "type": "Tram", "n": 1})[0] == 201
    for conn in conns:
        status, body = request(conn, "GET", f"{BASE}/entities/{eid}")
        assert status == 200, body
        assert json.loads(body)["id"] == eid
    spread = connections_per_worker(broker, serving_workers(broker), conns)
    assert sum(spread.values()) == CONNECTIONS, spread
    # 32 connections hashed over 2 sockets: one worker gets none with probability 2**-31.
    assert all(count >= 1 for count in spread.values()), spread
    return spread


# -- the tests -------------------------------------------------------------------------------------------------


def test_over_redis_a_killed_worker_is_replaced_and_a_killed_supervisor_takes_the_workers_along(
    tmp_path: Path, connections: Callable[[BrokerProcess], list[http.client.HTTPConnection]]
) -> None:
    with ExitStack() as stack:
        broker = stack.enter_context(running_broker(store_url_for("redis", tmp_path, stack), tmp_path, workers=2))
        serving_workers(broker)  # start_broker returns once one of them answers
        assert_spread_and_shared(broker, connections(broker))

        workers = serving_workers(broker)
        victim, survivor = sorted(workers)
        victims_listener = workers[victim] & tcp_sockets(port_of(broker), LISTEN)
        eid = uid("Ferry")
        with closing(http.client.HTTPConnection("127.0.0.1", port_of(broker), timeout=10)) as conn:
            assert request(conn, "POST", f"{BASE}/entities", {"id": eid, "type": "Ferry"})[0] == 201
        os.kill(victim, signal.SIGKILL)
        # The kernel closes the socket of a killed process a little after the process is gone (a connection it took
        # meanwhile is reset: the price of one queue per worker); from then on the survivor takes every connection.
        wait_for(lambda: not victims_listener & tcp_sockets(port_of(broker), LISTEN), "the victim's socket to close")
        answered = 0
        deadline = time.monotonic() + 15
        while answered < 10 or victim in children(broker.process.pid) or len(children(broker.process.pid)) < 2:
            assert time.monotonic() < deadline, broker.log()
            with closing(http.client.HTTPConnection("127.0.0.1", port_of(broker), timeout=10)) as fresh:
                assert request(fresh, "GET", f"{BASE}/entities/{eid}")[0] == 200  # a new connection each time
            answered += 1
        workers = serving_workers(broker)
        assert survivor in workers and victim not in workers
        assert "was killed by SIGKILL; starting a new one" in broker.log()
        assert_spread_and_shared(broker, connections(broker))  # the new worker takes its share

        broker.kill()  # SIGKILL: the supervisor forwards nothing; the kernel's parent-death signal does
        wait_for(lambda: not [pid for pid in workers if alive(pid)], "the orphaned workers to exit", timeout=10)


def test_over_sqlite_connections_are_spread_and_sigterm_stops_every_worker_gracefully(
    tmp_path: Path, connections: Callable[[BrokerProcess], list[http.client.HTTPConnection]]
) -> None:
    with running_broker(f"sqlite:///{tmp_path / 'agora.db'}", tmp_path, workers=2) as broker:
        workers = serving_workers(broker)
        assert_spread_and_shared(broker, connections(broker))  # the 32 connections stay open, idle
        # A second `agora serve --workers 2` on the same port would join the SO_REUSEPORT group: it is refused.
        other = serve_once("--port", str(port_of(broker)), "--store", f"sqlite:///{tmp_path / 'other.db'}")
        assert other.returncode == 1 and "Address already in use" in other.stderr, other.stderr
        broker.process.send_signal(signal.SIGTERM)
        # 0: every worker exited 0 itself, after uvicorn's graceful shutdown and the lifespan's (the store closed),
        # rather than being killed by the signal.
        assert broker.process.wait(timeout=15) == 0, broker.log()
    assert not [pid for pid in workers if alive(pid)], "no worker outlives `agora serve`"
    assert "did not stop cleanly" not in broker.log()


def serve_once(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "broker.cli", "serve", "--workers", "2", "--log-level", "warning", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


def test_a_port_in_use_is_refused_at_once(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:  # a listener without SO_REUSEPORT
        port = holder.getsockname()[1]
        done = serve_once("--port", str(port), "--store", f"sqlite:///{tmp_path / 'agora.db'}")
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr


def test_port_0_and_workers_0_are_refused(tmp_path: Path) -> None:
    done = serve_once("--port", "0", "--store", f"sqlite:///{tmp_path / 'agora.db'}")
    assert done.returncode == 1
    assert "--port 0 cannot be used with --workers 2" in done.stderr
    done = serve_once("--workers", "0", "--store", f"sqlite:///{tmp_path / 'agora.db'}")  # the last --workers wins
    assert done.returncode == 2
    assert "--workers must be 1 or more, not 0" in done.stderr


def test_workers_that_keep_failing_at_start_up_stop_agora_serve() -> None:
    done = serve_once("--port", str(free_port()), "--store", "bogus://x")  # each worker's lifespan startup fails
    assert done.returncode == 1, done.stderr
    assert "exited with status 3 before it was serving; starting a new one in 0.5 s" in done.stderr
    assert "failed at start-up 3 times in a row" in done.stderr
