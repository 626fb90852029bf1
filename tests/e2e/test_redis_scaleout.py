"""Several `agora serve` processes over one real redis-server act as one broker (issue 6, decision record 0040):
what one writes the other reads, a subscription made on one fires once for a write on the other, concurrent
PATCHes from both lose nothing, a killed process loses no notification, a Redis restart with an fsynced AOF loses
no acknowledged write."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import link, uid
from tests.support.receiver import Receiver, running_receiver
from tests.support.redis_servers import RedisServer, running_redis, running_redis_cluster
from tests.support.servers import BrokerProcess, running_broker, start_broker

BASE = "/ngsi-ld/v1"
FAST = {
    "AGORA_NOTIFY_POLL_INTERVAL": "0.02",
    "AGORA_NOTIFY_BACKOFF": "0.05",
    "AGORA_NOTIFY_ATTEMPTS": "2",
    "AGORA_NOTIFY_TIMEOUT": "2.0",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as recv:
        yield recv


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis"), appendonly=True) as server:
        yield server


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[BrokerProcess]]:
    """Two broker processes over the one Redis; the first one started leads the notifier."""
    logs = tmp_path_factory.mktemp("brokers")
    with (
        running_broker(redis_server.url, logs, extra_env=FAST) as a,
        running_broker(redis_server.url, logs, extra_env=FAST) as b,
    ):
        yield [a, b]


def subscribe(url: str, receiver: Receiver, path: str, entity_type: str) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": entity_type}],
        "notification": {"endpoint": {"uri": receiver.url + path}},
    }
    r = httpx.post(f"{url}{BASE}/subscriptions", json=body)
    assert r.status_code == 201, r.text


def test_a_write_on_one_process_is_read_on_the_other(pair: list[BrokerProcess]) -> None:
    a, b = pair
    eid = uid("Vehicle")
    r = httpx.post(f"{a.url}{BASE}/entities", json={"id": eid, "type": "Vehicle", "speed": 1})
    assert r.status_code == 201, r.text
    got = httpx.get(f"{b.url}{BASE}/entities/{eid}")
    assert got.status_code == 200 and got.json()["speed"]["value"] == 1
    r = httpx.patch(f"{b.url}{BASE}/entities/{eid}/attrs", json={"speed": 2})
    assert r.status_code == 204, r.text
    assert httpx.get(f"{a.url}{BASE}/entities/{eid}").json()["speed"]["value"] == 2
    listed = httpx.get(f"{a.url}{BASE}/entities", params={"type": "Vehicle", "q": "speed==2"}).json()
    assert eid in [e["id"] for e in listed]


def test_a_subscription_made_on_one_fires_once_for_a_write_on_the_other(
    pair: list[BrokerProcess], receiver: Receiver
) -> None:
    a, b = pair
    kind, path = f"Car{uuid.uuid4().hex[:6]}", f"/once/{uuid.uuid4().hex[:6]}"
    subscribe(a.url, receiver, path, kind)
    eid = uid(kind)
    r = httpx.post(f"{b.url}{BASE}/entities", json={"id": eid, "type": kind, "speed": 5})
    assert r.status_code == 201, r.text
    got = receiver.wait_until(path, lambda found: len(found) >= 1)
    assert [e["id"] for e in got] == [eid]
    time.sleep(1.0)  # both processes had every chance to send a second one
    assert len(receiver.at(path)) == 1


def test_concurrent_patches_of_one_entity_from_both_lose_no_attribute(pair: list[BrokerProcess]) -> None:
    a, b = pair
    eid = uid("Vehicle")
    assert httpx.post(f"{a.url}{BASE}/entities", json={"id": eid, "type": "Vehicle"}).status_code == 201
    per_thread, threads = 25, 4
    failures: list[str] = []

    def patch(n: int) -> None:
        url = (a if n % 2 else b).url
        with httpx.Client(base_url=url, timeout=10) as http:
            for i in range(per_thread):
                r = http.patch(f"{BASE}/entities/{eid}/attrs", json={f"a{n}_{i}": i})
                if r.status_code != 204:
                    failures.append(r.text)

    workers = [threading.Thread(target=patch, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert failures == []
    entity = httpx.get(f"{a.url}{BASE}/entities/{eid}").json()
    expected = {f"a{n}_{i}" for n in range(threads) for i in range(per_thread)}
    assert expected <= set(entity), f"lost: {sorted(expected - set(entity))[:10]}"


@pytest.fixture(scope="module")
def sqlite_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[BrokerProcess]]:
    """Two broker processes on one SQLite file, as `agora serve --workers 2` runs them (decision record 0082)."""
    work = tmp_path_factory.mktemp("sqlite-pair")
    url = f"sqlite:///{work / 'shared.db'}"
    with running_broker(url, work, extra_env=FAST) as a, running_broker(url, work, extra_env=FAST) as b:
        yield [a, b]


@pytest.mark.parametrize("processes", ["pair", "sqlite_pair"])
def test_a_context_deleted_through_one_process_is_no_longer_served_from_the_others_cache(
    processes: str, request: pytest.FixtureRequest
) -> None:
    a, b = request.getfixturevalue(processes)
    r = httpx.post(f"{a.url}{BASE}/jsonldContexts", json={"@context": {"brand": "https://example.org/brand"}})
    assert r.status_code == 201, r.text
    context_id = r.headers["location"].rsplit("/", 1)[1]
    on_b = link(f"{b.url}{BASE}/jsonldContexts/{context_id}")  # b caches it under its own host name

    def create_on_b() -> httpx.Response:
        return httpx.post(f"{b.url}{BASE}/entities", json={"id": uid(), "type": "Vehicle", "brand": "x"}, headers=on_b)

    assert create_on_b().status_code == 201
    assert httpx.delete(f"{a.url}{BASE}/jsonldContexts/{context_id}").status_code == 204
    deadline = time.monotonic() + 5
    while (refused := create_on_b()).status_code == 201 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert refused.status_code == 504, refused.text  # LdContextNotAvailable: the hosted context is gone


def test_workers_over_redis_act_as_one_broker(redis_server: RedisServer, receiver: Receiver, tmp_path: Path) -> None:
    """`agora serve --workers 2`: the kernel spreads the connections over two processes; one notification each."""
    kind, path = f"Tram{uuid.uuid4().hex[:6]}", f"/workers/{uuid.uuid4().hex[:6]}"
    with running_broker(redis_server.url, tmp_path, workers=2, extra_env=FAST) as broker:
        subscribe(broker.url, receiver, path, kind)
        ids = [uid(kind) for _ in range(20)]
        for eid in ids:
            with httpx.Client(base_url=broker.url, timeout=10) as http:  # a new connection: either worker
                assert http.post(f"{BASE}/entities", json={"id": eid, "type": kind, "n": 1}).status_code == 201
                assert http.get(f"{BASE}/entities/{eid}").status_code == 200
        got = receiver.wait_until(path, lambda found: len(found) >= len(ids))
        time.sleep(1.0)
        assert sorted(e["id"] for e in receiver.at(path)) == sorted(ids), "each write notified exactly once"
        assert len(got) >= len(ids)


def test_two_processes_over_a_redis_cluster(receiver: Receiver, tmp_path: Path) -> None:
    """The same over a 3-master Redis Cluster: a batch spread over shards, read back and notified once each."""
    kind, path = f"Ferry{uuid.uuid4().hex[:6]}", f"/cluster/{uuid.uuid4().hex[:6]}"
    with (
        running_redis_cluster(tmp_path / "cluster") as cluster,
        running_broker(cluster.url, tmp_path, extra_env=FAST) as a,
        running_broker(cluster.url, tmp_path, extra_env=FAST) as b,
    ):
        subscribe(a.url, receiver, path, kind)
        batch = [{"id": uid(kind), "type": kind, "n": n} for n in range(20)]
        r = httpx.post(f"{b.url}{BASE}/entityOperations/upsert", json=batch)
        assert r.status_code in (201, 204), r.text
        listed = httpx.get(f"{a.url}{BASE}/entities", params={"type": kind, "limit": 100}).json()
        assert sorted(e["id"] for e in listed) == sorted(e["id"] for e in batch)
        receiver.wait_until(path, lambda found: len(found) >= len(batch))
        time.sleep(1.0)
        assert sorted(e["id"] for e in receiver.at(path)) == sorted(e["id"] for e in batch)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, so that which process leads the notifier is known."""
    with running_redis(tmp_path / "redis", appendonly=True) as server:
        yield server


def test_kill9_of_the_notifying_process_mid_burst_loses_no_notification(
    own_redis: RedisServer, receiver: Receiver, tmp_path: Path
) -> None:
    leader = start_broker(own_redis.url, tmp_path, extra_env=FAST)  # the first process takes the lead at start
    follower = start_broker(own_redis.url, tmp_path, extra_env=FAST)
    try:
        kind, path = f"Bus{uuid.uuid4().hex[:6]}", f"/burst/{uuid.uuid4().hex[:6]}"
        subscribe(follower.url, receiver, path, kind)
        eid = uid(kind)
        assert httpx.post(f"{follower.url}{BASE}/entities", json={"id": eid, "type": kind, "n": 0}).status_code == 201
        acknowledged = [0]
        with httpx.Client(timeout=10) as http:
            for n in range(1, 301):
                target = leader if leader.process.poll() is None else follower
                if n == 100:
                    leader.kill()  # the process that leads the notifier, in the middle of the burst
                    target = follower
                r = http.patch(f"{target.url}{BASE}/entities/{eid}/attrs", json={"n": n})
                if r.status_code == 204:
                    acknowledged.append(n)
        expected = set(acknowledged)
        got = receiver.wait_until(path, lambda found: expected <= {e["n"]["value"] for e in found}, timeout=60)
        missing = expected - {e["n"]["value"] for e in got}
        assert not missing, f"{len(missing)} notifications lost, e.g. {sorted(missing)[:10]}\n{follower.log()[-3000:]}"
        assert len(acknowledged) >= 290
        assert any(e["n"]["value"] < 100 for e in got)  # the leader was notifying before it was killed
    finally:
        leader.stop()
        follower.stop()


def test_a_redis_restart_with_fsynced_aof_loses_no_acknowledged_write(own_redis: RedisServer, tmp_path: Path) -> None:
    redis_server = own_redis
    broker = start_broker(redis_server.url, tmp_path, extra_env=FAST)
    acknowledged: list[str] = []
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=broker.url, timeout=5) as http:
            while not stop.is_set():
                eid = uid("Sensor")
                try:
                    r = http.post(f"{BASE}/entities", json={"id": eid, "type": "Sensor", "n": 1})
                    if r.status_code == 201:
                        acknowledged.append(eid)
                except httpx.TransportError:
                    time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(acknowledged) < 200 and writer.is_alive():
            time.sleep(0.01)
        redis_server.kill()  # SIGKILL mid-stream: only what the AOF holds comes back
        before_restart = len(acknowledged)
        time.sleep(0.3)
        redis_server.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < before_restart + 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join(timeout=30)
    try:
        assert len(acknowledged) >= before_restart + 100, "the broker did not recover from the Redis restart"
        try:
            with httpx.Client(base_url=broker.url, timeout=10) as http:
                answers = {eid: http.get(f"{BASE}/entities/{eid}") for eid in acknowledged}
        except httpx.TransportError as exc:
            raise AssertionError(f"broker unreachable, alive: {broker.process.poll()}\n{broker.log()}") from exc
        lost = {eid: (r.status_code, r.text[:300]) for eid, r in answers.items() if r.status_code != 200}
        assert lost == {}, f"{len(lost)} acknowledged writes lost\n{broker.log()[-5000:]}"
    finally:
        broker.stop()


def test_two_brokers_over_rediss_share_one_tls_only_redis(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    """`agora serve --store rediss://...?tls_ca=...&tls_cert=...&tls_key=...` (decision record 0043): two broker
    processes over a redis-server that speaks TLS only and requires client certificates; a write on one is read
    on the other and notifies a subscription made on the other."""
    with running_redis(tmp_path_factory.mktemp("redis-tls"), tls=True) as server:
        assert server.url.startswith("rediss://") and "tls_ca=" in server.url
        logs = tmp_path_factory.mktemp("brokers-tls")
        with (
            running_broker(server.url, logs, extra_env=FAST) as a,
            running_broker(server.url, logs, extra_env=FAST) as b,
        ):
            kind, path = f"Tls{uuid.uuid4().hex[:6]}", f"/tls/{uuid.uuid4().hex[:6]}"
            subscribe(b.url, receiver, path, kind)
            eid = uid(kind)
            r = httpx.post(f"{a.url}{BASE}/entities", json={"id": eid, "type": kind, "speed": 7})
            assert r.status_code == 201, r.text
            got = httpx.get(f"{b.url}{BASE}/entities/{eid}")
            assert got.status_code == 200 and got.json()["speed"]["value"] == 7
            assert [e["id"] for e in receiver.wait_until(path, lambda found: len(found) >= 1)] == [eid]
        with server.client() as client:
            assert client.hexists("agora:{agora-0-0}:e:", eid)  # written through TLS, read back through TLS
