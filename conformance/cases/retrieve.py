"""Retrieve Entity (clause 5.7.1, HTTP binding 6.5.3.1) with projection (4.21) and the language filter (4.15,
4.5.18), and the language filter on Query Entities (5.7.2.5)."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import prop, vehicle
from conformance.kit import Kit, case


def _named(k: Kit, language_map: dict[str, str]) -> dict[str, Any]:
    body = vehicle(k, name={"type": "LanguageProperty", "languageMap": language_map})
    k.entity(body)
    return body


@case(
    "5.7.1",
    "Retrieve with attrs naming only attributes the entity lacks is a ResourceNotFound error (404).",
    also=("6.5",),
)
def attrs_matching_nothing_is_404(k: Kit) -> None:
    """5.7.1.4: "If the optional Attribute list is present and ... this Entity does not have any of the Attributes
    in the Attribute list, then an error of type ResourceNotFound shall be raised"."""
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", params={"attrs": k.attr_name("neverSeen")})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.7.1",
    "Retrieve with a pick naming only attributes the entity lacks is a ResourceNotFound error (404).",
    also=("6.5", "4.21"),
)
def pick_matching_nothing_is_404(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", params={"pick": k.attr_name("neverSeen")})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.7.1",
    "Retrieve with an omit that removes every attribute of the entity is a ResourceNotFound error (404).",
    also=("6.5", "4.21"),
)
def omit_of_every_attribute_is_404(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", params={"omit": "speed,isParked,location"})
    k.expect_problem(response, 404, "ResourceNotFound")


@case("5.7.1", "Retrieve with attrs naming one present and one absent attribute shows the present one.", also=("6.5",))
def attrs_partly_matching(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    got = k.get_entity(body["id"], attrs=f"speed,{k.attr_name('neverSeen')}")
    k.expect("speed" in got and "location" not in got, f"got members {sorted(got)}")


@case("4.21", "pick=id,type reduces a retrieved entity to its id and type.", also=("5.7.1", "6.5"))
def pick_entity_members_only(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    got = k.get_entity(body["id"], pick="id,type")
    k.expect(got == {"id": body["id"], "type": body["type"]}, f"pick=id,type gave {got!r}")


@case("4.21", "omit=type removes the entity's type and keeps its attributes.", also=("5.7.1", "6.5"))
def omit_type(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    got = k.get_entity(body["id"], omit="type")
    k.expect("type" not in got and "speed" in got and got.get("id") == body["id"], f"omit=type gave {sorted(got)}")


@case("4.21", "A member in both pick and omit of a retrieve is a BadRequestData error (400).", also=("5.7.1", "6.5"))
def pick_and_omit_one_member_is_400(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", params={"pick": "speed,location", "omit": "location"})
    k.expect_problem(response, 400, "BadRequestData")


@case("4.21", "A pick that is not a valid projection (an unclosed brace) is BadRequestData (400).", also=("5.7.1",))
def pick_syntax_error_is_400(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.http.get(f"/entities/{body['id']}", params={"pick": "isParked{name"}), 400, "BadRequestData")


@case("4.15", "lang=fr shows a LanguageProperty as a Property holding the French string and lang=fr.", also=("5.7.1",))
def lang_one_language(k: Kit) -> None:
    body = _named(k, {"en": "car", "fr": "voiture"})
    got = k.get_entity(body["id"], lang="fr", pick="name").get("name")
    k.expect(got == {"type": "Property", "value": "voiture", "lang": "fr"}, f"lang=fr gave name {got!r}")


@case(
    "4.15",
    "lang=* shows a LanguageProperty as a Property in one of its languages, with the lang member naming it.",
    also=("5.7.1", "4.5.18"),
)
def lang_wildcard(k: Kit) -> None:
    """Clause 4.15, example 3: "Wildcard - return LanguageProperties as a string in any supported language"; "In any
    case, the attribute in question shall be augmented with an additional non-reified subproperty lang"."""
    languages = {"en": "car", "fr": "voiture"}
    body = _named(k, languages)
    got = k.get_entity(body["id"], lang="*", pick="name").get("name")
    k.expect(isinstance(got, dict) and got.get("type") == "Property", f"lang=* gave name {got!r}")
    assert isinstance(got, dict)
    k.expect(languages.get(got.get("lang", "")) == got.get("value"), f"lang=* value/lang mismatch: {got!r}")


@case(
    "4.15",
    "A weighted language filter (de,fr;q=0.9,en;q=0.8) shows the best-weighted language the map holds.",
    also=("5.7.1",),
)
def lang_weighted(k: Kit) -> None:
    body = _named(k, {"en": "car", "fr": "voiture"})
    got = k.get_entity(body["id"], lang="de,fr;q=0.9,en;q=0.8", pick="name").get("name")
    k.expect(got == {"type": "Property", "value": "voiture", "lang": "fr"}, f"weighted lang gave name {got!r}")


@case(
    "5.7.2",
    "A query with a language filter no language matches shows the @none string when the map has one.",
    also=("4.15", "6.4"),
)
def lang_no_match_takes_none(k: Kit) -> None:
    """5.7.2.5: "If no match can be made for a LanguageProperty, then the default identified by the JSON-LD
    "@none" shall be chosen if present"."""
    body = _named(k, {"en": "car", "@none": "auto"})
    found = k.query({"type": body["type"], "lang": "ja"})
    got = found[0].get("name") if found else None
    k.expect(got == {"type": "Property", "value": "auto", "lang": "@none"}, f"lang=ja gave name {got!r}")


@case("4.15", "With a language filter and format=simplified, a LanguageProperty shows as its string.", also=("4.5.4",))
def lang_simplified(k: Kit) -> None:
    body = _named(k, {"en": "car", "fr": "voiture"})
    got = k.get_entity(body["id"], lang="en", format="simplified", pick="name")
    k.expect(got.get("name") == "car", f"lang=en&format=simplified gave {got!r}")


@case("4.5.18", "Without a language filter a LanguageProperty is shown with its whole languageMap.", also=("5.7.1",))
def language_map_unfiltered(k: Kit) -> None:
    languages = {"en": "car", "fr": "voiture"}
    body = _named(k, languages)
    got = k.get_entity(body["id"], pick="name").get("name")
    k.expect(got == {"type": "LanguageProperty", "languageMap": languages}, f"name is {got!r}")


@case("4.5.5", "datasetId=@none selects the default instance only.", also=("5.7.1", "6.5"))
def dataset_id_none(k: Kit) -> None:
    body = vehicle(k, speed=[prop(80), prop(79, datasetId="urn:ngsi-ld:Dataset:gps")])
    k.entity(body)
    speed = k.get_entity(body["id"], datasetId="@none").get("speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 80, f"datasetId=@none gave speed {speed!r}")
