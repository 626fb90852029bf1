"""The reference evaluator of q (clause 4.9) over hand-built canonical entities."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.model import DEFAULT_VOCAB as V
from broker.core.model import Entity
from broker.ld.termmap import core_termmap
from broker.query.evaluate import matches
from broker.query.q import parse_q


def prop(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


ENTITY: Entity = {
    "id": "urn:ngsi-ld:Car:1",
    "type": [V + "Car", V + "Vehicle"],
    "scope": ["/Madrid/Gardens"],
    "attrs": {
        V + "speed": [
            prop(80, observedAt="2017-12-24T12:00:00Z", unitCode="KMH"),
            prop(120, datasetId="urn:ngsi-ld:Dataset:gps", observedAt="2018-01-01T00:00:00Z"),
        ],
        V + "temperature": [
            prop(
                21.5,
                attrs={
                    V + "accuracy": [prop(0.5)],
                    V + "sensorModel": [prop("X1", attrs={V + "maker": [prop("ACME")]})],
                },
            )
        ],
        V + "name": [prop("Car One")],
        V + "address": [prop({V + "city": "Berlin", V + "street": {V + "number": 5}})],
        V + "raw": [{"type": "JsonProperty", "json": {"city": "Paris", "air": {"pm10": 40}}}],
        V + "sensor": [{"type": "Relationship", "object": "urn:ngsi-ld:Sensor:1"}],
        V + "owners": [{"type": "ListRelationship", "objectList": ["urn:ngsi-ld:P:1", "urn:ngsi-ld:P:2"]}],
        V + "label": [{"type": "LanguageProperty", "languageMap": {"en": "red car", "fr": "voiture rouge"}}],
        V + "category": [{"type": "VocabProperty", "vocab": [V + "commercial", V + "fleet"]}],
        V + "readings": [{"type": "ListProperty", "valueList": [1, 2, 3]}],
        V + "tags": [prop(["a", "b"])],
        V + "active": [prop(True)],
        V + "installed": [prop("2020-05-01")],
        V + "opening": [prop("08:30:00")],
        V + "lastSeen": [prop({"@type": "DateTime", "@value": "2021-01-01T00:00:00Z"})],
        V + "code": [prop("007")],
        V + "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-3.7, 40.4]}}],
    },
}

SENSOR: Entity = {
    "id": "urn:ngsi-ld:Sensor:1",
    "type": [V + "Sensor"],
    "attrs": {V + "humidity": [prop(40)], V + "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:P:1"}]},
}
PERSON: Entity = {"id": "urn:ngsi-ld:P:1", "type": [V + "Person"], "attrs": {V + "age": [prop(33)]}}
WORLD = {e["id"]: e for e in (SENSOR, PERSON)}


def holds(q: str, entity: Entity = ENTITY, **kw: Any) -> bool:
    return matches(entity, parse_q(q, core_termmap(), **kw), resolve=WORLD.get)


CASES = [
    # existence
    ("speed", True),
    ("nothing", False),
    ("temperature.accuracy", True),
    ("temperature.sensorModel.maker", True),
    ("temperature.missing", False),
    ("speed.observedAt", True),
    ("name.observedAt", False),
    ("address[city]", True),
    ("address[country]", False),
    # numbers, any instance (datasetId)
    ("speed==80", True),
    ("speed==120", True),
    ("speed==100", False),
    ("speed>100", True),
    ("speed>=120", True),
    ("speed>120", False),
    ("speed<80", False),
    ("speed<=80", True),
    ("speed!=80", True),  # the gps instance is 120
    ('name!="Car One"', False),
    ("nothing!=1", False),
    ('speed=="80"', False),  # kinds differ
    ("temperature==21.5", True),
    ("temperature.accuracy<1", True),
    ('temperature.sensorModel.maker=="ACME"', True),
    # members
    ("speed.observedAt>=2017-12-24T12:00:00Z", True),
    ("speed.observedAt>2018-01-01T00:00:00Z", False),
    ("speed.observedAt==2017-12-24T13:00:00+01:00", True),
    ('speed.unitCode=="KMH"', True),
    ("speed.datasetId==urn:ngsi-ld:Dataset:gps", True),
    # ranges and lists
    ("speed==70..90", True),
    ("speed==90..110", False),
    ("speed!=70..130", False),
    ('name=="A".."D"', True),
    ("speed==1,2,80", True),
    ("speed==1,2", False),
    ('name!="x","Car One"', False),
    # strings and regex
    ('name=="Car One"', True),
    ('name>"Car"', True),
    ("name~=^Car", True),
    ("name~=(?i)car one", True),
    ("name~=^One", False),
    ("name!~=^One", True),
    ("name!~=Car", False),
    ("speed~=80", False),
    ('name~="C(a|x)r"', True),
    ("name~=C(a|x)r;speed==80", True),
    # compound values
    ('address[city]=="Berlin"', True),
    ("address[street.number]==5", True),
    ("address[street][number]>4", True),
    ('raw[city]=="Paris"', True),
    ("raw[air.pm10]==40", True),
    ("raw[air.pm10]!=40", False),
    # dates and times
    ("installed>2020-01-01", True),
    ("installed==2020-05-01", True),
    ("installed<2020-05-01", False),
    ('installed=="2020-05-01"', True),
    ("installed>2020-01-01T00:00:00Z", False),  # a Date is not a DateTime
    ("opening<09:00:00", True),
    ("opening==08:30:00Z", True),
    ("lastSeen>2020-12-31T23:59:59Z", True),
    ("lastSeen==2020-01-01T00:00:00Z..2022-01-01T00:00:00Z", True),
    # booleans and odd strings
    ("active==true", True),
    ("active==false", False),
    ("active!=false", True),
    ('code=="007"', True),
    # relationships
    ("sensor==urn:ngsi-ld:Sensor:1", True),
    ('sensor=="urn:ngsi-ld:Sensor:1"', True),
    ("sensor!=urn:ngsi-ld:Sensor:1", False),
    ("sensor==urn:ngsi-ld:Sensor:2,urn:ngsi-ld:Sensor:1", True),
    ('sensor>"a"', False),
    ("sensor~=Sensor", False),
    ("owners==urn:ngsi-ld:P:2", True),
    ("owners!=urn:ngsi-ld:P:3", True),
    # linked entities
    ("sensor{humidity}==40", True),
    ("sensor{humidity}>40", False),
    ("sensor{humidity}", True),
    ("sensor{pressure}", False),
    ("sensor{owner{age}}==33", True),
    ("owners{age}>30", True),
    ("name{age}==33", False),
    # language maps
    ('label=="red car"', True),
    ('label=="voiture rouge"', True),
    ('label[fr]=="voiture rouge"', True),
    ('label[en]=="voiture rouge"', False),
    ("label[de]", False),
    ("label~=rouge", True),
    # vocab
    ("category==commercial", True),
    ('category=="fleet"', True),
    ("category==private", False),
    ("category!=private", True),
    # lists
    ("readings==2", True),
    ("readings==4", False),
    ("readings>2", True),
    ("readings!=2", False),
    ('tags=="b"', True),
    # logic
    ('speed==80;name=="Car One"', True),
    ('speed==80;name=="x"', False),
    ('speed==1|name=="Car One"', True),
    ('speed==1|name=="x";active==true', False),
    ('(speed==1|name=="Car One");active==true', True),
    ('speed==1|(name=="Car One";active==true)', True),
]


@pytest.mark.parametrize(("q", "expected"), CASES)
def test_evaluate(q: str, expected: bool) -> None:
    assert holds(q) is expected


def test_linked_without_resolver_is_false() -> None:
    assert not matches(ENTITY, parse_q("sensor{humidity}==40", core_termmap()))


def test_linked_to_missing_entity_is_false() -> None:
    entity = {
        "id": "urn:x:1",
        "type": [V + "T"],
        "attrs": {V + "sensor": [{"type": "Relationship", "object": "urn:no"}]},
    }
    assert not holds("sensor{humidity}", entity)


def test_expand_values_controls_vocab_expansion() -> None:
    assert holds("category==commercial", expand_values={V + "category"})
    assert not holds("category==commercial", expand_values={V + "other"})
    assert holds(f"category=={V}commercial", expand_values=set())


def test_property_values_are_not_expanded() -> None:
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "kind": [prop("commercial")]}}
    assert holds("kind==commercial", entity)
    assert not holds(f"kind=={V}commercial", entity)


def test_sub_attribute_of_any_dataset_instance() -> None:
    entity = {
        "id": "urn:x:1",
        "type": [V + "T"],
        "attrs": {
            V + "t": [
                prop(1, datasetId="urn:d:1", attrs={V + "quality": [prop("bad")]}),
                prop(2, datasetId="urn:d:2", attrs={V + "quality": [prop("good")]}),
            ]
        },
    }
    assert holds('t.quality=="good"', entity)
    assert holds('t.quality!="good"', entity)  # the d:1 instance
    assert not holds('t.quality=="other"', entity)


def test_empty_list_value_exists_but_compares_nothing() -> None:
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "l": [{"type": "ListProperty", "valueList": []}]}}
    assert holds("l", entity)
    assert not holds("l==1", entity)
    assert not holds("l!=1", entity)
