"""The personal-data marks of the ontology (ontologies.personal_data, records 0222 and 0320)."""

from __future__ import annotations

from ontologies.personal_data import (
    CATEGORIES,
    LEGAL_BASES,
    all_marks,
    personal_attribute,
    personal_in,
    personal_iris,
    personal_type,
)

METER = "https://smartdatamodels.org/dataModel.Device/SmartMeteringObservation"
AGORA = "https://w3id.org/agora/terms#"


def test_every_mark_names_a_known_kind_category_and_legal_basis() -> None:
    marks = all_marks()  # loading the table checks each row (BadMarks)
    assert {m.category for m in marks.values()} <= CATEGORIES
    assert {m.legal_basis for m in marks.values()} <= set(LEGAL_BASES)
    assert all(m.purpose and m.why for m in marks.values())


def test_attribute_and_type_marks_are_told_apart() -> None:
    email = personal_attribute("https://schema.org/email")
    assert email is not None and email.category == "contact"
    assert personal_attribute(METER) is None  # a type, not an attribute
    meter = personal_type(METER)
    assert meter is not None and meter.category == "consumption-profile"
    assert METER not in personal_iris() and "https://schema.org/email" in personal_iris()


def test_an_attribute_of_a_personal_type_is_personal_by_its_type() -> None:
    pressure = "https://smartdatamodels.org/dataModel.WaterDistributionManagementEPANET/pressure"
    assert personal_in(["https://example.org/Pipe"], pressure) is None
    mark = personal_in(["https://example.org/Pipe", METER], pressure)
    assert mark is not None and mark.iri == METER
    own = personal_in([METER], AGORA + "dataSubject")  # the attribute's own mark comes first
    assert own is not None and own.category == "identifier"


def test_what_the_adapters_emit_about_people_is_marked() -> None:
    assert personal_attribute(AGORA + "licensePlate") is not None  # GTFS-Realtime vehicle descriptor
    trace = personal_type(AGORA + "GtfsVehiclePosition")
    assert trace is not None and trace.category == "location-trace"
    assert personal_attribute(AGORA + "ticketHolder") is not None
