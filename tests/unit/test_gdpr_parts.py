"""The GDPR layer's parts on the memory store (broker.gdpr; records 0321-0323): who a subject is, the export's
shapes, pseudonyms, retention rules and the records of processing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from broker.core.errors import BadRequestData
from broker.core.subscriptions import OWNER
from broker.gdpr import export, records, retention
from broker.gdpr.erase import erase
from broker.gdpr.pseudonym import PREFIX, Pseudonymiser, copy_to_analytics, new_key
from broker.gdpr.retention import GdprRetention
from broker.gdpr.subject import closure
from broker.ld.termmap import TermMap
from broker.store import open_store
from broker.store.base import EntityFilter, HistoryPolicy, InstanceQuery, TemporalInstance, WritePlan
from broker.store.memory import MemoryStore

AGORA = "https://w3id.org/agora/terms#"
METER_T = "https://smartdatamodels.org/dataModel.Device/SmartMeteringObservation"
CONSUMPTION = "https://smartdatamodels.org/dataModel.Device/totalConsumption"
PERSON_T = "https://schema.org/Person"
NODE_T = "https://smartdatamodels.org/dataModel.EnergyCIM/ConnectivityNode"
SUBJECT = "urn:ngsi-ld:Person:c-17"


def ent(eid: str, types: list[str], attrs: dict[str, list[dict[str, Any]]], at: str = "2026-01-01T00:00:00Z") -> Any:
    return {"id": eid, "type": types, "createdAt": at, "modifiedAt": at, "attrs": attrs}


def rel(obj: str) -> list[dict[str, Any]]:
    return [{"type": "Relationship", "object": obj}]


def prop(value: Any, **more: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": value, **more}]


PERSON = ent(SUBJECT, [PERSON_T], {"https://schema.org/familyName": prop("Muster")})
METER = ent("urn:m:1", [METER_T], {AGORA + "dataSubject": rel(SUBJECT), "https://e.org/connectedTo": rel("urn:n:1")})
SERIES = ent("urn:s:1", [METER_T], {"https://e.org/refDevice": rel("urn:m:1"), CONSUMPTION: prop(4.5)})
NODE = ent("urn:n:1", [NODE_T], {"https://e.org/feeds": rel("urn:m:1")})  # links to the meter, not personal
NEIGHBOUR = ent("urn:m:2", [METER_T], {AGORA + "dataSubject": rel("urn:ngsi-ld:Person:c-18")})
BY_NUMBER = ent("urn:t:1", ["https://e.org/Ticket"], {AGORA + "ticketHolder": prop("C-17")})
RIDE = ent("urn:ngsi-ld:GtfsRiderTrip:DTA:C-17:AB1", [AGORA + "GtfsRiderTrip"], {
    AGORA + "ticketHolder": prop("C-17"), AGORA + "boardingStop": rel("urn:ngsi-ld:GtfsStop:DTA:S1"),
    AGORA + "riderType": prop("5"), AGORA + "accompanyingDevice": prop("2"),
})  # fmt: skip


def test_a_subject_is_its_entity_what_names_it_and_what_links_to_those_personally() -> None:
    found = closure([PERSON, METER, SERIES, NODE, NEIGHBOUR, BY_NUMBER], SUBJECT)
    assert list(found) == ["urn:m:1", SUBJECT, "urn:s:1"]  # not the grid node, not the neighbour's meter
    assert list(closure([PERSON, BY_NUMBER], "C-17")) == ["urn:t:1"]  # an identifier value, exactly
    assert closure([BY_NUMBER], "c-17") == {}  # no case folding: never a neighbour's data
    numbered = ent("urn:t:2", ["https://e.org/Ticket"], {AGORA + "ticketHolder": prop(4711)})
    assert list(closure([numbered], "4711")) == ["urn:t:2"]  # a number as the data holds it


def filled() -> MemoryStore:
    store = MemoryStore()

    async def fill() -> None:
        for e in (PERSON, METER, SERIES, NODE, NEIGHBOUR):
            await store.write("", [e["id"]], lambda _c, e=e: WritePlan({e["id"]: e}), create_tenant=True)

    asyncio.run(fill())
    return store


def test_the_export_is_json_ld_and_a_csv_bundle_of_every_instance() -> None:
    store = filled()
    found = asyncio.run(export.collect(store, SUBJECT))
    doc = export.jsonld(found)
    assert doc["type"] == "SubjectAccessExport" and doc["dataSubject"] == SUBJECT
    assert doc["@context"][-1].endswith("ngsi-ld-core-context-v1.9.jsonld")
    terms = TermMap.build(doc["@context"], {})  # PyLD processes the export's @context (JSON-LD 1.1)
    assert terms.expand_term("holdings") == export.GDPR_NS + "holdings"
    assert terms.expand_term("totalConsumption") == CONSUMPTION
    [holding] = doc["holdings"]
    assert sorted(e["id"] for e in holding["entities"]) == ["urn:m:1", SUBJECT, "urn:s:1"]
    assert {e["id"] for e in holding["temporalEvolution"]} == {"urn:m:1", SUBJECT, "urn:s:1"}
    bundle = zipfile.ZipFile(io.BytesIO(export.csv_bundle(found)))
    assert set(bundle.namelist()) >= {"entities.csv", "temporal.csv", "subscriptions.csv", "audit.csv"}
    rows = list(csv.DictReader(io.StringIO(bundle.read("temporal.csv").decode())))
    consumption = [r for r in rows if r["attribute"] == CONSUMPTION]
    assert [(r["entityId"], r["value"], r["personalCategory"]) for r in consumption] == [
        ("urn:s:1", "4.5", "consumption-profile")
    ]


def test_pseudonyms_are_stable_reversible_with_the_key_only_and_hide_identities() -> None:
    key = new_key()
    p = Pseudonymiser(bytes.fromhex(key))
    assert p.pseudonym(SUBJECT) == p.pseudonym(SUBJECT) != p.pseudonym("urn:ngsi-ld:Person:c-18")
    assert p.pseudonym(SUBJECT).startswith(PREFIX) and "c-17" not in p.pseudonym(SUBJECT)
    assert p.reidentify(p.pseudonym(SUBJECT)) == SUBJECT
    with pytest.raises(BadRequestData):
        Pseudonymiser(bytes.fromhex(new_key())).reidentify(p.pseudonym(SUBJECT))  # another key
    with pytest.raises(BadRequestData):
        Pseudonymiser(bytes.fromhex(key), "billing").reidentify(p.pseudonym(SUBJECT))  # another purpose
    person = p.pseudonymise_entity(PERSON)
    assert person["id"] == p.pseudonym(SUBJECT) and person["attrs"] == {}  # the name is left out
    series = p.pseudonymise_entity(SERIES, {"urn:m:1"})
    assert series["attrs"]["https://e.org/refDevice"][0]["object"] == p.pseudonym("urn:m:1")
    assert series["attrs"][CONSUMPTION][0]["value"] == 4.5  # what the analysis is for
    ride = p.pseudonymise_entity(RIDE)  # a GTFS-ride rider trip (record 0324): origin and destination stay
    assert ride["id"] == p.pseudonym(RIDE["id"]) and ride["attrs"][AGORA + "ticketHolder"][0]["value"] == p.pseudonym(
        "C-17")
    assert set(ride["attrs"]) == {AGORA + "ticketHolder", AGORA + "boardingStop"}  # the health marks left out
    assert ride["attrs"][AGORA + "boardingStop"][0]["object"] == "urn:ngsi-ld:GtfsStop:DTA:S1"


def test_copy_to_analytics_writes_pseudonymised_entities_and_history() -> None:
    store, p = filled(), Pseudonymiser(bytes.fromhex(new_key()))
    entities, instances = asyncio.run(copy_to_analytics(store, "", "analytics", p))
    assert entities == 5 and instances > 0
    ids = asyncio.run(store.find_ids("analytics", EntityFilter()))
    assert SUBJECT not in ids and p.pseudonym(SUBJECT) in ids and "urn:n:1" in ids
    history = asyncio.run(store.temporal_instances("analytics", [p.pseudonym("urn:m:1")], InstanceQuery()))
    [subject_link] = history[p.pseudonym("urn:m:1")][AGORA + "dataSubject"]
    assert subject_link.body["object"] == p.pseudonym(SUBJECT)


def test_retention_rules_parse_terms_and_reject_bad_pairs() -> None:
    [meter, plate] = retention.parse_rules("SmartMeteringObservation=P2Y, licensePlate=P30D")
    assert (meter.iri, meter.duration.months) == (METER_T, 24)
    assert plate.iri == AGORA + "licensePlate" and plate.duration.micros == 30 * 86_400_000_000
    for bad in ("P2Y", "x=forever", "x=PT0S"):
        with pytest.raises(ValueError):
            retention.parse_rules(bad)


def test_retention_expires_old_instances_of_an_attribute_and_old_entities_of_a_type() -> None:
    store = filled()
    old = TemporalInstance(CONSUMPTION, "urn:i:old", prop(1.0, observedAt="2020-01-01T00:00:00Z")[0])
    asyncio.run(store.temporal_add("", "urn:s:1", None, [old], create=False))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    [rule] = retention.parse_rules("totalConsumption=P1Y")
    assert asyncio.run(retention.run_once(store, [rule], now)) == (0, 1)
    kept = asyncio.run(store.temporal_instances("", ["urn:s:1"], InstanceQuery(attrs=frozenset({CONSUMPTION}))))
    assert [i.instance_id for i in kept["urn:s:1"][CONSUMPTION]] != ["urn:i:old"]
    [by_type] = retention.parse_rules("SmartMeteringObservation=P3M")  # the meters were modified in January
    entities, _ = asyncio.run(retention.run_once(store, [by_type], now))
    assert entities == 3 and asyncio.run(store.find_ids("", EntityFilter(types=frozenset({METER_T})))) == []


def test_records_of_processing_follow_the_marks_rules_and_retention() -> None:
    store = MemoryStore()
    rule = {"id": "billing", "effect": "allow", "actions": ["read"], "roles": ["billing"], "types": [METER_T]}
    asyncio.run(store.put_policy(rule))
    doc = asyncio.run(records.records(store, retention.parse_rules("SmartMeteringObservation=P2Y"), "City DPO"))
    billing = next(a for a in doc["activities"] if a["purpose"] == "billing and grid operation")
    assert billing["legalBasis"].endswith("art. 6(1)(b)")
    assert METER_T in billing["categoriesOfPersonalData"]["consumption-profile"]
    assert billing["recipients"] == ["role:admin", "role:billing"]
    assert billing["timeLimitsForErasure"] == ["SmartMeteringObservation=P2Y"]
    text = records.markdown(doc)
    assert text.startswith("# Records of processing activities") and "Controller: City DPO" in text


def test_erasure_takes_the_subjects_own_subscriptions_and_the_history_its_deletion_recorded() -> None:
    store = MemoryStore()
    store.history = HistoryPolicy(record=False)  # written while history was off: no temporal entity yet
    asyncio.run(store.write("", [METER["id"]], lambda _c: WritePlan({METER["id"]: METER}), create_tenant=True))
    store.history = HistoryPolicy(record=True, keep_on_delete=True)  # the deletion now records a deletedAt
    owner = {"subject": SUBJECT, "issuer": None, "roles": ["viewer"]}
    body = {"id": "urn:sub:own", "type": "Subscription", "entities": [{"type": "Pipe"}], OWNER: owner}
    asyncio.run(store.create_subscription("water", "urn:sub:own", body))
    report = asyncio.run(erase(store, SUBJECT, by="dpo"))
    assert report.subscriptions == 1 and asyncio.run(store.list_subscriptions()) == []
    assert report.entities == 1
    assert asyncio.run(store.temporal_entities("", EntityFilter())) == []  # no deletedAt instance left behind


def test_the_gdpr_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/agora.db"
    assert main(["gdpr", "key"]) == 0
    key = tmp_path / "key"
    key.write_text(capsys.readouterr().out)
    store = open_store(url)

    async def fill() -> None:
        await store.open()
        await store.write("", [METER["id"]], lambda _c: WritePlan({METER["id"]: METER}), create_tenant=True)
        await store.close()

    asyncio.run(fill())
    assert main(["gdpr", "--store", url, "pseudonymise", "--to", "analytics", "--key-file", str(key)]) == 0
    assert main(["gdpr", "--store", url, "records", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["activities"]
    pseudonym = Pseudonymiser.from_file(key).pseudonym("urn:m:1")
    assert main(["gdpr", "reidentify", pseudonym, "--key-file", str(key)]) == 0
    assert capsys.readouterr().out.strip() == "urn:m:1"
    assert main(["gdpr", "--store", url, "retain"]) == 2  # no rule configured: said, not ignored
    assert "AGORA_GDPR_RETENTION" in capsys.readouterr().err
    assert main(["gdpr", "reidentify", "urn:x", "--key-file", str(key)]) == 2


def test_the_retention_job_of_serve_expires_on_its_own() -> None:
    store = filled()

    async def run() -> list[str]:
        job = GdprRetention(store, retention.parse_rules("SmartMeteringObservation=P1D"), interval=60)
        job.start()
        try:
            for _ in range(200):  # the first pass runs at once
                if not await store.find_ids("", EntityFilter(types=frozenset({METER_T}))):
                    break
                await asyncio.sleep(0.01)
        finally:
            await job.stop()
        return await store.find_ids("", EntityFilter())

    assert asyncio.run(run()) == ["urn:n:1", SUBJECT]  # in id order; the meters (modified in January) are gone


def test_the_notifier_forgets_the_queued_notifications_of_erased_entities() -> None:
    from collections import deque

    from broker.ld.resolver import ContextResolver
    from broker.notify.notifier import Job, Notifier, _Lane
    from broker.store.base import Change

    async def run() -> tuple[int, list[str], int]:
        notifier = Notifier(MemoryStore(), ContextResolver())
        jobs = [Job(None, None, Change(seq, "", eid, None, None, "t"), "entityUpdated", frozenset())  # type: ignore[arg-type]
                for seq, eid in ((1, "urn:m:1"), (2, "urn:n:1"), (3, "urn:m:1"))]  # fmt: skip
        notifier._lanes[("", "urn:sub:1")] = _Lane(queue=deque(jobs))
        notifier._open.update({1: 1, 2: 1, 3: 1})
        dropped = notifier.forget("", frozenset({"urn:m:1"}))
        kept = [j.change.entity_id for j in notifier._lanes[("", "urn:sub:1")].queue]
        await notifier.stop()
        return dropped, kept, notifier._floor

    dropped, kept, floor = asyncio.run(run())
    assert (dropped, kept) == (2, ["urn:n:1"])
    assert floor == 1  # change 1 is finished; change 2 still waits in its lane, so 3 is not passed yet
