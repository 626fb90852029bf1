"""A random sequence of entity operations on the real SQLite store equals the same sequence on a plain model.

The model below is written from the clause text alone (5.6.1 to 5.6.6, 5.6.17, 5.6.18), with plain dicts in the
client's terms; the broker runs the same operations through its core over SQLite and the term maps. After every
step each entity must look the same through the NGSI-LD normalized representation.
"""

from __future__ import annotations

import asyncio
import copy
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.core.caller import Caller
from broker.core.entities import Entities, MergeOptions
from broker.core.errors import AlreadyExists, NgsiLdError, ResourceNotFound
from broker.core.render import View, render
from broker.ld.termmap import core_termmap
from broker.store.sqlite import SqliteStore

IDS = st.sampled_from([f"urn:ngsi-ld:T:{i}" for i in range(4)])
NAMES = st.sampled_from(["a", "b", "c"])
DATASETS = st.sampled_from([None, "urn:ngsi-ld:Dataset:x", "urn:ngsi-ld:Dataset:y"])
VALUES = st.one_of(st.integers(-5, 5), st.sampled_from(["s", "t"]), st.lists(st.integers(0, 3), max_size=2))
NULL = "urn:ngsi-ld:null"


@st.composite
def instances(draw: st.DrawFn, allow_null: bool = False) -> dict[str, Any]:
    inst: dict[str, Any] = {"type": "Property", "value": draw(VALUES)}
    if allow_null and draw(st.integers(0, 4)) == 0:
        inst["value"] = NULL
    if draw(st.booleans()):
        inst["unitCode"] = draw(st.sampled_from(["MTR", "KMH"]))
    dataset = draw(DATASETS)
    if dataset:
        inst["datasetId"] = dataset
    return inst


@st.composite
def fragments(draw: st.DrawFn, allow_null: bool = False) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in draw(st.lists(NAMES, max_size=3, unique=True)):
        chosen = draw(st.lists(instances(allow_null), min_size=1, max_size=2, unique_by=lambda i: i.get("datasetId")))
        out[name] = chosen
    return out


class Model:
    """Entities as {id: {"type": [..], "attrs": {name: {datasetId: instance}}}} in the client's own terms."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}

    def need(self, eid: str) -> dict[str, Any]:
        if eid not in self.entities:
            raise ResourceNotFound(eid)
        return self.entities[eid]

    def create(self, eid: str, attrs: dict[str, list[dict[str, Any]]]) -> None:
        if eid in self.entities:
            raise AlreadyExists(eid)
        self.entities[eid] = {"type": ["T"], "attrs": {}}
        self.put(eid, attrs, overwrite=True)

    def put(self, eid: str, attrs: dict[str, list[dict[str, Any]]], overwrite: bool) -> None:
        entity = self.need(eid)
        for name, insts in attrs.items():
            for inst in insts:
                slot = entity["attrs"].setdefault(name, {})
                key = inst.get("datasetId")
                if inst["value"] == NULL:
                    slot.pop(key, None)
                elif overwrite or key not in slot:
                    slot[key] = copy.deepcopy(inst)
                if not slot:
                    del entity["attrs"][name]

    def merge(self, eid: str, attrs: dict[str, list[dict[str, Any]]]) -> None:
        entity = self.need(eid)
        for name, insts in attrs.items():
            for inst in insts:
                slot = entity["attrs"].setdefault(name, {})
                key = inst.get("datasetId")
                if inst["value"] == NULL:
                    slot.pop(key, None)
                else:
                    slot[key] = {**slot.get(key, {}), **copy.deepcopy(inst)}
                if not slot:
                    del entity["attrs"][name]

    def delete_attr(self, eid: str, name: str, dataset: str | None, delete_all: bool) -> None:
        entity = self.need(eid)
        slot = entity["attrs"].get(name)
        if not slot or (not delete_all and dataset not in slot):
            raise ResourceNotFound(name)
        if delete_all:
            del entity["attrs"][name]
        else:
            del slot[dataset]
            if not slot:
                del entity["attrs"][name]

    def view(self, eid: str) -> dict[str, Any]:
        entity = self.entities[eid]
        out: dict[str, Any] = {"id": eid, "type": entity["type"][0]}
        for name, slot in entity["attrs"].items():
            insts = list(slot.values())
            out[name] = insts[0] if len(insts) == 1 else insts
        return out


class EntityOperations(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.loop = asyncio.new_event_loop()
        self.store = SqliteStore(Path(self.tmp.name) / "agora.db")
        self.run(self.store.open())
        self.entities = Entities(self.store)
        self.tm = core_termmap()
        self.caller = Caller()
        self.model = Model()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def both(self, broker_op: Any, model_op: Any) -> None:
        """Run an operation on both sides; they must fail with the same error class or both succeed."""
        broker_error = model_error = None
        try:
            self.run(broker_op())
        except NgsiLdError as exc:
            broker_error = type(exc)
        try:
            model_op()
        except NgsiLdError as exc:
            model_error = type(exc)
        assert broker_error == model_error

    @rule(eid=IDS, attrs=fragments())
    def create(self, eid: str, attrs: dict[str, Any]) -> None:
        body = {"id": eid, "type": "T", **attrs}
        self.both(lambda: self.entities.create(self.caller, self.tm, body), lambda: self.model.create(eid, attrs))

    @rule(eid=IDS, attrs=fragments(allow_null=True))
    def update(self, eid: str, attrs: dict[str, Any]) -> None:
        self.both(
            lambda: self.entities.update_attrs(self.caller, self.tm, eid, attrs),
            lambda: self.model.put(eid, attrs, overwrite=True),
        )

    @rule(eid=IDS, attrs=fragments(), no_overwrite=st.booleans())
    def append(self, eid: str, attrs: dict[str, Any], no_overwrite: bool) -> None:
        self.both(
            lambda: self.entities.append(self.caller, self.tm, eid, attrs, no_overwrite),
            lambda: self.model.put(eid, attrs, overwrite=not no_overwrite),
        )

    @rule(eid=IDS, attrs=fragments(allow_null=True))
    def merge(self, eid: str, attrs: dict[str, Any]) -> None:
        self.both(
            lambda: self.entities.merge(self.caller, self.tm, eid, attrs, MergeOptions()),
            lambda: self.model.merge(eid, attrs),
        )

    @rule(eid=IDS, name=NAMES, dataset=DATASETS, delete_all=st.booleans())
    def delete_attr(self, eid: str, name: str, dataset: str | None, delete_all: bool) -> None:
        self.both(
            lambda: self.entities.delete_attr(self.caller, self.tm, eid, name, dataset, delete_all),
            lambda: self.model.delete_attr(eid, name, dataset, delete_all),
        )

    @rule(eid=IDS, attrs=fragments())
    def replace(self, eid: str, attrs: dict[str, Any]) -> None:
        def model_op() -> None:
            self.model.need(eid)
            del self.model.entities[eid]
            self.model.create(eid, attrs)

        self.both(lambda: self.entities.replace(self.caller, self.tm, eid, {"type": "T", **attrs}), model_op)

    @rule(eid=IDS)
    def delete(self, eid: str) -> None:
        self.both(
            lambda: self.entities.delete(self.caller, eid),
            lambda: self.model.entities.pop(eid) if eid in self.model.entities else self.model.need(eid),
        )

    @invariant()
    def same_entities(self) -> None:
        for i in range(4):
            eid = f"urn:ngsi-ld:T:{i}"
            stored = self.run(self.store.get("", [eid])).get(eid)
            assert (stored is None) == (eid not in self.model.entities)
            if stored is not None:
                assert render(stored, self.tm, View()) == self.model.view(eid)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        self.tmp.cleanup()


EntityOperations.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestEntityOperations = EntityOperations.TestCase
