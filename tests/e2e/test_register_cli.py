"""`agora register` against a real `agora serve` (clause 5.9.2): a registration from flags, from a file with flags
overriding it, the broker's refusal printed with exit 1, and bad arguments exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import BrokerProcess, running_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("register-cli")
    with running_broker("memory://", tmp) as process:
        yield process


def register(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "broker.cli", "register", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_registration_from_flags(broker: BrokerProcess) -> None:
    done = register(
        "--broker", broker.url, "--endpoint", "http://water.example:1026", "--type", "WaterMeter",
        "--property", "flow", "--mode", "auxiliary", "--operations", "retrieveOps", "--timeout", "1500",
        "--info", "Authorization=urn:ngsi-ld:request", "--tenant", "city",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reg_id = done.stdout.strip()
    got = httpx.get(f"{broker.url}/ngsi-ld/v1/csourceRegistrations/{reg_id}", headers={"NGSILD-Tenant": "city"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["information"] == [{"entities": [{"type": "WaterMeter"}], "propertyNames": ["flow"]}]
    assert body["mode"] == "auxiliary" and body["operations"] == ["retrieveOps"]
    assert body["management"] == {"timeout": 1500}
    assert body["contextSourceInfo"] == [{"key": "Authorization", "value": "urn:ngsi-ld:request"}]


def test_a_registration_from_a_file_with_flags_overriding(broker: BrokerProcess, tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    reg_id = "urn:ngsi-ld:ContextSourceRegistration:from-file"
    doc = {"id": reg_id, "information": [{"entities": [{"type": "Stop"}]}], "endpoint": "http://a.example"}
    path.write_text(json.dumps(doc))
    done = register(str(path), "--broker", broker.url, "--endpoint", "http://transport.example:1026")
    assert done.returncode == 0 and done.stdout.strip() == reg_id, done.stderr
    got = httpx.get(f"{broker.url}/ngsi-ld/v1/csourceRegistrations/{reg_id}").json()
    assert got["endpoint"] == "http://transport.example:1026" and got["type"] == "ContextSourceRegistration"


def test_the_broker_refusal_is_printed(broker: BrokerProcess) -> None:
    done = register("--broker", broker.url, "--endpoint", "http://x.example", "--type", "T", "--cooldown", "-5")
    assert done.returncode == 1 and "management.cooldown" in done.stderr


def test_bad_arguments() -> None:
    assert register("--endpoint", "http://x.example").returncode == 2  # no information
    assert register("--type", "T", "--endpoint", "http://x.example").returncode == 2  # no --broker
    dry = register("--type", "T", "--endpoint", "http://x.example", "--dry-run")
    assert dry.returncode == 0 and json.loads(dry.stdout)["information"] == [{"entities": [{"type": "T"}]}]
