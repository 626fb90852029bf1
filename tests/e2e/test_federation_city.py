"""Issue 16, as a city sees it: its broker answers across brokers it does not own (clauses 4.3.6, 5.7.1, 5.7.2).

Real processes: three `agora serve` (the city on SQLite, the water utility on SQLite, the transport operator on
memory), plus an energy retailer's context source that is not Agora (tests/support/grid_source.py: retrieve and
query only, its own @context with its own name for nominalVoltage). The utility holds EPANET Net1 placed in the area,
the operator a Rhine transit feed, the retailer the mv_oberrhein grid nodes around the area (tests/support/area.py).
The city registers the three (the transport operator with `agora register`); the client only ever talks to the city.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from adapters.energy.pandapower import PandapowerAdapter
from adapters.gtfs import GtfsAdapter
from adapters.importer import project_context
from adapters.water.epanet import EpanetAdapter
from tests.e2e.helpers import agora_cli, link
from tests.support.area import CRS, P, small_feed
from tests.support.context_server import serve_contexts
from tests.support.grid_source import GridSource, serving
from tests.support.servers import BrokerProcess, start_broker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
API = "/ngsi-ld/v1"
AREA = {"geometry": "Point", "coordinates": f"[{P[0]},{P[1]}]", "georel": "near;maxDistance==1500"}
TYPES = "GtfsStop,Junction,ConnectivityNode"
#: The transport operator's registration timeout (management.timeout, ms): the killed source's answer bound.
TRANSPORT_TIMEOUT_MS = 1500
#: The retailer names nominalVoltage "ratedVoltage" in its own @context (same IRI): the city must not show that.
GRID_TERMS = {
    "ConnectivityNode": None, "name": None, "inService": None, "busType": None, "ratedVoltage": "nominalVoltage"
}  # fmt: skip
JUNCTION = "urn:ngsi-ld:Junction:net1:10"
HYDRANT = "urn:ngsi-ld:Hydrant:net1:H1"


@dataclass
class City:
    city: BrokerProcess
    utility: BrokerProcess
    transport: BrokerProcess
    grid: GridSource
    headers: dict[str, str]  # the Link of the project @context every client request carries

    def query(self, broker: BrokerProcess, **params: str) -> httpx.Response:
        return httpx.get(f"{broker.url}{API}/entities", params=params, headers=self.headers, timeout=30)


def _metres(lon: float, lat: float) -> float:
    return math.hypot((lon - P[0]) * math.cos(math.radians(P[1])) * 111_320, (lat - P[1]) * 110_540)


def grid_nodes(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid nodes within 4 km of P (a subset of mv_oberrhein), written in the retailer's own terms."""
    renamed = {project: own for own, project in ((k, v or k) for k, v in GRID_TERMS.items())}
    adapter = PandapowerAdapter(network="oberrhein")
    nodes = [e for e in adapter.entities(str(FIXTURES / "energy" / "pandapower-mv_oberrhein.json.gz"))
             if e["type"] == "ConnectivityNode" and _metres(*e["location"]["value"]["coordinates"]) < 4000]  # fmt: skip
    return [{renamed.get(k, k): v for k, v in node.items()} for node in nodes]


def upsert(broker: BrokerProcess, headers: dict[str, str], entities: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{broker.url}{API}/entityOperations/upsert", json=entities, headers=headers, timeout=30)
    assert response.status_code in (201, 204), response.text


def register(broker: BrokerProcess, headers: dict[str, str], body: dict[str, Any]) -> None:
    body = {"type": "ContextSourceRegistration", **body}
    response = httpx.post(f"{broker.url}{API}/csourceRegistrations", json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text


def load(fed: City, tmp: Path) -> None:
    water = list(EpanetAdapter(network="net1", crs=CRS).entities(str(FIXTURES / "water" / "Net1.inp")))
    hydrant = {"id": HYDRANT, "type": "Hydrant", "name": {"type": "Property", "value": "H1"}}
    upsert(fed.utility, fed.headers, [*water, hydrant])
    upsert(fed.transport, fed.headers, list(GtfsAdapter(network="rhine").entities(str(small_feed(tmp / "f.zip")))))


def register_with_the_cli(fed: City) -> None:
    """The transport operator registered as an integrator would: `agora register` (a process of its own)."""
    done = agora_cli("register", "--broker", fed.city.url, "--context", fed.headers["Link"][1:].split(">")[0],
                     "--endpoint", fed.transport.url, "--type", "GtfsStop",
                     "--timeout", str(TRANSPORT_TIMEOUT_MS), "--name", "transport operator")  # fmt: skip
    assert done.returncode == 0, done.stderr


def register_sources(fed: City) -> None:
    h, city = fed.headers, fed.city
    register(city, h, {"endpoint": fed.utility.url, "information": [{"entities": [{"type": "Junction"}]}]})
    register(city, h, {"endpoint": fed.utility.url, "mode": "exclusive", "operations": ["updateOps"],
                       "information": [{"entities": [{"id": JUNCTION, "type": "Junction"}],
                                        "propertyNames": ["baseDemand"]}]})  # fmt: skip
    register(city, h, {"endpoint": fed.grid.url, "operations": ["retrieveOps"],
                       "information": [{"entities": [{"type": "ConnectivityNode"}]}],
                       "contextSourceInfo": [{"key": "jsonldContext", "value": fed.grid.context_url}]})  # fmt: skip
    # a loop: the city sends Hydrant reads to the utility, and the utility sends them back to the city
    register(city, h, {"endpoint": fed.utility.url, "information": [{"entities": [{"type": "Hydrant"}]}]})
    register(fed.utility, h, {"endpoint": city.url, "information": [{"entities": [{"type": "Hydrant"}]}]})


def stop_later(stack: ExitStack, started: Future[BrokerProcess]) -> None:
    if started.exception() is None:
        stack.callback(started.result().stop)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    tmp = tmp_path_factory.mktemp("federation-city")
    project = project_context()["@context"]
    own = {term: project[iri or term] for term, iri in GRID_TERMS.items()}
    with ExitStack() as stack:
        contexts = stack.enter_context(serve_contexts({"/project.jsonld": {"@context": project}}))
        grid = stack.enter_context(serving(GridSource(context=own)))
        grid.add(*grid_nodes(own))
        stores = {"city": f"sqlite:///{tmp / 'city.db'}", "utility": f"sqlite:///{tmp / 'utility.db'}",
                  "transport": "memory://"}  # fmt: skip
        with ThreadPoolExecutor(3) as pool:
            started = {name: pool.submit(start_broker, store, tmp, timeout=90, extra_env={
                "AGORA_SOURCE_ID": f"urn:ngsi-ld:ContextSource:{name}", "AGORA_SOURCE_ALIAS": name})
                for name, store in stores.items()}  # fmt: skip
            for future in started.values():  # each one that started is stopped, even when another did not
                future.add_done_callback(partial(stop_later, stack))
            brokers = {name: future.result() for name, future in started.items()}
        city = City(brokers["city"], brokers["utility"], brokers["transport"], grid, link(contexts + "/project.jsonld"))
        with ThreadPoolExecutor(1) as pool:  # the CLI's start-up overlaps the loads
            cli = pool.submit(register_with_the_cli, city)
            load(city, tmp)
            register_sources(city)
            cli.result()
        yield city


def entities_of(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body, list), response.text[:500]
    return body


def test_one_geo_query_answers_from_every_source_with_the_same_names(fed: City) -> None:
    response = fed.query(fed.city, type=TYPES, limit="1000", **AREA)
    assert response.status_code == 200, response.text
    found = entities_of(response)
    kinds = {e["type"] for e in found}
    assert kinds == {"GtfsStop", "Junction", "ConnectivityNode"}, kinds
    ids = {e["id"] for e in found}
    assert "urn:ngsi-ld:GtfsStop:rhine:S1" in ids and "urn:ngsi-ld:GtfsStop:rhine:S2" not in ids  # the area filters
    near_grid = {n["id"] for n in fed.grid.entities.values() if _metres(*n["location"]["value"]["coordinates"]) <= 1500}
    assert {e["id"] for e in found if e["type"] == "ConnectivityNode"} == near_grid
    assert {e["id"] for e in found if e["type"] == "Junction"} >= {JUNCTION}
    # one vocabulary whatever the source called it: the client's terms, never the retailer's or a full IRI
    assert all(e["location"]["type"] == "GeoProperty" and "name" in e for e in found)
    nodes = [e for e in found if e["type"] == "ConnectivityNode"]
    assert all(n["nominalVoltage"]["unitCode"] == "KVT" and "ratedVoltage" not in n for n in nodes)
    assert not [k for e in found for k in e if k.startswith("http")]
    # the retailer was asked through its own @context (contextSourceInfo jsonldContext, clause 4.3.6.6)
    asked = [s for s in fed.grid.seen if s.path.endswith("/entities")]
    assert asked and all(fed.grid.context_url in s.headers.get("link", "") for s in asked)


def test_the_same_answer_equals_each_source_asked_alone(fed: City) -> None:
    merged = {e["id"] for e in entities_of(fed.query(fed.city, type=TYPES, limit="1000", **AREA))}
    alone = {e["id"] for b in (fed.utility, fed.transport) for e in entities_of(fed.query(b, type=TYPES, **AREA))}
    assert alone and alone <= merged
    assert fed.query(fed.city, type=TYPES, local="true", **AREA).json() == []  # the city itself holds none of them


def test_retrieve_of_a_grid_node_goes_to_the_retailer(fed: City) -> None:
    node = next(iter(fed.grid.entities))
    response = httpx.get(f"{fed.city.url}{API}/entities/{quote(node, safe='')}", headers=fed.headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["nominalVoltage"]["value"] == fed.grid.entities[node]["ratedVoltage"]["value"]


def test_patch_of_an_exclusive_attribute_goes_to_the_utility(fed: City) -> None:
    path = f"{API}/entities/{quote(JUNCTION, safe='')}"
    patch = {"baseDemand": {"type": "Property", "value": 4.5, "unitCode": "G51"}}
    response = httpx.patch(f"{fed.city.url}{path}/attrs", json=patch, headers=fed.headers, timeout=10)
    assert response.status_code == 204, response.text
    at_utility = httpx.get(f"{fed.utility.url}{path}", headers=fed.headers, timeout=10).json()
    assert at_utility.get("baseDemand", {}).get("value") == 4.5, at_utility
    local = httpx.get(f"{fed.city.url}{path}", params={"local": "true"}, headers=fed.headers, timeout=10)
    assert local.status_code == 404, local.text  # nothing of it was written in the city's own store
    through_city = httpx.get(f"{fed.city.url}{path}", headers=fed.headers, timeout=10).json()
    assert through_city["baseDemand"]["value"] == 4.5


def test_a_registration_loop_ends_with_a_loop_error(fed: City) -> None:
    started = time.monotonic()
    response = fed.query(fed.city, type="Hydrant")
    assert time.monotonic() - started < 5, "the loop took too long"
    assert response.status_code == 200, response.text
    assert HYDRANT in {e["id"] for e in entities_of(response)}  # what the utility holds still comes back
    relayed = response.headers.get_list("NGSILD-Warning")  # the utility relays the city's loop warning
    assert any(w.startswith("199 ") and "loop" in w for w in relayed), relayed
    # the request as it comes back to the city (through the city, then the utility): refused with a loop warning
    via = "1.1 urn:ngsi-ld:ContextSource:city, 1.1 urn:ngsi-ld:ContextSource:utility"
    back = httpx.get(f"{fed.city.url}{API}/entities", params={"type": "Hydrant"}, headers={**fed.headers, "Via": via})
    warnings = back.headers.get_list("NGSILD-Warning")
    assert back.status_code == 200 and back.json() == [], back.text
    assert any(w.startswith("199 ") and "loop" in w for w in warnings), warnings


def test_a_killed_source_gives_a_warning_with_its_error_and_the_rest(fed: City) -> None:
    """A read with a failed source answers what the others gave, with an NGSILD-Warning naming it (clause 6.3.17;
    record 0184 reads 200, not the 207 of partial writes)."""
    fed.transport.kill()
    started = time.monotonic()
    response = fed.query(fed.city, type=TYPES, limit="1000", **AREA)
    elapsed = time.monotonic() - started
    assert elapsed < TRANSPORT_TIMEOUT_MS / 1000 + 1.0, elapsed
    assert response.status_code == 200, response.text
    warnings = response.headers.get_list("NGSILD-Warning")
    agent = urlsplit(fed.transport.url).netloc
    assert [w for w in warnings if w.startswith(f"199 {agent} ")], warnings
    kinds = {e["type"] for e in entities_of(response)}
    assert kinds == {"Junction", "ConnectivityNode"}, kinds
