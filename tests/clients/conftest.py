"""Real NGSI-LD client libraries from PyPI, unchanged, driven against a real `agora serve`.

Each library lives in its own virtual environment, .venv-clients/<name>, made by `make clients` (and so by
`make test`) from the pins of tests/clients/requirements-<name>.txt: their dependencies clash with Agora's
(docs/decisions/0141). A test module runs its library's drive script (drive_<name>.py) once in that environment,
as a subprocess, against a broker on a fresh SQLite file and a notification receiver on loopback ports; the
script records every step it took (value or error), and the module's tests check the steps. Nothing is fetched
from the network: the libraries are installed beforehand, and the core @context they name is built into Agora."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.mosquitto import running_mosquitto
from tests.support.receiver import Entities, running_receiver
from tests.support.servers import running_broker

HERE = Path(__file__).resolve().parent
CLIENTS = HERE.parents[1] / ".venv-clients"


@dataclass
class Drive:
    """What one drive of a client library did: its steps by name, and what the receiver got, by path."""

    steps: dict[str, dict[str, Any]]
    notified: dict[str, Entities]

    def ok(self, name: str) -> Any:
        """The value of a step that must have succeeded."""
        step = self.steps[name]
        assert step["ok"], f"step {name!r} failed: {json.dumps(step['error'])}"
        return step["value"]

    def error(self, name: str) -> dict[str, Any]:
        """The error of a step that must have failed."""
        step = self.steps[name]
        assert not step["ok"], f"step {name!r} should have failed, got {json.dumps(step['value'])}"
        return dict(step["error"])


def client_python(name: str) -> Path:
    if not (CLIENTS / name / ".installed").exists():
        pytest.fail(f"{name} is not installed: `make clients` makes .venv-clients/{name} (`make test` does it too)")
    return CLIENTS / name / "bin" / "python"


def drive(name: str, tmp: Path) -> Drive:
    """Run drive_<name>.py in the library's environment against a fresh broker; its steps and notifications.

    The script gets the broker's URL, the HTTP receiver's, the file to write its steps to, and the URL of a real
    MQTT broker (mosquitto) for the libraries that subscribe with mqtt:// endpoints."""
    python = client_python(name)
    out = tmp / "steps.json"
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.pop("PYTHONPATH", None)
    with (
        running_receiver() as receiver,
        running_mosquitto(tmp) as mosquitto,
        running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as broker,
    ):
        mqtt_url = f"mqtt://{mosquitto.host}:{mosquitto.port}"
        done = subprocess.run(
            [str(python), str(HERE / f"drive_{name}.py"), broker.url, receiver.url, str(out), mqtt_url],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            cwd=tmp,
        )
        assert done.returncode == 0, f"drive_{name}.py exited {done.returncode}:\n{done.stderr[-4000:]}"
        notified: dict[str, Entities] = {}
        with receiver.lock:
            for path, entity in receiver.got:
                notified.setdefault(path, []).append(entity)
    steps = json.loads(out.read_text())["steps"]
    names = [s["name"] for s in steps]
    assert len(names) == len(set(names)), "step names must be unique"
    return Drive({s["name"]: s for s in steps}, notified)
