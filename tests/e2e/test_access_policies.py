"""Access policies end to end (issue 18, records 0220-0224): a real `agora serve` on SQLite and on Redis with a
policy file, two operators with tokens of the local OpenID Connect issuer and a service provider with an API key,
each seeing exactly what its policy allows (entities, attributes, counts, tenants), a notification to a real
receiver that never carries what its subscriber may not read, and the audit log of the refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.oidc_issuer import Issuer, running_issuer
from tests.support.receiver import running_receiver
from tests.support.servers import running_broker, store_url_for

POLICY = """
rules:
  - {id: water-ops, roles: [water-operator], actions: [read, write, subscribe], tenants: [water]}
  - {id: energy-ops, roles: [energy-operator], actions: [read, write], tenants: [energy]}
  - {id: provider-pipes, clients: [journey-app], actions: [read, subscribe], tenants: [water],
     types: [WaterPipe], attrs: [pressure]}
  - {id: provider-not-private, effect: deny, clients: [journey-app], actions: [read],
     idPatterns: ["urn:ngsi-ld:WaterPipe:private:.*"]}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with running_issuer() as found:
        yield found


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def pipe(eid: str) -> dict[str, Any]:
    return {"id": eid, "type": "WaterPipe", "pressure": prop(3), "secret": prop(1), "email": prop("a@b.example")}


def api_key(db: str, name: str, role: str | None = None) -> dict[str, str]:
    args = [sys.executable, "-m", "broker.cli", "keys", "--store", db, "create", "--name", name]
    made = subprocess.run([*args, *(["--role", role] if role else [])], capture_output=True, text=True, check=True)
    return {"X-API-Key": made.stdout.strip()}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_operators_and_a_provider_each_see_what_their_policy_allows(
    tmp_path: Path, issuer: Issuer, backend: str
) -> None:
    with ExitStack() as stack:
        db = store_url_for(backend, tmp_path, stack)
        admin, provider = api_key(db, "admin", "admin"), api_key(db, "journey-app")
        (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [issuer.config()]}))
        (tmp_path / "policies.yaml").write_text(POLICY)
        args = ["--issuers", str(tmp_path / "issuers.json"), "--policies", str(tmp_path / "policies.yaml")]
        receiver = stack.enter_context(running_receiver())
        broker = stack.enter_context(running_broker(db, tmp_path, extra_args=[*args, "--outbound-allow", "loopback"]))
        water_op = {"Authorization": f"Bearer {issuer.token(roles=['water-operator'], sub='wop')}"}
        energy_op = {"Authorization": f"Bearer {issuer.token(roles=['energy-operator'], sub='eop')}"}
        url = broker.url + "/ngsi-ld/v1/entities"
        water, energy = {"NGSILD-Tenant": "water"}, {"NGSILD-Tenant": "energy"}
        for eid in ("urn:ngsi-ld:WaterPipe:lyon:1", "urn:ngsi-ld:WaterPipe:private:2"):
            assert httpx.post(url, json=pipe(eid), headers={**admin, **water}).status_code == 201
        node = {"id": "urn:ngsi-ld:Substation:1", "type": "Substation", "load": prop(7)}
        assert httpx.post(url, json=node, headers={**energy_op, **energy}).status_code == 201
        query = {"type": "WaterPipe,Substation", "count": "true"}

        def seen(who: dict[str, str], tenant: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
            answer = httpx.get(url, params=query, headers={**who, **tenant})
            assert answer.status_code == 200, answer.text
            return answer.json(), answer.headers["NGSILD-Results-Count"]

        found, count = seen(water_op, water)
        assert count == "2" and all(set(e) == {"id", "type", "pressure", "secret"} for e in found)  # no email
        assert seen(energy_op, water) == ([], "0")  # tenants never leak
        assert [e["id"] for e in seen(energy_op, energy)[0]] == ["urn:ngsi-ld:Substation:1"]
        found, count = seen(provider, water)
        assert count == "1" and found == [
            {"id": "urn:ngsi-ld:WaterPipe:lyon:1", "type": "WaterPipe", "pressure": prop(3)}
        ]
        assert seen(provider, energy) == ([], "0")
        refused = httpx.patch(
            url + "/urn:ngsi-ld:WaterPipe:lyon:1/attrs", json={"pressure": prop(0)}, headers={**provider, **water}
        )
        assert refused.status_code == 403 and refused.json()["title"] == "Forbidden"

        sub = {
            "type": "Subscription",
            "entities": [{"type": "WaterPipe"}],
            "notification": {"endpoint": {"uri": receiver.url + "/app"}},
        }
        assert (
            httpx.post(broker.url + "/ngsi-ld/v1/subscriptions", json=sub, headers={**provider, **water}).status_code
            == 201
        )
        subs = broker.url + "/ngsi-ld/v1/subscriptions"
        assert len(httpx.get(subs, headers={**provider, **water}).json()) == 1
        assert httpx.get(subs, headers={**water_op, **water}).json() == []  # another's subscription is not shown
        target = url + "/urn:ngsi-ld:WaterPipe:lyon:1/attrs"
        for change in ({"pressure": prop(4), "secret": prop(2)}, {"secret": prop(3)}, {"pressure": prop(5)}):
            assert httpx.patch(target, json=change, headers={**water_op, **water}).status_code == 204
        private = url + "/urn:ngsi-ld:WaterPipe:private:2/attrs"
        assert httpx.patch(private, json={"pressure": prop(9)}, headers={**water_op, **water}).status_code == 204
        got = receiver.wait_until("/app", lambda es: any(e.get("pressure", {}).get("value") == 5 for e in es))
        assert [e["pressure"]["value"] for e in got] == [4, 5]  # a change of a hidden attribute only notifies nothing
        assert all(set(e) == {"id", "type", "pressure"} for e in got)  # never secret or email, never the private pipe

        deadline = time.monotonic() + 10
        audit: list[dict[str, Any]] = []
        while not audit and time.monotonic() < deadline:
            params = {"outcome": "refused", "entityId": "urn:ngsi-ld:WaterPipe:lyon:1"}
            audit = httpx.get(broker.url + "/ngsi-ld/v1/agora/audit", params=params, headers=admin).json()
            time.sleep(0.1)
        assert (
            audit
            and audit[0]["status"] == 403
            and audit[0]["client"] == "journey-app"
            and audit[0]["tenant"] == "water"
        )
        assert httpx.get(broker.url + "/ngsi-ld/v1/agora/audit", headers=water_op).status_code == 403
