"""Open data (issue 19, records 0340-0344): the DCAT-AP catalogue against the official DCAT-AP 3.0.0 SHACL shapes,
the four distributions (parsed back, personal attributes gone, read a store page at a time), content negotiation,
the publishing API's errors, and who may read what in a broker that requires authentication."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from pyshacl import validate
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from starlette.testclient import TestClient

from broker.cli import main
from broker.core.errors import BadRequestData
from broker.http.app import create_app
from broker.opendata.catalog import catalogue
from broker.opendata.dumps import WRITERS, Survey, stream, survey
from broker.opendata.spec import DatasetSpec, parse_spec
from broker.settings import Settings
from broker.store.base import EntityFilter
from tests.unit.test_policies_http import make_keys

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / "tests" / "fixtures" / "dcat-ap" / "dcat-ap-3.0.0-SHACL.jsonld"
DATASETS = "/ngsi-ld/v1/agora/datasets"
V = "https://uri.etsi.org/ngsi-ld/default-context/"
SDM = "https://smartdatamodels.org/dataModel.UrbanMobility/"
STOP = SDM + "GtfsStop"
BASE = "http://testserver"
AGORA = "https://w3id.org/agora/terms#"


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return Graph().parse(SHAPES, format="json-ld")


def conforms(data: Graph, shapes: Graph) -> tuple[bool, str]:
    # RDFS inference, as the EU Interoperability Test Bed's DCAT-AP validator runs: DCAT-AP's ranges name
    # rdfs:Resource, which every IRI is under RDFS semantics (record 0344).
    ok, _, text = validate(data, shacl_graph=shapes, inference="rdfs")
    return bool(ok), str(text)


SPEC = DatasetSpec("stops", STOP, "Stops", "Every stop", network="sample", keywords=("transport",),
                   issued="2026-12-07T10:00:00.000000Z")  # fmt: skip
SURVEY = Survey(3, [-117.1, 36.4, -116.4, 36.9], "2026-12-07T10:00:00Z", "2026-12-07T11:00:00Z", [],
                "2026-12-07T12:00:00Z")  # fmt: skip


def test_the_catalogue_conforms_to_the_dcat_ap_3_shapes(shapes: Graph) -> None:
    never_surveyed = DatasetSpec("pipes", "https://w3id.org/agora/terms#Pipe", "Pipes", "Water pipes")
    graph = catalogue(BASE, "City of Test", [(SPEC, SURVEY), (never_surveyed, None)])
    ok, report = conforms(graph, shapes)
    assert ok, report
    assert len(list(graph.objects(URIRef(f"{BASE}/catalog"), DCAT.dataset))) == 2


@pytest.mark.parametrize(
    ("drop", "violated"),
    [(DCTERMS.title, "title"), (DCTERMS.description, "description"), (DCAT.accessURL, "accessURL")],
)
def test_the_shapes_refuse_a_catalogue_without_a_mandatory_property(shapes: Graph, drop: URIRef, violated: str) -> None:
    graph = catalogue(BASE, "City of Test", [(SPEC, SURVEY)])
    graph.remove((None, drop, None))
    ok, report = conforms(graph, shapes)
    assert not ok and violated in report


def test_coverage_comes_from_the_survey(shapes: Graph) -> None:
    graph = catalogue(BASE, "City of Test", [(SPEC, SURVEY)])
    dataset = URIRef(f"{BASE}/catalog/datasets/stops")
    place = graph.value(dataset, DCTERMS.spatial)
    assert str(graph.value(place, DCAT.bbox)).startswith("POLYGON((-117.1 36.4, -116.4 36.4, -116.4 36.9")
    period = graph.value(dataset, DCTERMS.temporal)
    assert str(graph.value(period, DCAT.startDate)).startswith("2026-12-07T10:00:00")
    licences = {graph.value(d, DCTERMS.license) for d in graph.objects(dataset, DCAT.distribution)}
    assert licences == {URIRef("http://publications.europa.eu/resource/authority/licence/CC_BY_4_0")}


# -- the dataset document -----------------------------------------------------------------------------------------
def expand(term: str) -> str:
    return term if ":" in term else V + term


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"type": "T", "title": "t", "description": "d"}, "needs id"),
        ({"id": "Bad Id", "type": "T", "title": "t", "description": "d"}, "dataset id"),
        ({"id": "a", "type": "T", "description": "d"}, "needs title"),
        ({"id": "a", "type": "T", "title": "t", "description": "d", "colour": 1}, "unknown dataset member"),
        ({"id": "a", "type": "T", "title": "t", "description": "d", "frequency": "SOMETIMES"}, "frequency"),
        ({"id": "a", "type": "T", "title": "t", "description": "d", "licence": "CC-BY"}, "licence"),
        ({"id": "a", "type": "T", "title": "t", "description": "d", "keywords": "x"}, "keywords"),
        ({"id": "a", "type": "https://schema.org/Person", "title": "t", "description": "d"}, "personal data"),
    ],
)
def test_a_bad_dataset_document_says_what_is_wrong(doc: dict[str, Any], says: str) -> None:
    with pytest.raises(BadRequestData, match=says):
        parse_spec(doc, expand)


def test_a_network_selects_the_adapters_id_prefix() -> None:
    spec = parse_spec({"id": "s", "type": STOP, "network": "sample", "title": "t", "description": "d"}, expand)
    assert spec.entity_filter() == EntityFilter(types=frozenset([STOP]), id_pattern=r"^urn:ngsi\-ld:GtfsStop:sample:")


# -- the distributions --------------------------------------------------------------------------------------------
def stop(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:GtfsStop:sample:S{i}",
        "type": [STOP],
        "createdAt": "2026-12-07T10:00:00.000000Z",
        "modifiedAt": f"2026-12-07T10:0{i % 10}:00.000000Z",
        "attrs": {
            "https://smartdatamodels.org/name": [{"type": "Property", "value": f'Stop "{i}"\nline'}],
            SDM + "phone": [{"type": "Property", "value": "+33 4 00 00 00 00"}],  # marked personal
            "https://schema.org/email": [{"type": "Property", "value": "someone@example.org"}],  # marked personal
            SDM + "wheelChairAccessible": [
                {"type": "Property", "value": 1, "attrs": {"https://schema.org/telephone": [
                    {"type": "Property", "value": "+33 6"}]}}  # a personal sub-attribute
            ],
            "https://uri.etsi.org/ngsi-ld/location": [
                {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.8 + i / 1000, 45.7]}}
            ],
            **extra,
        },
    }  # fmt: skip


class PagedStore:
    """A store stub that counts the pages a renderer has pulled."""

    def __init__(self, pages: int, size: int) -> None:
        self.pages, self.size, self.pulled = pages, size, 0

    async def tenant_exists(self, tenant: str) -> bool:
        return True

    async def scan_batches(self, tenant: str, flt: EntityFilter, size: int = 256) -> AsyncIterator[list[Any]]:
        for page in range(self.pages):
            self.pulled += 1
            yield [stop(page * self.size + i) for i in range(self.size)]


async def collect(store: Any, fmt: str, found: Survey | None = None) -> bytes:
    found = found or await survey(store, SPEC)
    return b"".join([chunk async for chunk in stream(store, SPEC, fmt, found, BASE)])


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_each_format_reads_one_store_page_per_chunk(fmt: str) -> None:
    async def first_chunks() -> tuple[int, int]:
        store = PagedStore(pages=5, size=3)
        found = await survey(store, SPEC)
        store.pulled = 0
        chunks = stream(store, SPEC, fmt, found, BASE)  # type: ignore[arg-type]
        await anext(chunks)  # the header (or the first page)
        await anext(chunks)
        pulled = store.pulled
        await chunks.aclose()
        return pulled, found.count

    pulled, count = asyncio.run(first_chunks())
    assert pulled <= 2 and count == 15


def test_a_dump_lets_the_event_loop_serve_others_between_pages() -> None:
    async def ticks_during_a_dump() -> int:
        ticks, done = 0, asyncio.Event()

        async def other_requests() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other_requests())
        await asyncio.sleep(0)
        ticks = 0
        await collect(PagedStore(pages=6, size=3), "jsonld")  # the stub's pages are read without suspending
        done.set()
        await ticker
        return ticks

    assert asyncio.run(ticks_during_a_dump()) >= 6 * 2  # at least once per page, in the survey and the dump


@pytest.fixture(scope="module")
def dumps() -> dict[str, bytes]:
    store = PagedStore(pages=2, size=3)
    return {fmt: asyncio.run(collect(store, fmt)) for fmt in WRITERS}


PERSONAL = ("phone", "email", "telephone", "someone@example.org", "+33")


def test_no_personal_attribute_in_any_distribution(dumps: dict[str, bytes]) -> None:
    for fmt, body in dumps.items():
        text = body.decode()
        assert "heelChairAccessible" in text, fmt
        for word in PERSONAL:
            assert word not in text, (fmt, word)


def test_the_geojson_and_csv_hold_every_entity(dumps: dict[str, bytes]) -> None:
    features = json.loads(dumps["geojson"])["features"]
    assert [f["geometry"]["coordinates"] for f in features][:2] == [[4.8, 45.7], [4.801, 45.7]]
    assert features[0]["properties"]["name"] == 'Stop "0"\nline'
    rows = list(csv.DictReader(io.StringIO(dumps["csv"].decode())))
    assert len(rows) == len(features) == 6
    assert (rows[1]["id"], rows[1]["longitude"], rows[1]["name"]) == (features[1]["id"], "4.801", 'Stop "1"\nline')


def test_the_ngsi_ld_and_turtle_dumps_read_back(dumps: dict[str, bytes]) -> None:
    entities = json.loads(dumps["jsonld"])
    assert len(entities) == 6 and entities[0]["@context"][0] == f"{BASE}/catalog/context.jsonld"
    assert entities[0]["wheelChairAccessible"]["value"] == 1
    graph = Graph().parse(data=dumps["ttl"].decode(), format="turtle")
    assert len(set(graph.subjects(RDF.type, URIRef(STOP)))) == 6
    names = set(graph.objects(URIRef("urn:ngsi-ld:GtfsStop:sample:S1"), URIRef("https://smartdatamodels.org/name")))
    assert {str(n) for n in names} == {'Stop "1"\nline'}


# -- over HTTP -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Path]]:
    tmp = tmp_path_factory.mktemp("opendata")
    url = f"sqlite:///{tmp}/agora.db"
    credentials = make_keys(url, admin="admin", reader="reader")
    settings = Settings(store=url, auth="required", opendata_dir=str(tmp / "files"), opendata_publisher="City of Test")
    with TestClient(create_app(settings)) as client:
        admin = credentials["admin"]
        stops = [{"id": f"urn:ngsi-ld:GtfsStop:sample:S{i}", "type": STOP,
                  "email": {"type": "Property", "value": "someone@example.org"},
                  "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.8, 45.7 + i]}}}
                 for i in range(3)]  # fmt: skip
        assert client.post("/ngsi-ld/v1/entityOperations/upsert", json=stops, headers=admin).status_code == 201
        yield client, credentials, tmp / "files"


def published(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    doc = {"id": "stops", "type": STOP, "network": "sample", "title": "Stops", "description": "Every stop"}
    r = client.post(DATASETS, json=doc, headers=admin)
    assert r.status_code in (201, 204), r.text
    for _ in range(200):  # the regeneration job runs at once after a publication
        shown = client.get(f"{DATASETS}/stops", headers=admin).json()
        if "state" in shown:
            return dict(shown)
        asyncio.run(asyncio.sleep(0.02))
    raise AssertionError("the dataset was never regenerated")


def test_publish_then_everyone_reads_the_catalogue_and_distributions(secured: Any, shapes: Graph) -> None:
    client, credentials, _ = secured
    shown = published(client, credentials["admin"])
    assert shown["state"]["count"] == 3 and shown["state"]["bbox"] == [4.8, 45.7, 4.8, 47.7]
    r = client.get("/catalog")  # anonymous
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=r.text, format="turtle")
    ok, report = conforms(graph, shapes)
    assert ok, report
    for fmt in ("geojson", "csv", "jsonld", "ttl"):
        got = client.get(f"/catalog/datasets/stops/data.{fmt}")
        assert got.status_code == 200, (fmt, got.text)
        assert "urn:ngsi-ld:GtfsStop:sample:S2" in got.text and "someone@example.org" not in got.text
        distribution = URIRef(f"{BASE}/catalog/datasets/stops/distributions/{fmt}")
        assert int(graph.value(distribution, DCAT.byteSize)) == len(got.content) == shown["state"]["bytes"][fmt]


@pytest.mark.parametrize(
    ("accept", "media", "rdflib_format"),
    [("application/ld+json", "application/ld+json", "json-ld"), ("application/rdf+xml;q=0.9, */*;q=0.1",
     "application/rdf+xml", "xml"), ("*/*", "text/turtle", "turtle")],
)  # fmt: skip
def test_the_catalogue_negotiates_its_rdf_syntax(secured: Any, accept: str, media: str, rdflib_format: str) -> None:
    client, _, _ = secured
    r = client.get("/catalog", headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    graph = Graph().parse(data=r.text, format=rdflib_format)
    assert (URIRef(f"{BASE}/catalog"), RDF.type, DCAT.Catalog) in graph


def test_the_catalogue_refuses_what_it_cannot_serve(secured: Any) -> None:
    client, _, _ = secured
    r = client.get("/catalog", headers={"Accept": "text/html"})
    assert r.status_code == 406 and r.json()["title"] == "Not Acceptable"
    assert client.get("/catalog/datasets/none/data.csv").status_code == 404
    assert client.get("/catalog/datasets/stops/data.xlsx").status_code == 404


def test_anonymous_callers_read_only_the_open_data(secured: Any) -> None:
    client, credentials, _ = secured
    assert client.get("/ngsi-ld/v1/entities", params={"type": STOP}).status_code == 401
    assert client.get(DATASETS).status_code == 401
    assert client.post(DATASETS, json={}).status_code == 401
    reader = credentials["reader"]
    r = client.post(DATASETS, json={"id": "x", "type": STOP, "title": "t", "description": "d"}, headers=reader)
    assert r.status_code == 403
    assert client.get(DATASETS, headers=reader).status_code == 403


def test_bad_publications_change_nothing(secured: Any) -> None:
    client, credentials, _ = secured
    admin = credentials["admin"]
    before = client.get(DATASETS, headers=admin).json()
    person = {"id": "people", "type": "https://schema.org/Person", "title": "People", "description": "d"}
    for body in ({"id": "x"}, person, [1, 2]):
        r = client.post(DATASETS, json=body, headers=admin)
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), r.text
    assert client.get(DATASETS, headers=admin).json() == before
    assert client.delete(f"{DATASETS}/none", headers=admin).status_code == 404


def test_withdrawing_a_dataset_removes_it_and_its_files(secured: Any) -> None:
    client, credentials, files = secured
    admin = credentials["admin"]
    published(client, admin)
    written = sorted(p.name for p in (files / "stops").iterdir())
    assert written == ["data.csv", "data.geojson", "data.jsonld", "data.ttl"]
    assert client.delete(f"{DATASETS}/stops", headers=admin).status_code == 204
    assert client.get("/catalog/datasets/stops/data.csv").status_code == 404
    assert "datasets/stops" not in client.get("/catalog").text
    assert list((files / "stops").iterdir()) == []


def test_the_distributions_are_regenerated_on_the_schedule(tmp_path: Path) -> None:
    """No publication in between: the job's own interval brings a new stop into the files and the survey."""
    settings = Settings(store=f"sqlite:///{tmp_path}/agora.db", opendata_dir=str(tmp_path / "files"),
                        opendata_interval=0.3)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.8, 45.7]}}
        stop_doc = {"id": "urn:ngsi-ld:GtfsStop:sample:S0", "type": STOP, "location": point}
        assert client.post("/ngsi-ld/v1/entities", json=stop_doc).status_code == 201
        assert published(client, {})["state"]["count"] == 1
        late = {**stop_doc, "id": "urn:ngsi-ld:GtfsStop:sample:S-late"}
        assert client.post("/ngsi-ld/v1/entities", json=late).status_code == 201
        for _ in range(250):
            if client.get(f"{DATASETS}/stops").json()["state"]["count"] == 2:
                break
            asyncio.run(asyncio.sleep(0.02))
        assert client.get(f"{DATASETS}/stops").json()["state"]["count"] == 2
        assert b"S-late" in (tmp_path / "files" / "stops" / "data.csv").read_bytes()
        assert "S-late" in client.get("/catalog/datasets/stops/data.geojson").text


def test_an_erasure_stops_the_files_written_before_it_from_being_served(tmp_path: Path) -> None:
    """A subject's entity of a published type (its personal link removed from the files, the rest kept) leaves
    the downloads with the erasure, whichever process erases: the files of an earlier pass are not served any
    more, the store is streamed until the next pass, which an erasure over HTTP starts at once (record 0325)."""
    from broker.gdpr.erase import erase
    from broker.store.sqlite import SqliteStore

    db, files = tmp_path / "agora.db", tmp_path / "files" / "stops"
    settings = Settings(store=f"sqlite:///{db}", opendata_dir=str(tmp_path / "files"))  # an hour's interval
    with TestClient(create_app(settings)) as client:
        link = {"type": "Relationship", "object": "urn:ngsi-ld:Person:home-1"}
        for eid, subject in (("S0", None), ("S-home-1", "urn:ngsi-ld:Person:home-1"), ("S-home-2", "x:home-2")):
            doc = {"id": f"urn:ngsi-ld:GtfsStop:sample:{eid}", "type": STOP}
            if subject is not None:
                doc[AGORA + "dataSubject"] = {**link, "object": subject}
            assert client.post("/ngsi-ld/v1/entities", json=doc).status_code == 201
        assert published(client, {})["state"]["count"] == 3
        assert b"S-home-1" in (files / "data.csv").read_bytes()

        async def erase_as_the_cli_does() -> None:  # another store object on the file, no word to the broker
            store = SqliteStore(str(db))
            await store.open()
            try:
                assert (await erase(store, "urn:ngsi-ld:Person:home-1", by="dpo")).entities == 1
            finally:
                await store.close()

        asyncio.run(erase_as_the_cli_does())
        for fmt in ("csv", "geojson", "jsonld", "ttl"):
            got = client.get(f"/catalog/datasets/stops/data.{fmt}").text
            assert "S-home-1" not in got and "S-home-2" in got, fmt
        assert b"S-home-1" in (files / "data.csv").read_bytes()  # what the download did not serve
        assert "byteSize" not in client.get("/catalog").text  # the size of a file no longer served

        assert client.delete("/ngsi-ld/v1/agora/gdpr/subjects/x:home-2").status_code == 200
        for _ in range(250):  # the erasure over HTTP regenerates at once
            if b"S-home-2" not in (files / "data.csv").read_bytes():
                break
            asyncio.run(asyncio.sleep(0.02))
        assert b"S-home" not in (files / "data.csv").read_bytes()
        assert client.get(f"{DATASETS}/stops").json()["state"]["count"] == 1
        assert "byteSize" in client.get("/catalog").text


# -- agora publish --------------------------------------------------------------------------------------------------
def agora(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_agora_publish_add_list_dump_remove(tmp_path: Path) -> None:
    store = ["publish", "--store", f"sqlite:///{tmp_path}/agora.db"]
    code, _, err = agora(*store, "add", "stops", "--type", "GtfsStop", "--network", "sample", "--title", "Stops",
                         "--description", "Every stop", "--keyword", "bus", "--frequency", "WEEKLY")  # fmt: skip
    assert code == 0, err
    code, out, _ = agora(*store, "list")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(d["id"], d["type"], d["frequency"], d["keywords"]) for d in listed] == [("stops", STOP, "WEEKLY", ["bus"])]
    code, _, err = agora(*store, "dump", "stops", "--format", "csv", "--out", str(tmp_path / "stops.csv"))
    assert code == 0 and "0 entities" in err
    assert (tmp_path / "stops.csv").read_bytes() == b"id,type,longitude,latitude\r\n"
    assert agora(*store, "remove", "stops")[0] == 0
    code, _, err = agora(*store, "remove", "stops")
    assert code == 1 and "no dataset stops" in err
    code, _, err = agora(*store, "add", "people", "--type", "https://schema.org/Person", "--title", "P",
                         "--description", "d")  # fmt: skip
    assert code == 2 and "personal data" in err


def test_agora_publish_help_names_every_action() -> None:
    with pytest.raises(SystemExit) as done:
        agora("publish", "--help")
    assert done.value.code == 0
    assert agora("publish")[0] == 2


def test_agora_dump_and_restore_carry_the_published_datasets(tmp_path: Path) -> None:
    source, target = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    code, _, err = agora("publish", "--store", source, "add", "stops", "--type", "GtfsStop", "--title", "Stops",
                         "--description", "Every stop")  # fmt: skip
    assert code == 0, err
    assert agora("dump", str(tmp_path / "a.dump"), "--store", source)[0] == 0
    assert agora("restore", "--store", target, str(tmp_path / "a.dump"))[0] == 0
    listed = [json.loads(line)["id"] for line in agora("publish", "--store", target, "list")[1].splitlines()]
    assert listed == ["stops"]
