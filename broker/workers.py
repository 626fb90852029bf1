"""`agora serve --workers N` on Linux: N worker processes, each listening on its own SO_REUSEPORT socket.

uvicorn's own `workers=N` shares one listening socket between its workers; when connections arrive in a burst, the
worker whose event loop wakes first accepts all of them, and a few long-lived keep-alive connections can leave the
other workers idle (decision record 0045). Here every worker binds host:port itself with SO_REUSEPORT, so the
kernel spreads new connections over the workers' sockets by address hash (decision record 0046).

The supervisor (this process) starts the workers as `python -m broker.workers` subprocesses, logs their pids,
forwards SIGINT/SIGTERM to them as SIGTERM and waits while they shut down gracefully (the lifespan shutdown closes
the store; a second signal SIGKILLs them), and starts a new worker when one dies unexpectedly, with a growing pause
when workers fail before they are ready. It exits non-zero when a worker fails at start-up `max_start_failures` times
in a row, when a worker cannot listen at all, or when a worker did not stop cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType

import uvicorn
from uvicorn.server import HANDLED_SIGNALS

from broker.observe.metrics import worker_exited

log = logging.getLogger("agora.workers")

#: A worker's exit status when it cannot bind host:port: retrying would fail the same way, so the supervisor stops.
EXIT_CANNOT_LISTEN = 78  # EX_CONFIG of sysexits.h
#: uvicorn's default listen backlog.
BACKLOG = 2048
#: A worker's exit status when it stopped without its lifespan shutdown.
EXIT_UNCLEAN = 1
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class CannotListen(Exception):
    """host:port cannot be listened on by the workers; the message says why, for the operator."""


def reuseport_unavailable() -> str | None:
    """Why the SO_REUSEPORT workers cannot be used here, or None when they can."""
    if not sys.platform.startswith("linux"):
        # BSD and macOS have SO_REUSEPORT, but only Linux spreads the connections over the sockets.
        return f"SO_REUSEPORT spreads connections over sockets only on Linux (this is {sys.platform})"
    if not hasattr(socket, "SO_REUSEPORT"):
        return "this Python has no socket.SO_REUSEPORT"
    return None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn's own bind_socket decides


def check_port(host: str, port: int, workers: int) -> None:
    """Refuse what would make the workers fail or hang: port 0 (each worker would get its own random port) and a
    port another process listens on (probed without SO_REUSEPORT, so that a port held by any listener, even one
    that set SO_REUSEPORT, counts as taken)."""
    if port == 0:
        raise CannotListen(
            f"--port 0 cannot be used with --workers {workers}: each worker binds the port itself, so each would "
            "get a different one; give a port number"
        )
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to listen on
        probe.bind((host, port))
    except OSError as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    finally:
        probe.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """One worker's socket: SO_REUSEPORT joins the kernel's group of sockets on host:port that it balances over."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


# -- the supervisor ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    host: str
    port: int
    log_level: str


@dataclass
class _Slot:
    """One of the N places for a worker; the process in it changes when a worker is replaced."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    ready_fd: int | None = None  # read end of the pipe on which the worker reports that it serves
    ready: bool = False
    started_at: float = 0.0
    start_failures: int = 0  # consecutive workers of this slot that died before they were ready
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        spec: WorkerSpec,
        count: int,
        *,
        max_start_failures: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self.spec, self.count = spec, count
        self.max_start_failures, self.backoff, self.max_backoff = max_start_failures, backoff, max_backoff
        self.slots = [_Slot(n) for n in range(1, count + 1)]
        self.selector = selectors.DefaultSelector()
        self.stop_signals = 0  # SIGINT/SIGTERM received
        self.failure: str | None = None

    def run(self) -> int:
        """Start the workers, keep N running until SIGINT or SIGTERM (or a fatal failure), stop them; the exit code."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
        try:
            log.info("starting %d workers on %s:%d (SO_REUSEPORT)", self.count, self.spec.host, self.spec.port)
            for slot in self.slots:
                self._spawn(slot)
            while not self.stop_signals and self.failure is None:
                self._wait(wake_r, self._next_timeout())
                self._reap()
                self._restart_due()
            self._stop_all(wake_r)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            self.selector.close()
            os.close(wake_r)
            os.close(wake_w)
        if self.failure is not None:
            log.error("%s", self.failure)
            return 1
        return 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGCHLD:  # SIGCHLD only needs to wake the loop, which the wakeup fd does
            self.stop_signals += 1

    def _spawn(self, slot: _Slot) -> None:
        ready_r, ready_w = os.pipe()
        cmd = [
            sys.executable,
            "-m",
            "broker.workers",
            "--host",
            self.spec.host,
            "--port",
            str(self.spec.port),
            "--log-level",
            self.spec.log_level,
            "--ready-fd",
            str(ready_w),
            "--parent",
            str(os.getpid()),
        ]
        try:
            process = subprocess.Popen(cmd, pass_fds=(ready_w,))
        except OSError:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        slot.process, slot.ready_fd, slot.ready = process, ready_r, False
        slot.started_at, slot.restart_at = time.monotonic(), None
        self.selector.register(ready_r, selectors.EVENT_READ, slot)
        log.info("worker %d started: pid %d", slot.number, process.pid)

    def _next_timeout(self) -> float:
        """Until the next restart is due; at most 1 s, in case a SIGCHLD was missed."""
        now = time.monotonic()
        due = [slot.restart_at - now for slot in self.slots if slot.restart_at is not None]
        return max(0.0, min([1.0, *due]))

    def _wait(self, wake_r: int, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.fd == wake_r:
                while True:  # drain: the bytes are signal numbers, the handlers already ran
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
            else:
                self._on_ready_fd(key.data)

    def _on_ready_fd(self, slot: _Slot) -> None:
        assert slot.ready_fd is not None and slot.process is not None
        data = os.read(slot.ready_fd, 16)
        if data and not slot.ready:
            slot.ready, slot.start_failures = True, 0
            log.info("worker %d (pid %d) is serving", slot.number, slot.process.pid)
        if not data:  # the worker closed it or exited: nothing more will come
            self._close_ready_fd(slot)

    def _close_ready_fd(self, slot: _Slot) -> None:
        if slot.ready_fd is not None:
            self.selector.unregister(slot.ready_fd)
            os.close(slot.ready_fd)
            slot.ready_fd = None

    def _reap(self) -> None:
        for slot in self.slots:
            if slot.process is None or slot.process.poll() is None:
                continue
            if slot.ready_fd is not None:  # a "ready" byte may still be in the pipe
                self._on_ready_fd(slot)
                self._close_ready_fd(slot)
            worker_exited(slot.process.pid)
            self._on_unexpected_exit(slot, slot.process)
            slot.process = None

    def _on_unexpected_exit(self, slot: _Slot, process: subprocess.Popen[bytes]) -> None:
        status = _describe(process.returncode)
        if process.returncode == EXIT_CANNOT_LISTEN:
            self.failure = f"worker {slot.number} (pid {process.pid}) cannot listen on {self._address()}; stopping"
            return
        if slot.ready:
            lived = time.monotonic() - slot.started_at
            delay = 0.0 if lived >= 10 else self.backoff  # a worker that crashes soon after start does not spin
            log.warning("worker %d (pid %d) %s; starting a new one", slot.number, process.pid, status)
        else:
            slot.start_failures += 1
            if slot.start_failures >= self.max_start_failures:
                self.failure = (
                    f"worker {slot.number} failed at start-up {slot.start_failures} times in a row "
                    f"(last: pid {process.pid} {status}); stopping"
                )
                return
            delay = min(self.backoff * 2 ** (slot.start_failures - 1), self.max_backoff)
            log.warning(
                "worker %d (pid %d) %s before it was serving; starting a new one in %.1f s",
                slot.number,
                process.pid,
                status,
                delay,
            )
        slot.restart_at = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None and slot.restart_at is not None and slot.restart_at <= now and not self.failure:
                self._spawn(slot)

    def _stop_all(self, wake_r: int) -> None:
        """SIGTERM to every worker (uvicorn's graceful shutdown, then the lifespan shutdown), and wait as long as it
        takes, as uvicorn does. A second SIGINT/SIGTERM to the supervisor SIGKILLs the workers still running: a worker
        stuck in its lifespan shutdown would not heed uvicorn's own force exit."""
        forwarded = 0
        while running := [slot.process for slot in self.slots if slot.process and slot.process.poll() is None]:
            wanted = max(1, self.stop_signals)
            if forwarded < wanted:
                sig = signal.SIGTERM if wanted == 1 else signal.SIGKILL
                level = logging.INFO if wanted == 1 else logging.WARNING
                log.log(level, "stopping %d worker(s) with %s", len(running), sig.name)
                for process in running:
                    process.send_signal(sig)
                forwarded = wanted
            self._wait(wake_r, 0.2)
        unclean = 0
        for slot in self.slots:
            if slot.ready_fd is not None:  # the worker has exited: its "ready" byte, if any, is in the pipe
                self._on_ready_fd(slot)
                self._close_ready_fd(slot)
            if slot.process is None:
                continue
            pid, status = slot.process.pid, _describe(slot.process.returncode)
            if slot.process.returncode == 0:
                log.info("worker %d (pid %d) stopped", slot.number, pid)
            elif not slot.ready:  # stopped while it started: it had nothing to shut down
                log.info("worker %d (pid %d) %s before it was serving", slot.number, pid, status)
            else:
                log.warning("worker %d (pid %d) did not stop cleanly: %s", slot.number, pid, status)
                unclean += 1
        if unclean and self.failure is None:
            self.failure = f"{unclean} worker(s) stopped without their graceful shutdown"

    def _address(self) -> str:
        return f"{self.spec.host}:{self.spec.port}"


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def supervise(host: str, port: int, log_level: str, workers: int) -> int:
    """What `agora serve --workers N` runs on Linux; raises CannotListen before starting anything."""
    check_port(host, port, workers)
    return Supervisor(WorkerSpec(host, port, log_level), workers).run()


# -- a worker ----------------------------------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this worker when the supervisor dies (itself killed, so that nobody forwards a
    signal), so that no worker is left orphaned; SIGKILL because a worker stuck in its shutdown ignores a SIGTERM.
    The stores lose nothing acknowledged to a SIGKILL (ARCHITECTURE decision 6)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


class _WorkerServer(uvicorn.Server):
    """Reports on `ready_fd` once the lifespan has started and the socket is served."""

    def __init__(self, config: uvicorn.Config, ready_fd: int) -> None:
        super().__init__(config)
        self.ready_fd = ready_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            try:
                os.write(self.ready_fd, b"1")
            except OSError as exc:
                if exc.errno != errno.EPIPE:  # EPIPE: the supervisor is gone, and PDEATHSIG follows
                    raise
            os.close(self.ready_fd)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, without raising the signal again once the graceful shutdown is done: the worker then exits
        with status 0, which tells the supervisor that its lifespan shutdown ran."""
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def worker_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.workers", description="one worker of `agora serve`")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with_parent(args.parent)
    from broker.http.app import configure_logging

    configure_logging(args.log_level)
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return EXIT_CANNOT_LISTEN
    config = uvicorn.Config(
        "broker.http.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        # `agora serve` put its settings in the environment (Settings.environment).
        ssl_certfile=os.environ.get("AGORA_TLS_CERT") or None,
        ssl_keyfile=os.environ.get("AGORA_TLS_KEY") or None,
        server_header=False,  # no "Server: uvicorn": the software and its version are nobody's business (0206)
    )
    server = _WorkerServer(config, args.ready_fd)
    server.run(sockets=[sock])
    # A second SIGINT (uvicorn's force exit) skips the lifespan shutdown: not a clean stop.
    return 0 if server.started and not server.force_exit else EXIT_UNCLEAN


if __name__ == "__main__":
    sys.exit(worker_main())
