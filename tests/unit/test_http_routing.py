"""broker.http.routing.MethodRouter tries only the routes of the request's method: for every route of the broker
and every method it must pick the route Starlette's own loop picks, and answer 405 where Starlette does."""

from __future__ import annotations

import re

from starlette.routing import Match, Route
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.http.routing import MethodRouter

METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")


def starlette_choice(routes: list[Route], scope: dict[str, object]) -> Route | None:
    for route in routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def test_every_route_and_method_finds_starlettes_route() -> None:
    app = create_app()
    router = app.router
    assert isinstance(router, MethodRouter)
    routes = [r for r in router.routes if isinstance(r, Route)]
    paths = {re.sub(r"\{[^}]+\}", "x", r.path) for r in routes} | {"/ngsi-ld/v1/entities/a/attrs/b/c", "/nothing"}
    for path in sorted(paths):
        for method in METHODS:
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            chosen = next((r for r in router.candidates(method) if r.matches(scope)[0] is Match.FULL), None)
            assert chosen is starlette_choice(routes, scope), (method, path)


def test_a_path_of_another_method_is_still_405(client: TestClient) -> None:
    answer = client.put("/ngsi-ld/v1/entityOperations/upsert", json=[])
    assert answer.status_code == 405
