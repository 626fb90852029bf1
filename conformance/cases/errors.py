"""Errors and HTTP preconditions: ProblemDetails bodies (clauses 5.5.2, 5.5.3, 6.3.2, 6.3.3), content negotiation
(6.3.4: 406, 411, 415) and 405 with Allow."""

from __future__ import annotations

from collections.abc import Iterator

from conformance.cases._shared import vehicle
from conformance.kit import JSON, LD_JSON, Kit, case


@case("5.5.3", "An error body is a ProblemDetails with at least type and title.", also=("6.3.3", "5.5.2"))
def problem_details_members(k: Kit) -> None:
    problem = k.expect_problem(k.http.get(f"/entities/{k.uid()}"), 404, "ResourceNotFound")
    k.expect(isinstance(problem.get("title"), str) and problem["title"], f"ProblemDetails without title: {problem}")


@case("6.3.6", "Error responses are application/json whatever the Accept header asked for.", also=("6.3.3",))
def errors_are_json_whatever_accept(k: Kit) -> None:
    response = k.http.get(f"/entities/{k.uid()}", headers={"Accept": LD_JSON})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "6.3.4",
    "A POST body whose Content-Type is neither application/json nor application/ld+json answers 415.",
    also=("6.3.2",),
)
def unsupported_media_type_is_415(k: Kit) -> None:
    k.expect_status(k.post("/entities", vehicle(k), content_type="text/plain"), 415)


@case("6.3.4", "A PATCH with Content-Type application/xml answers 415.", also=("6.3.2",))
def patch_unsupported_media_type_is_415(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(
        f"/entities/{body['id']}/attrs", {"speed": {"type": "Property", "value": 1}}, content_type="application/xml"
    )
    k.expect_status(response, 415)


@case("6.3.4", "An Accept header that allows neither JSON nor JSON-LD answers 406.", also=("6.3.2",))
def not_acceptable_is_406(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.http.get(f"/entities/{body['id']}", headers={"Accept": "text/html"}), 406)


@case("6.3.4", "Accept: application/geo+json on an operation other than retrieve or query entities answers 406.")
def geojson_elsewhere_is_406(k: Kit) -> None:
    k.expect_status(k.http.get("/types", headers={"Accept": "application/geo+json"}), 406)


@case("6.3.4", "Accept: */* and a missing Accept header both give application/json.")
def accept_wildcard_gives_json(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    for accept in ("*/*", None):
        headers = {"Accept": accept} if accept else {}
        request = k.http.build_request("GET", f"/entities/{body['id']}", headers=headers)
        if accept is None:
            del request.headers["Accept"]
        response = k.http.send(request)
        k.expect_status(response, 200)
        k.expect(
            response.headers.get("content-type", "").startswith(JSON),
            f"Accept {accept!r} gave Content-Type {response.headers.get('content-type')!r}",
        )


@case("6.3.4", "A POST without Content-Length (chunked body) answers 411.", also=("6.3.2",))
def missing_content_length_is_411(k: Kit) -> None:
    entity_id = k.uid()
    raw = b'{"id": "%s", "type": "Thing"}' % entity_id.encode()

    def chunks() -> Iterator[bytes]:
        yield raw

    k.delete_later(f"/entities/{entity_id}")
    response = k.http.post("/entities", content=chunks(), headers={"Content-Type": JSON})
    k.expect_status(response, 411)


@case("6.3.2", "A wrong HTTP verb on a resource answers 405 with an Allow header.")
def method_not_allowed_is_405(k: Kit) -> None:
    response = k.http.put("/entities", content=b"[]", headers={"Content-Type": JSON})
    k.expect_status(response, 405)
    k.expect("allow" in response.headers, "405 without an Allow header")


@case("6.5", "A path entity id that is not a URI is a BadRequestData error (400).", also=("6.3.2",))
def retrieve_non_uri_id_is_400(k: Kit) -> None:
    k.expect_problem(k.http.get("/entities/not-a-uri"), 400, "BadRequestData")


@case(
    "5.7.2",
    "A limit that is not a positive integer is a BadRequestData or InvalidRequest error (400).",
    also=("5.5.9",),
)
def invalid_limit_is_400(k: Kit) -> None:
    problem = k.expect_problem(k.http.get("/entities", params={"type": k.type_name(), "limit": "-1"}), 400)
    k.expect(problem["type"].rsplit("/", 1)[-1] in ("BadRequestData", "InvalidRequest"), f"type {problem['type']}")


@case("6.3.2", "A 207 Multi-Status answer is application/json.", also=("6.3.6", "5.6.10"))
def multi_status_is_json(k: Kit) -> None:
    response = k.post("/entityOperations/delete", [k.uid()], headers={"Accept": LD_JSON})
    k.expect_status(response, 207)
    k.expect(response.headers.get("content-type", "").startswith(JSON), "207 is not application/json")


@case(
    "6.3.6",
    "A 207 UpdateResult of an attribute operation is application/json whatever the Accept header asked for.",
    also=("5.6.3", "5.2.18"),
)
def update_result_is_json(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.post(
        f"/entities/{body['id']}/attrs",
        {"speed": {"type": "Property", "value": 1}},
        params={"options": "noOverwrite"},
        headers={"Accept": LD_JSON},
    )
    k.expect_status(response, 207)
    k.expect(response.headers.get("content-type", "").startswith(JSON), "207 is not application/json")


@case("6.3.6", "A 207 answer has no Link header, as it uses only fully qualified names.", also=("6.3.2", "5.6.10"))
def multi_status_has_no_link(k: Kit) -> None:
    response = k.post("/entityOperations/delete", [k.uid()])
    k.expect_status(response, 207)
    k.expect("link" not in response.headers, f"207 with Link {response.headers.get('link')!r}")
