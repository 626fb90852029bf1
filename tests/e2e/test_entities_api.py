"""Entity operations end to end through a real uvicorn server (clauses 5.6, 6.4 to 6.7)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.e2e.helpers import CORE, LD, link, uid, vehicle

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def create(http: httpx.Client, body: dict, **kw: object) -> httpx.Response:
    r = http.post(f"{BASE}/entities", json=body, **kw)  # type: ignore[arg-type]
    assert r.status_code == 201, r.text
    return r


def test_create_then_retrieve_round_trips_every_attribute_kind(http: httpx.Client) -> None:
    eid = uid("Vehicle")
    body = vehicle(
        eid,
        name={"type": "LanguageProperty", "languageMap": {"en": "Bus", "fr": "Autobus"}},
        category={"type": "VocabProperty", "vocab": "bus"},
        config={"type": "JsonProperty", "json": {"a": {"b": [1, 2]}}},
        readings={"type": "ListProperty", "valueList": [1, 2, 3]},
        route={"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Stop:1", "urn:ngsi-ld:Stop:2"]},
    )
    r = create(http, body)
    assert r.headers["location"] == f"{BASE}/entities/{eid}"
    got = http.get(f"{BASE}/entities/{eid}")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/json")
    assert CORE in got.headers["link"]
    doc = got.json()
    assert doc == body


def test_create_twice_is_already_exists(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    r = http.post(f"{BASE}/entities", json=vehicle(eid))
    assert r.status_code == 409
    assert r.json()["type"] == ERR + "AlreadyExists"


def test_bad_input_is_rejected_and_writes_nothing(http: httpx.Client) -> None:
    eid = uid()
    cases = [
        {"id": "not a uri", "type": "T"},
        {"type": "T"},
        {"id": eid},
        {"id": eid, "type": "T", "bad name": {"type": "Property", "value": 1}},
        {"id": eid, "type": "T", "p": {"type": "Property"}},
        {"id": eid, "type": "T", "r": {"type": "Relationship", "object": "no uri"}},
        {"id": eid, "type": "T", "g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}},
        {"id": eid, "type": "T", "p": {"type": "Property", "value": 1, "observedAt": "yesterday"}},
        {"id": eid, "type": "T", "p": {"type": "Property", "value": "urn:ngsi-ld:null"}},
        {"id": eid, "type": "T", "p": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]},
    ]
    for body in cases:
        r = http.post(f"{BASE}/entities", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["type"] == ERR + "BadRequestData", body
        assert r.headers["content-type"].startswith("application/json")
    assert http.get(f"{BASE}/entities/{eid}").status_code == 404


def test_malformed_json_is_invalid_request(http: httpx.Client) -> None:
    r = http.post(f"{BASE}/entities", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["type"] == ERR + "InvalidRequest"


def test_content_negotiation_rules(http: httpx.Client) -> None:
    eid = uid()
    body = vehicle(eid)
    r = http.post(f"{BASE}/entities", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    # @context inside an application/json body
    r = http.post(f"{BASE}/entities", json={**body, "@context": CORE})
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    # ld+json without @context
    r = http.post(f"{BASE}/entities", json=body, headers={"Content-Type": LD})
    assert r.status_code == 400
    # ld+json with @context and a Link header too
    r = http.post(f"{BASE}/entities", json={**body, "@context": CORE}, headers={"Content-Type": LD, **link(CORE)})
    assert r.status_code == 400
    # ld+json with its @context is fine
    r = http.post(f"{BASE}/entities", json={**body, "@context": CORE}, headers={"Content-Type": LD})
    assert r.status_code == 201
    got = http.get(f"{BASE}/entities/{eid}", headers={"Accept": LD})
    assert got.headers["content-type"].startswith(LD)
    assert got.json()["@context"] == CORE
    assert "link" not in got.headers
    assert http.get(f"{BASE}/entities/{eid}", headers={"Accept": "text/csv"}).status_code == 406


def test_missing_content_length_is_411(broker_server: object) -> None:
    import socket
    from urllib.parse import urlparse

    url = urlparse(broker_server.url)  # type: ignore[attr-defined]
    with socket.create_connection((url.hostname, url.port)) as s:
        s.sendall(
            b"POST /ngsi-ld/v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\n\r\n"
        )
        reply = s.recv(4096).decode()
    assert reply.split()[1] == "411", reply


def test_user_context_is_a_lens(http: httpx.Client, context_server: str) -> None:
    """Two clients with different contexts see the same data (ARCHITECTURE decision 1)."""
    eid = uid("Vehicle")
    r = http.post(
        f"{BASE}/entities",
        json={"id": eid, "type": "Vehicle", "speed": {"type": "Property", "value": 5}},
        headers=link(context_server + "/a.jsonld"),
    )
    assert r.status_code == 201, r.text
    a = http.get(f"{BASE}/entities/{eid}", headers=link(context_server + "/a.jsonld")).json()
    assert a["type"] == "Vehicle" and a["speed"]["value"] == 5
    core = http.get(f"{BASE}/entities/{eid}").json()
    assert core["type"] == "https://example.org/city#Vehicle"
    assert core["https://example.org/city#speed"]["value"] == 5
    b = http.get(f"{BASE}/entities/{eid}", headers=link(context_server + "/b.jsonld")).json()
    assert b["type"] == "city:Vehicle" or b["type"] == "Car"


def test_unreachable_context_is_504(http: httpx.Client) -> None:
    from tests.support.servers import free_port

    r = http.get(f"{BASE}/entities/{uid()}", headers=link(f"http://127.0.0.1:{free_port()}/nothing.jsonld"))
    assert r.status_code == 504
    assert r.json()["type"] == ERR + "LdContextNotAvailable"


def test_representations(http: httpx.Client) -> None:
    eid = uid("Vehicle")
    create(http, vehicle(eid, name={"type": "LanguageProperty", "languageMap": {"en": "Bus", "fr": "Autobus"}}))
    kv = http.get(f"{BASE}/entities/{eid}", params={"options": "keyValues"}).json()
    assert kv["speed"] == 80
    assert kv["isParked"] == "urn:ngsi-ld:OffStreetParking:Downtown1"
    assert kv["location"] == {"type": "Point", "coordinates": [2.35, 48.85]}
    assert kv["name"] == {"en": "Bus", "fr": "Autobus"}
    assert http.get(f"{BASE}/entities/{eid}", params={"format": "simplified"}).json() == kv
    concise = http.get(f"{BASE}/entities/{eid}", params={"format": "concise"}).json()
    assert concise["speed"] == {"value": 80, "unitCode": "KMH", "observedAt": "2026-11-25T10:00:00Z"}
    assert concise["isParked"] == {"object": "urn:ngsi-ld:OffStreetParking:Downtown1"}
    assert concise["location"] == {"type": "Point", "coordinates": [2.35, 48.85]}
    fr = http.get(f"{BASE}/entities/{eid}", params={"lang": "fr"}).json()
    assert fr["name"] == {"type": "Property", "value": "Autobus", "lang": "fr"}
    sys_attrs = http.get(f"{BASE}/entities/{eid}", params={"options": "sysAttrs"}).json()
    assert sys_attrs["createdAt"] <= sys_attrs["modifiedAt"]
    assert "createdAt" in sys_attrs["speed"]
    assert "createdAt" not in http.get(f"{BASE}/entities/{eid}").json()
    picked = http.get(f"{BASE}/entities/{eid}", params={"attrs": "speed"}).json()
    assert set(picked) == {"id", "type", "speed"}
    r = http.get(f"{BASE}/entities/{eid}", params={"format": "nonsense"})
    assert r.status_code == 400
    r = http.get(f"{BASE}/entities/{eid}", params={"unknownParam": "1"})
    assert r.status_code == 400


def test_concise_input_is_accepted(http: httpx.Client) -> None:
    eid = uid()
    create(
        http,
        {
            "id": eid,
            "type": "T",
            "a": 1,
            "b": {"value": 2, "unitCode": "MTR"},
            "c": {"object": "urn:x:1"},
            "loc": {"type": "Point", "coordinates": [1, 2]},
        },
    )
    doc = http.get(f"{BASE}/entities/{eid}").json()
    assert doc["a"] == {"type": "Property", "value": 1}
    assert doc["b"] == {"type": "Property", "value": 2, "unitCode": "MTR"}
    assert doc["c"] == {"type": "Relationship", "object": "urn:x:1"}
    assert doc["loc"] == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}


def test_multi_instance_attributes_by_dataset_id(http: httpx.Client) -> None:
    eid = uid()
    speed = [
        {"type": "Property", "value": 55, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        {"type": "Property", "value": 54},
    ]
    create(http, {"id": eid, "type": "T", "speed": speed})
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"] == speed
    r = http.delete(f"{BASE}/entities/{eid}/attrs/speed", params={"datasetId": "urn:ngsi-ld:Dataset:gps"})
    assert r.status_code == 204
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"] == {"type": "Property", "value": 54}
    kv = http.get(f"{BASE}/entities/{eid}", params={"options": "keyValues"}).json()
    assert kv["speed"] == 54


def test_sub_attributes_at_depth(http: httpx.Client) -> None:
    eid = uid()
    speed = {
        "type": "Property",
        "value": 1,
        "accuracy": {"type": "Property", "value": 0.1, "method": {"type": "Relationship", "object": "urn:m:1"}},
    }
    create(http, {"id": eid, "type": "T", "speed": speed})
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"] == speed


def test_append_and_no_overwrite(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    r = http.post(f"{BASE}/entities/{eid}/attrs", json={"color": {"type": "Property", "value": "red"}})
    assert r.status_code == 204
    r = http.post(
        f"{BASE}/entities/{eid}/attrs",
        params={"options": "noOverwrite"},
        json={"speed": {"type": "Property", "value": 1}, "seats": {"type": "Property", "value": 40}},
    )
    assert r.status_code == 207
    # clause 6.3.6: a partial success names attributes by their fully qualified names
    assert r.json()["updated"] == ["https://uri.etsi.org/ngsi-ld/default-context/seats"]
    assert r.json()["notUpdated"][0]["attributeName"] == "https://uri.etsi.org/ngsi-ld/default-context/speed"
    doc = http.get(f"{BASE}/entities/{eid}").json()
    assert doc["speed"]["value"] == 80 and doc["seats"]["value"] == 40 and doc["color"]["value"] == "red"


def test_update_attrs_replaces_and_null_deletes(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    r = http.patch(
        f"{BASE}/entities/{eid}/attrs",
        json={"speed": {"type": "Property", "value": 10}, "isParked": "urn:ngsi-ld:null"},
    )
    assert r.status_code == 204, r.text
    doc = http.get(f"{BASE}/entities/{eid}").json()
    assert doc["speed"] == {"type": "Property", "value": 10}
    assert "isParked" not in doc


def test_partial_attribute_update_merges_into_instance(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    r = http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"value": 99})
    assert r.status_code == 204, r.text
    speed = http.get(f"{BASE}/entities/{eid}").json()["speed"]
    assert speed == {"type": "Property", "value": 99, "unitCode": "KMH", "observedAt": "2026-11-25T10:00:00Z"}
    assert http.patch(f"{BASE}/entities/{eid}/attrs/nothere", json={"value": 1}).status_code == 404
    assert http.patch(f"{BASE}/entities/{uid()}/attrs/speed", json={"value": 1}).status_code == 404


def test_replace_attribute(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    r = http.put(f"{BASE}/entities/{eid}/attrs/speed", json={"type": "Property", "value": 3})
    assert r.status_code == 204
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"] == {"type": "Property", "value": 3}
    assert http.put(f"{BASE}/entities/{eid}/attrs/none", json={"type": "Property", "value": 3}).status_code == 404


def test_delete_attribute_and_delete_all(http: httpx.Client) -> None:
    eid = uid()
    create(
        http,
        {
            "id": eid,
            "type": "T",
            "p": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2, "datasetId": "urn:d:1"}],
        },
    )
    assert http.delete(f"{BASE}/entities/{eid}/attrs/p", params={"deleteAll": "true"}).status_code == 204
    assert "p" not in http.get(f"{BASE}/entities/{eid}").json()
    assert http.delete(f"{BASE}/entities/{eid}/attrs/p").status_code == 404


def test_merge_patch(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    r = http.patch(
        f"{BASE}/entities/{eid}",
        json={"speed": {"value": 81}, "isParked": "urn:ngsi-ld:null", "new": {"type": "Property", "value": "x"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    doc = http.get(f"{BASE}/entities/{eid}").json()
    assert doc["speed"] == {"type": "Property", "value": 81, "unitCode": "KMH", "observedAt": "2026-11-25T10:00:00Z"}
    assert "isParked" not in doc and doc["new"]["value"] == "x"
    # simplified input keeps the existing attribute's type
    r = http.patch(
        f"{BASE}/entities/{eid}",
        params={"options": "keyValues"},
        json={"location": {"type": "Point", "coordinates": [1, 1]}, "speed": 7},
    )
    assert r.status_code == 204, r.text
    doc = http.get(f"{BASE}/entities/{eid}").json()
    assert doc["location"]["type"] == "GeoProperty" and doc["speed"]["value"] == 7
    assert http.patch(f"{BASE}/entities/{uid()}", json={"a": 1}).status_code == 404


def test_replace_entity(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    before = http.get(f"{BASE}/entities/{eid}", params={"options": "sysAttrs"}).json()
    r = http.put(f"{BASE}/entities/{eid}", json={"type": "Car", "wheels": {"type": "Property", "value": 4}})
    assert r.status_code == 204, r.text
    after = http.get(f"{BASE}/entities/{eid}", params={"options": "sysAttrs"}).json()
    assert after["type"] == "Car" and set(after) == {"id", "type", "wheels", "createdAt", "modifiedAt"}
    assert after["createdAt"] == before["createdAt"]


def test_delete_entity(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    assert http.delete(f"{BASE}/entities/{eid}").status_code == 204
    r = http.get(f"{BASE}/entities/{eid}")
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"
    assert http.delete(f"{BASE}/entities/{eid}").status_code == 404
    assert http.delete(f"{BASE}/entities/not-a-uri").status_code == 400


def test_retrieve_with_type_selector(http: httpx.Client) -> None:
    eid = uid()
    create(http, vehicle(eid))
    assert http.get(f"{BASE}/entities/{eid}", params={"type": "Vehicle"}).status_code == 200
    assert http.get(f"{BASE}/entities/{eid}", params={"type": "Boat"}).status_code == 404


def test_batch_operations(http: httpx.Client) -> None:
    a, b = uid(), uid()
    r = http.post(f"{BASE}/entityOperations/create", json=[vehicle(a), vehicle(b)])
    assert r.status_code == 201 and sorted(r.json()) == sorted([a, b])
    r = http.post(f"{BASE}/entityOperations/create", json=[vehicle(a), {"id": "bad", "type": "T"}, vehicle(uid())])
    assert r.status_code == 207
    body = r.json()
    assert len(body["success"]) == 1
    assert {e["error"]["type"] for e in body["errors"]} == {ERR + "AlreadyExists", ERR + "BadRequestData"}
    c = uid()
    r = http.post(
        f"{BASE}/entityOperations/upsert", json=[vehicle(a, speed={"type": "Property", "value": 1}), vehicle(c)]
    )
    assert r.status_code == 201 and r.json() == [c]
    assert "isParked" in http.get(f"{BASE}/entities/{a}").json()
    r = http.post(
        f"{BASE}/entityOperations/upsert",
        params={"options": "update"},
        json=[{"id": a, "type": "Vehicle", "speed": {"type": "Property", "value": 2}}],
    )
    assert r.status_code == 204
    doc = http.get(f"{BASE}/entities/{a}").json()
    assert doc["speed"]["value"] == 2 and "isParked" in doc
    r = http.post(
        f"{BASE}/entityOperations/upsert",
        json=[{"id": a, "type": "Vehicle", "speed": {"type": "Property", "value": 3}}],
    )
    assert r.status_code == 204
    assert "isParked" not in http.get(f"{BASE}/entities/{a}").json()
    r = http.post(f"{BASE}/entityOperations/update", json=[{"id": b, "type": "Vehicle", "x": 1}, {"id": uid(), "x": 1}])
    assert r.status_code == 207
    assert r.json()["success"] == [b] and r.json()["errors"][0]["error"]["type"] == ERR + "ResourceNotFound"
    r = http.post(f"{BASE}/entityOperations/merge", json=[{"id": b, "speed": {"value": 5}}])
    assert r.status_code == 204
    assert http.get(f"{BASE}/entities/{b}").json()["speed"]["unitCode"] == "KMH"
    r = http.post(f"{BASE}/entityOperations/delete", json=[a, b, c])
    assert r.status_code == 204
    r = http.post(f"{BASE}/entityOperations/delete", json=[a])
    assert r.status_code == 207
    assert http.post(f"{BASE}/entityOperations/delete", json={"not": "a list"}).status_code == 400


def test_purge(http: httpx.Client) -> None:
    kind = "Purgeable" + uid()[-6:]
    ids = [uid() for _ in range(3)]
    for i in ids:
        create(http, {"id": i, "type": kind, "a": 1, "b": 2})
    assert http.delete(f"{BASE}/entities").status_code == 400
    assert http.delete(f"{BASE}/entities", params={"type": kind, "drop": "a"}).status_code == 204
    assert set(http.get(f"{BASE}/entities/{ids[0]}").json()) == {"id", "type", "b"}
    assert http.delete(f"{BASE}/entities", params={"type": kind}).status_code == 204
    assert all(http.get(f"{BASE}/entities/{i}").status_code == 404 for i in ids)


def test_tenants_are_isolated(http: httpx.Client) -> None:
    tenant = "t" + uid()[-8:]
    eid = uid()
    r = http.get(f"{BASE}/entities/{eid}", headers={"NGSILD-Tenant": tenant})
    assert r.status_code == 404 and r.json()["type"] == ERR + "NonexistentTenant"
    create(http, vehicle(eid), headers={"NGSILD-Tenant": tenant})
    got = http.get(f"{BASE}/entities/{eid}", headers={"NGSILD-Tenant": tenant})
    assert got.status_code == 200 and got.headers["NGSILD-Tenant"] == tenant
    assert http.get(f"{BASE}/entities/{eid}").status_code == 404
    r = http.patch(f"{BASE}/entities/{eid}", json={"a": 1}, headers={"NGSILD-Tenant": "other" + tenant})
    assert r.json()["type"] == ERR + "NonexistentTenant"


def test_source_identity(http: httpx.Client) -> None:
    r = http.get(f"{BASE}/info/sourceIdentity")
    body = r.json()
    assert r.status_code == 200 and body["type"] == "ContextSourceIdentity"
    assert body["contextSourceUptime"].startswith("P") and body["id"].startswith("urn:")


def test_body_over_limit_is_413(http: httpx.Client) -> None:
    big = {"id": uid(), "type": "T", "blob": "x" * (9 * 1024 * 1024)}
    r = http.post(f"{BASE}/entities", json=big)
    assert r.status_code == 413


def test_unknown_path_and_method(http: httpx.Client) -> None:
    assert http.get(f"{BASE}/nothing").status_code == 404
    r = http.post(f"{BASE}/entities/{uid()}")
    assert r.status_code == 405


def test_dataset_id_selects_instances_on_retrieval(http: httpx.Client) -> None:
    eid = uid()
    speed = [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        {"type": "Property", "value": 3, "datasetId": "urn:ngsi-ld:Dataset:radar"},
    ]
    create(http, {"id": eid, "type": "T", "speed": speed, "name": "x"})
    doc = http.get(f"{BASE}/entities/{eid}", params={"datasetId": "urn:ngsi-ld:Dataset:gps"}).json()
    assert doc == {"id": eid, "type": "T", "speed": speed[1]}
    doc = http.get(f"{BASE}/entities/{eid}", params={"datasetId": "@none,urn:ngsi-ld:Dataset:radar"}).json()
    assert doc == {"id": eid, "type": "T", "speed": [speed[0], speed[2]], "name": {"type": "Property", "value": "x"}}
    assert http.get(f"{BASE}/entities/{eid}", params={"datasetId": "not a uri"}).status_code == 400


def test_a_chunked_body_without_content_length_is_411(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "urn:ngsi-ld:Thing:chunked", "type": "Thing"}'

    r = http.post("/ngsi-ld/v1/entities", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 411
    assert http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:chunked").status_code == 404
