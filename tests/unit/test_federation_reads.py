"""The pure parts of the distributed reads (broker.federation.reads, broker.core.query.merged; records 0182-0187):
what a source is asked, what its answer warns of, how fragments merge through the caller's access view."""

from __future__ import annotations

from typing import Any

from broker.core.access import UNRESTRICTED, compile_view, parse_rule
from broker.core.caller import Caller
from broker.core.query import merged
from broker.core.registrations import compile_registration, csf_holds
from broker.core.temporal import TemporalView, TimeQuery
from broker.federation.forwarder import SourceError, SourceReply
from broker.federation.reads import Answer, merge_temporal, query_params, reply_warning, temporal_entity
from broker.ld.termmap import core_termmap
from broker.query import parse_query

V = "https://uri.etsi.org/ngsi-ld/default-context/"
TM = core_termmap()


def _reg(mode: str = "inclusive", **info: Any) -> Any:
    doc = {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{mode}",
        "type": "ContextSourceRegistration",
        "endpoint": "http://water.example:1026",
        "mode": mode,
        "registrationName": "water",
        "information": [info or {"entities": [{"type": [V + "Pipe"]}]}],
    }
    return compile_registration("", doc)


def _entity(eid: str, **attrs: Any) -> dict[str, Any]:
    return {
        "id": eid,
        "type": [V + "Pipe"],
        "attrs": {V + k: [{"type": "Property", "value": v}] for k, v in attrs.items()},
    }


def test_a_source_is_asked_only_what_its_registration_offers() -> None:
    reg = _reg(entities=[{"type": [V + "Pipe"]}], propertyNames=[V + "flow"])
    query = parse_query({"type": "Pipe,Pump", "q": "flow>2", "georel": "near;maxDistance==100", "geometry": "Point",
                         "coordinates": "[2.3,48.8]"}, TM)  # fmt: skip
    params = query_params(reg, query, frozenset({V + "flow", V + "pressure"}), TM)
    assert params["type"] == "Pipe" and params["attrs"] == "flow"  # 4.3.6.1: no types or attributes it does not offer
    assert params["q"] == "flow>2" and params["georel"] == "near;maxDistance==100"
    assert params["coordinates"] == "[2.3,48.8]" and params["options"] == "sysAttrs"
    assert query_params(_reg(), parse_query({"idPattern": "^urn:a"}, TM), None, TM)["type"] == "Pipe"


def test_warnings_follow_table_6_3_17_1() -> None:
    def reply(status: int) -> SourceReply:
        return SourceReply("urn:r", "http://w.example:9/x", status, {}, {"detail": 'no "way"'})

    assert reply_warning(reply(200), "urn:r") is None and reply_warning(reply(404), "urn:r") is None
    assert (
        reply_warning(reply(403), "urn:r")
        == '299 w.example:9 "registration urn:r: the source answered 403: no \\"way\\""'
    )
    assert SourceError("urn:r", "http://w.example", "timeout", "slow").warning().startswith("199 w.example ")
    assert SourceError("urn:r", "http://w.example", "garbage", "html").warning().startswith("111 ")


def test_csf_tests_the_registration_members() -> None:
    assert csf_holds(_reg(), parse_query({"csf": 'registrationName=="water"'}, TM).csf)  # type: ignore[arg-type]
    assert not csf_holds(_reg(), parse_query({"csf": "mode==exclusive"}, TM).csf)  # type: ignore[arg-type]


def test_merged_entities_pass_the_callers_access_view() -> None:
    answer = Answer()
    answer.add(_entity("urn:b", flow=1, secret=2), _reg())
    answer.add(_entity("urn:a", flow=5), _reg("auxiliary"))
    local = [_entity("urn:a", flow=3)]
    assert [e["id"] for e in merged(local, answer, UNRESTRICTED)] == ["urn:a", "urn:b"]
    assert merged(local, answer, UNRESTRICTED)[0]["attrs"][V + "flow"][0]["value"] == 3  # auxiliary never wins
    rules = [
        parse_rule({"id": "r", "roles": ["operator"], "actions": ["read"]}, TM.expand_term),
        parse_rule({"id": "d", "effect": "deny", "roles": ["operator"], "actions": ["read"], "attrs": ["secret"]},
                   TM.expand_term),
    ]  # fmt: skip
    view = compile_view(rules, Caller("", "alice", ("operator",)), frozenset())
    seen = {e["id"]: e for e in merged(local, answer, view)}
    assert set(seen["urn:b"]["attrs"]) == {V + "flow"}  # the remote entity's secret stays hidden
    nobody = compile_view(rules, Caller("", "bob", ("reader",)), frozenset())
    assert merged(local, answer, nobody) == []


def test_temporal_parts_unite_instances_and_keep_the_last_n() -> None:
    def doc(*values: tuple[str, int, str]) -> dict[str, Any]:
        flow = [{"type": "Property", "value": v, "observedAt": at, "instanceId": iid} for iid, v, at in values]
        return {"id": "urn:a", "type": "Pipe", "flow": flow}

    here = temporal_entity(doc(("urn:i:1", 1, "2026-01-01T00:00:00Z"), ("urn:i:3", 3, "2026-03-01T00:00:00Z")), TM)
    there = temporal_entity(doc(("urn:i:2", 2, "2026-02-01T00:00:00Z"), ("urn:i:3", 3, "2026-03-01T00:00:00Z")), TM)
    view = TemporalView(time=TimeQuery())
    got = merge_temporal([here, there], view)
    assert [i.body["value"] for i in got.attrs[V + "flow"]] == [1, 2, 3]
    last = merge_temporal([here, there], TemporalView(time=TimeQuery(), last_n=1))
    assert [i.instance_id for i in last.attrs[V + "flow"]] == ["urn:i:3"]


def test_context_source_info_from_the_request_is_taken_from_its_headers() -> None:
    from broker.federation.forwarder import Forwarder

    doc = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:csi",
        "type": "ContextSourceRegistration",
        "endpoint": "http://water.example:1026",
        "information": [{"entities": [{"type": [V + "Pipe"]}]}],
        "contextSourceInfo": [
            {"key": "Authorization", "value": "urn:ngsi-ld:request"},
            {"key": "X-Absent", "value": "urn:ngsi-ld:request"},
            {"key": "X-Fixed", "value": "k"},
        ],
    }
    headers = Forwarder("city").headers(compile_registration("", doc), Caller(), None, None, {"authorization": "t"})
    assert headers["Authorization"] == "t" and headers["X-Fixed"] == "k" and "X-Absent" not in headers
