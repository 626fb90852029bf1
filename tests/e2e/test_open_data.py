"""Issue 19's scenario end to end: import the GTFS sample feed (with a GTFS-ride rider_trip.txt: a ticket holder),
a historian export with customer meters, the EPANET Net3 network and the Oberrhein grid into a real `agora serve`;
export and erase one customer; publish the stops, the pipes and the lines as open datasets, then harvest /catalog
as a DCAT harvester does (rdflib: catalogue -> dcat:dataset -> dcat:distribution -> dcat:downloadURL) and download
every distribution: counts, licence, and no personal attribute anywhere. The bytes left on disk after an erasure
are tests/e2e/test_gdpr_customer.py's."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pyshacl import validate
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from adapters.importer import project_context
from tests.e2e.helpers import agora_cli
from tests.support.servers import BrokerProcess, running_broker

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SHAPES = FIXTURES / "dcat-ap" / "dcat-ap-3.0.0-SHACL.jsonld"
# Net3's drawing frame placed near Freiburg as US feet (decision 0060), as tests/e2e/test_import_energy_water.py.
NET3_CRS = "%2Bproj=tmerc%20%2Blat_0=48.0%20%2Blon_0=7.85%20%2Bk=1%20%2Bx_0=0%20%2By_0=0%20%2Bunits=us-ft"
IMPORTS = [
    ("epanet", f"{FIXTURES / 'water' / 'Net3.inp'}?crs={NET3_CRS}", "net3"),
    ("pandapower", str(FIXTURES / "energy" / "pandapower-mv_oberrhein.json.gz"), "oberrhein"),
    ("historian", f"{FIXTURES / 'energy' / 'historian-customers.csv'}?tagmap="
     f"{FIXTURES / 'energy' / 'historian-customers-tagmap.csv'}", "oberrhein"),
]  # fmt: skip
RIDER_TRIPS = "rider_id,trip_id,boarding_stop_id,alighting_stop_id\nC-17,AB1,BEATTY_AIRPORT,BULLFROG\n"
PERSONAL = (b"customer-47", b"meter-47", b"C-17", b"ticketHolder", b"dataSubject")  # in no distribution
CUSTOMER = "urn:ngsi-ld:Person:oberrhein:customer-4711"
GDPR = "/ngsi-ld/v1/agora/gdpr/subjects/"
LICENCE = "https://creativecommons.org/licenses/by/4.0/"
DATASETS = {  # id: (type term, network, entities)
    "stops": ("GtfsStop", "sample", 9),
    "pipes": ("Pipe", "net3", 117),
    "lines": ("ACLineSegment", "oberrhein", 181),
}
ADMIN = "/ngsi-ld/v1/agora/datasets"
PHONE = "+33 4 72 00 00 00"  # put on a stop below: "phone" is marked personal (ontologies/personal_data.csv)
SDM = "https://smartdatamodels.org/dataModel.UrbanMobility/"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("open-data")
    env = {"AGORA_OPENDATA_DIR": str(tmp / "opendata"), "AGORA_OPENDATA_PUBLISHER": "City of Test"}
    ride = tmp / "sample-ride.zip"  # the Google sample as a GTFS-ride feed: one rider's trip
    with zipfile.ZipFile(FIXTURES / "gtfs" / "google-sample-gtfs.zip") as src, zipfile.ZipFile(ride, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("rider_trip.txt", RIDER_TRIPS)
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=env) as process:
        for adapter, source, network in [("gtfs", str(ride), "sample"), *IMPORTS]:
            done = agora_cli("import", adapter, source, "--broker", process.url, "--network", network, timeout=300)
            assert done.returncode == 0, done.stderr
        yield process


def link(http: httpx.Client) -> dict[str, str]:
    hosted = http.get("/ngsi-ld/v1/jsonldContexts", params={"kind": "Hosted"}).json()
    url = next(u for u in hosted if http.get(u).json() == project_context())
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def publish(http: httpx.Client) -> None:
    headers = link(http)
    stop = "urn:ngsi-ld:GtfsStop:sample:FUR_CREEK_RES"
    r = http.post(f"/ngsi-ld/v1/entities/{stop}/attrs", json={"phone": {"type": "Property", "value": PHONE}},
                  headers=headers)  # fmt: skip
    assert r.status_code == 204, r.text
    for dataset_id, (term, network, _) in DATASETS.items():
        doc = {"id": dataset_id, "type": term, "network": network, "title": f"{term} of {network}",
               "description": f"Every {term} of {network}", "licence": LICENCE, "frequency": "WEEKLY"}  # fmt: skip
        r = http.post(ADMIN, json=doc, headers=headers)
        assert r.status_code == 201, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the regeneration job runs at once after a publication
        shown = {d["id"]: d.get("state", {}).get("count") for d in http.get(ADMIN).json()}
        if shown == {k: v[2] for k, v in DATASETS.items()}:
            return
        time.sleep(0.1)
    raise AssertionError(f"the datasets were not regenerated: {shown}")


def harvest(http: httpx.Client) -> tuple[Graph, dict[str, list[tuple[str, Any, bytes]]]]:
    """What a DCAT harvester does: the catalogue, then each dataset's distributions, downloaded."""
    r = http.get("/catalog", headers={"Accept": "text/turtle"})
    assert r.status_code == 200, r.text
    graph = Graph().parse(data=r.text, format="turtle")
    catalog = next(graph.subjects(RDF.type, DCAT.Catalog))
    found: dict[str, list[tuple[str, Any, bytes]]] = {}
    for dataset in graph.objects(catalog, DCAT.dataset):
        dataset_id = str(graph.value(dataset, DCTERMS.identifier))
        for distribution in graph.objects(dataset, DCAT.distribution):
            url = str(graph.value(distribution, DCAT.downloadURL))
            got = httpx.get(url, timeout=30)  # anew, as a harvester would: no session, no credentials
            assert got.status_code == 200, (url, got.text)
            media = str(graph.value(distribution, DCAT.mediaType)).rsplit("media-types/", 1)[1]
            assert got.headers["content-type"].startswith(media)
            found.setdefault(dataset_id, []).append((media, graph.value(distribution, DCTERMS.license), got.content))
    return graph, found


def count(media: str, body: bytes, entity_type: str) -> int:
    if media == "application/geo+json":
        return len(json.loads(body)["features"])
    if media == "text/csv":
        return len(list(csv.DictReader(io.StringIO(body.decode()))))
    if media == "application/ld+json":
        return len(json.loads(body))
    graph = Graph().parse(data=body.decode(), format="turtle")
    return len(set(graph.subjects(RDF.type, URIRef(entity_type))))


def export_and_erase(http: httpx.Client) -> None:
    """The data protection duties first: a customer's and a ticket holder's data found, the customer erased."""
    for subject, entity_type in ((CUSTOMER, "SmartMeteringObservation"), ("C-17", "GtfsRiderTrip")):
        doc = http.get(GDPR + quote(subject, safe=""), headers={"Accept": "application/ld+json"}).json()
        assert [e["type"] for h in doc["holdings"] for e in h["entities"]] == [entity_type], subject
    erased = http.delete(GDPR + quote(CUSTOMER, safe=""))
    assert erased.status_code == 200 and erased.json()["entities"] == 1, erased.text
    assert http.get(GDPR + quote(CUSTOMER, safe="")).json()["holdings"] == []
    rides = {"id": "rides", "type": "GtfsRiderTrip", "title": "Rides", "description": "Every ride"}
    refused = http.post(ADMIN, json=rides, headers=link(http))  # a personal type is never open data
    assert refused.status_code == 400 and "location-trace" in refused.text, refused.text


def test_publish_harvest_and_download_every_distribution(broker: BrokerProcess) -> None:
    with httpx.Client(base_url=broker.url, timeout=30) as http:
        export_and_erase(http)
        publish(http)
        graph, found = harvest(http)
    ok, _, report = validate(graph, shacl_graph=Graph().parse(SHAPES, format="json-ld"), inference="rdfs")
    assert ok, report
    assert sorted(found) == sorted(DATASETS)
    types = {str(graph.value(d, DCTERMS.identifier)): d for d in graph.subjects(RDF.type, DCAT.Dataset)}
    for dataset_id, downloads in found.items():
        term, _, expected = DATASETS[dataset_id]
        entity_type = project_context()["@context"][term]
        assert graph.value(types[dataset_id], DCTERMS.spatial) is not None, dataset_id
        assert sorted(media for media, _, _ in downloads) == [
            "application/geo+json", "application/ld+json", "text/csv", "text/turtle"]  # fmt: skip
        for media, licence, body in downloads:
            assert licence == URIRef(LICENCE)
            assert count(media, body, entity_type) == expected, (dataset_id, media)
            assert PHONE.encode() not in body and (SDM + "phone").encode() not in body, (dataset_id, media)
            assert b'"phone"' not in body and b"phone," not in body, (dataset_id, media)
            assert [s for s in PERSONAL if s in body] == [], (dataset_id, media)
    stops = dict((m, b) for m, _, b in found["stops"])
    assert b"FUR_CREEK_RES" in stops["text/csv"]  # the stop that had a phone is published, without it
