"""Multi-tenancy through the NGSILD-Tenant header (clause 4.14; errors NonexistentTenant and NoMultiTenantSupport in
6.3.2). A broker without multi-tenancy answers 501 NoMultiTenantSupport: its cases are then "not implemented".
Tenants cannot be deleted through the API, so each run leaves its (empty) tenants behind."""

from __future__ import annotations

from conformance.cases._shared import ids, vehicle
from conformance.kit import Kit, case


def _tenant(k: Kit) -> dict[str, str]:
    return {"NGSILD-Tenant": f"conformance{k.run.run_id}t{k.run.next_number()}"}


def _create_in(k: Kit, tenant: dict[str, str]) -> dict[str, object]:
    body = vehicle(k)
    response = k.post("/entities", body, headers=tenant)
    if response.status_code == 501:
        k.missing("tenancy", "the broker answered 501 to a create with NGSILD-Tenant")
    k.expect_status(response, 201)
    k.delete_later(f"/entities/{body['id']}", headers=tenant)
    return body


@case(
    "4.14",
    "An entity created in a tenant (created implicitly) is found in that tenant only.",
    feature="tenancy",
    also=("6.3.2",),
)
def entity_lives_in_its_tenant(k: Kit) -> None:
    tenant = _tenant(k)
    body = _create_in(k, tenant)
    k.expect_status(k.http.get(f"/entities/{body['id']}", headers=tenant), 200)
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 404)


@case("4.14", "Queries see only the entities of the tenant they name.", feature="tenancy")
def query_is_per_tenant(k: Kit) -> None:
    tenant = _tenant(k)
    body = _create_in(k, tenant)
    default_twin = {**vehicle(k, str(body["type"])), "id": k.uid("Vehicle")}
    k.entity(default_twin)
    found = k.query({"type": str(body["type"])}, headers=tenant)
    k.expect(ids(found) == {body["id"]}, f"query in the tenant gave {sorted(ids(found))}")
    k.expect(ids(k.query({"type": str(body["type"])})) == {default_twin["id"]}, "the default tenant sees other data")


@case(
    "4.14",
    "Reading from a tenant that does not exist is a NonexistentTenant error (404).",
    feature="tenancy",
    also=("6.3.2",),
)
def unknown_tenant_is_404(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name()}, headers=_tenant(k))
    if response.status_code == 501:
        k.missing("tenancy", "the broker answered 501 to NGSILD-Tenant")
    k.expect_problem(response, 404, "NonexistentTenant")


@case("4.14", "Batch operations honour the tenant header too.", feature="tenancy", also=("5.6.7",))
def batch_in_tenant(k: Kit) -> None:
    tenant = _tenant(k)
    _create_in(k, tenant)
    body = vehicle(k)
    k.delete_later(f"/entities/{body['id']}", headers=tenant)
    k.expect_status(k.post("/entityOperations/create", [body], headers=tenant), 201)
    k.expect_status(k.http.get(f"/entities/{body['id']}", headers=tenant), 200)
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 404)
