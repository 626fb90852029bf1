"""The subscription index (broker.notify.matching.SubscriptionIndex) only narrows: every subscription a change
notifies is among the candidates the index gives for it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.core.subscriptions import compile_subscription, validated
from broker.ld.termmap import core_termmap
from broker.notify.matching import SubscriptionIndex, fired, trigger_reason
from broker.store.base import Change

CORE = core_termmap()
V = "https://uri.etsi.org/ngsi-ld/default-context/"
AT = "2026-01-01T00:00:00.000000Z"

values = st.one_of(
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from([1.0, 2.5, True, "1", [1, 2], {"a": 1}]),
)
attr_value = st.one_of(
    values.map(lambda v: {"type": "Property", "value": v}),
    st.just({"type": "Relationship", "object": "urn:x:1"}),
    st.lists(st.integers(0, 3), min_size=2, max_size=2, unique=True).map(
        lambda vs: [
            {"type": "Property", "value": v, **({"datasetId": f"urn:d:{v}"} if n else {})} for n, v in enumerate(vs)
        ]
    ),
)
entities = st.builds(
    lambda kind, attrs: {
        "id": "urn:ngsi-ld:E:1",
        "type": [V + kind],
        "createdAt": AT,
        "modifiedAt": AT,
        "attrs": {V + k: (v if isinstance(v, list) else [v]) for k, v in attrs.items()},
    },
    st.sampled_from(["Vehicle", "Vehicle", "Tram"]),
    st.fixed_dictionaries({"speed": attr_value}, optional={"fuel": attr_value}),
)
queries = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "speed==1",
            "speed==1",
            "speed==2",
            "speed==0",
            "speed==2.5",
            "speed==1;fuel==2",
            "fuel==0;speed>0",
            "speed==1|fuel==1",
            "speed>1",
            "speed==1..2",
            "speed==1,2",
            "speed!=1",
            'speed=="1"',
            "speed",
        ]
    ),
)
subscriptions = st.builds(
    lambda types, q, watched: {
        "type": "Subscription",
        "entities": [{"type": t} for t in types] if types else None,
        **({"q": q} if q else {}),
        **({"watchedAttributes": watched or ["speed"]} if watched or not types else {}),
        "notificationTrigger": ["entityCreated", "attributeCreated", "attributeUpdated", "entityDeleted"],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    },
    st.one_of(
        st.just(["Vehicle"]),
        st.just([]),
        st.lists(st.sampled_from(["Vehicle", "Tram", "Vehicle,Tram", "*"]), min_size=1, max_size=2),
    ),
    queries,
    st.one_of(st.none(), st.just(["speed"])),
)


def _compiled(n: int, doc: dict[str, Any]) -> Any:
    body = {k: v for k, v in doc.items() if v is not None}
    body["id"] = f"urn:ngsi-ld:Subscription:{n}"
    return compile_subscription("", validated("", body, CORE, None), CORE)


@settings(max_examples=500, deadline=None)
@given(subs=st.lists(subscriptions, min_size=1, max_size=8), before=st.one_of(st.none(), entities), after=entities)
def test_every_notified_subscription_is_a_candidate(
    subs: list[dict[str, Any]], before: dict[str, Any] | None, after: dict[str, Any]
) -> None:
    compiled = [_compiled(n, doc) for n, doc in enumerate(subs)]
    index = SubscriptionIndex((c, None) for c in compiled)
    for change in (
        Change(1, "", "urn:ngsi-ld:E:1", before, after, AT),
        Change(2, "", "urn:ngsi-ld:E:1", after, None, AT),
    ):
        candidates = {id(sub) for sub, _ in index.candidates(change)}
        notified = [sub for sub in compiled if trigger_reason(sub, change, fired(change)) is not None]
        assert all(id(sub) in candidates for sub in notified), [s.id for s in notified if id(s) not in candidates]


def test_the_index_narrows() -> None:
    compiled = [_compiled(n, {**_doc("Vehicle"), "q": f"speed=={1000 + n}"}) for n in range(100)]
    index = SubscriptionIndex((c, None) for c in compiled)
    entity = {"id": "urn:a", "type": [V + "Vehicle"], "attrs": {V + "speed": [{"type": "Property", "value": 1003}]}}
    assert [s.id for s, _ in index.candidates(Change(1, "", "urn:a", None, entity, AT))] == [compiled[3].id]
    other = {**entity, "type": [V + "Tram"]}
    assert index.candidates(Change(1, "", "urn:a", None, other, AT)) == []


def _doc(kind: str) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": kind}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
