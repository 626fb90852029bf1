"""A broker whose Redis is down answers 503 Service Unavailable with Retry-After and a problem+json body, not 500
(decision record 0047), changes nothing, keeps its notifier alive with one warning, and serves again, with nothing
acknowledged lost, once Redis is back on its AOF.

Real servers only: a redis-server with appendonly (fsync always) and an ACL user with a password, `agora serve`
over it, a local HTTP receiver of notifications. Redis is killed (connection refused); every command retries for
about 4 s (RECONNECT_ATTEMPTS in broker/store/redis_client.py) before the 503, so the requests of the outage run at
once.
Over a 3-master Redis Cluster with one master killed, what lives on that master is 503, the rest is served.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import uid
from tests.support.receiver import Receiver, running_receiver
from tests.support.redis_servers import RedisServer, free_port_pair, running_redis_cluster
from tests.support.servers import start_broker

BASE = "/ngsi-ld/v1"
PASSWORD = "s3cret-Pw-0047"
OUTAGE = 8.0  # seconds Redis stays down
FAST = {"AGORA_NOTIFY_POLL_INTERVAL": "0.02", "AGORA_NOTIFY_BACKOFF": "0.05", "AGORA_NOTIFY_ATTEMPTS": "2"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as recv:
        yield recv


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server whose every write is fsynced to its AOF before the reply, with a user `agora` whose password
    the broker's store URL carries (the default user stays open for the fixture's own readiness check)."""
    acl = ["--user", "agora", "on", f">{PASSWORD}", "~*", "&*", "+@all"]
    server = RedisServer(free_port_pair(), tmp_path / "redis", ["--appendonly", "yes", "--appendfsync", "always", *acl])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def assert_store_unavailable(r: httpx.Response) -> None:
    """503 with Retry-After and the ProblemDetails of an HTTP error of the binding (clause 6.3.2), naming the
    store and nothing of its URL."""
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["type"] == "about:blank" and body["title"] == "Service Unavailable" and body["status"] == 503
    assert "redis store is unavailable" in body["detail"], body
    assert PASSWORD not in r.text and PASSWORD not in str(r.headers)
    assert "127.0.0.1" not in body["detail"]  # where the store lives is the operator's business, not the client's


def test_requests_while_redis_is_down_get_503_and_the_broker_resumes_with_nothing_lost(
    redis_server: RedisServer, receiver: Receiver, tmp_path: Path
) -> None:
    url = f"redis://agora:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    kind = f"Meter{uid('x')[-6:]}"
    broker = start_broker(url, tmp_path, extra_env=FAST)
    try:
        with httpx.Client(base_url=broker.url + BASE, timeout=20) as http:
            ids = [uid(kind) for _ in range(20)]
            for n, eid in enumerate(ids):
                assert http.post("/entities", json={"id": eid, "type": kind, "n": n}).status_code == 201
            sub = {
                "type": "Subscription",
                "entities": [{"type": kind}],
                "notification": {"endpoint": {"uri": receiver.url + "/notify"}},
            }
            created = http.post("/subscriptions", json=sub)
            assert created.status_code == 201, created.text
            assert http.patch(f"/entities/{ids[0]}/attrs", json={"n": 100}).status_code == 204
            assert receiver.wait_until(None, lambda got: len(got) >= 1), "the notifier did not work before the outage"

            redis_server.kill()  # connection refused from now on
            killed = time.monotonic()
            newcomer = uid(kind)
            calls: dict[str, Callable[[], httpx.Response]] = {
                "GET entity": lambda: http.get(f"/entities/{ids[1]}"),
                "GET entities": lambda: http.get("/entities", params={"type": kind}),
                "PATCH": lambda: http.patch(f"/entities/{ids[1]}/attrs", json={"n": -1}),
                "POST": lambda: http.post("/entities", json={"id": newcomer, "type": kind, "n": -1}),
                "GET subscriptions": lambda: http.get("/subscriptions"),
            }
            started = time.monotonic()
            with ThreadPoolExecutor(len(calls)) as pool:
                answers = dict(zip(calls, pool.map(lambda call: call(), calls.values()), strict=True))
            assert time.monotonic() - started < 15
            for name, answer in answers.items():
                try:
                    assert_store_unavailable(answer)
                except AssertionError as exc:
                    raise AssertionError(f"{name}: {exc}\n{broker.log()[-3000:]}") from exc

            # Down for longer than the notifier's lease (5 s) and several retries of every background task, which
            # must log their outage once, not at every retry.
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - killed)))
            redis_server.start()  # same port and directory: it loads its AOF
            back = http.get(f"/entities/{ids[1]}")
            assert back.status_code == 200, back.text
            assert back.json()["n"]["value"] == 1  # the PATCH answered 503 changed nothing
            assert http.get(f"/entities/{newcomer}").status_code == 404  # nor did the POST
            listed = http.get("/entities", params={"type": kind, "limit": 100})
            assert listed.status_code == 200
            values = {e["id"]: e["n"]["value"] for e in listed.json()}
            assert values == {eid: (100 if eid == ids[0] else n) for n, eid in enumerate(ids)}
            subs = http.get("/subscriptions")
            assert subs.status_code == 200 and created.headers["location"].rsplit("/", 1)[-1] in subs.text

            assert http.patch(f"/entities/{ids[2]}/attrs", json={"n": 200}).status_code == 204
            got = receiver.wait_until(None, lambda got: any(e["id"] == ids[2] for e in got), timeout=15)
            assert any(e["id"] == ids[2] and e["n"]["value"] == 200 for e in got), "the notifier did not resume"
        log = wait_for_log(broker.log, ": notifier resumed: the store is back")
        assert len(re.findall(r": notifier paused: the store is unavailable", log)) == 1, log
        assert len(re.findall(r": notifier resumed: the store is back", log)) == 1, log
        assert "Traceback" not in log, log
        assert PASSWORD not in log
    finally:
        broker.stop()


def test_a_hung_redis_gives_503_after_the_store_timeout_and_the_broker_resumes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis stopped (SIGSTOP: it holds its connections and answers nothing, as in a partition): a request waits
    `timeout` seconds for it, then answers 503, not forever (decision record 0084); once it runs again, so does the
    broker. A write answered 503 here may still be applied when Redis resumes: the client cannot know, as with any
    timeout, and retries; a retried create answers 409 then."""
    url = f"redis://agora:{PASSWORD}@127.0.0.1:{redis_server.port}/0?timeout=0.5"
    broker = start_broker(url, tmp_path, extra_env=FAST)
    assert redis_server.process is not None
    try:
        with httpx.Client(base_url=broker.url + BASE, timeout=30) as http:
            eid = uid("Gauge")
            assert http.post("/entities", json={"id": eid, "type": "Gauge", "n": 1}).status_code == 201
            redis_server.process.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                with ThreadPoolExecutor(3) as pool:
                    answers = list(pool.map(lambda _: http.get(f"/entities/{eid}"), range(3)))
                waited = time.monotonic() - started
            finally:
                redis_server.process.send_signal(signal.SIGCONT)
            for answer in answers:
                assert_store_unavailable(answer)
            assert 0.5 <= waited < 10, waited  # the timeout, not forever and not many retries of it
            deadline = time.monotonic() + 10
            while (back := http.get(f"/entities/{eid}")).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert back.status_code == 200 and back.json()["n"]["value"] == 1, back.text
        assert "Traceback" not in broker.log()
    finally:
        broker.stop()


def wait_for_log(read: Callable[[], str], text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    log = read()
    while text not in log and time.monotonic() < deadline:
        time.sleep(0.1)
        log = read()
    return log


def test_over_a_cluster_with_a_master_down_its_entities_are_503_and_the_others_served(tmp_path: Path) -> None:
    with running_redis_cluster(tmp_path / "cluster") as cluster:
        broker = start_broker(cluster.url, tmp_path, extra_env=FAST)
        try:
            with httpx.Client(base_url=broker.url + BASE, timeout=20) as http:
                kind = f"Valve{uid('x')[-6:]}"
                ids = [uid(kind) for _ in range(30)]  # over 16 shards: some on every master
                for eid in ids:
                    assert http.post("/entities", json={"id": eid, "type": kind, "n": 1}).status_code == 201
                cluster.nodes[0].kill()
                with ThreadPoolExecutor(10) as pool:
                    answers = list(pool.map(lambda eid: http.get(f"/entities/{eid}"), ids))
                statuses = [r.status_code for r in answers]
                assert set(statuses) == {200, 503}, statuses
                for r in answers:
                    if r.status_code == 503:
                        assert r.headers["retry-after"] == "5" and r.json()["type"] == "about:blank", r.text
                    else:
                        assert r.json()["n"]["value"] == 1
                assert_answers_503_or_ok(http.get("/entities", params={"type": kind}))
                assert_answers_503_or_ok(http.patch(f"/entities/{ids[0]}/attrs", json={"n": 2}))
            log = broker.log()
            assert "Traceback" not in log, log
            assert " 500" not in log and "-> 500" not in log, log
        finally:
            broker.stop()


def assert_answers_503_or_ok(r: httpx.Response) -> None:
    """A request that may or may not need the dead master: served, or 503 as above, never a 500."""
    assert r.status_code in (200, 204, 503), r.text
    if r.status_code == 503:
        assert r.headers["retry-after"] == "5" and r.json()["title"] == "Service Unavailable"
