"""The web console's serving (issue 21, record 0400) and the change feed as a caller sees it (record 0401)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from broker.console import STATIC
from broker.core.access import UNRESTRICTED, View
from broker.core.feed import FeedItem, seen
from broker.http.app import create_app
from broker.http.feed import _events
from broker.ld.termmap import core_termmap
from broker.query.geo import parse_geo_query
from broker.settings import Settings
from broker.store.base import Change

STOP = "https://example.org/Stop"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A broker that wants credentials on every API request, trusting one issuer the console may sign in with."""
    tmp = tmp_path_factory.mktemp("console")
    issuers = tmp / "issuers.json"
    issuers.write_text(
        json.dumps([{"issuer": "http://127.0.0.1:9/realms/city", "audience": "agora", "console_client_id": "web"}])
    )
    settings = Settings(store=f"sqlite:///{tmp / 'agora.db'}", issuers=str(issuers))
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def test_the_page_and_its_files_need_no_credentials_and_carry_a_strict_policy(secured: TestClient) -> None:
    for path, media in [
        ("/console", "text/html"),
        ("/console/", "text/html"),
        ("/console/static/console.js", "text/javascript"),
        ("/console/static/vendor/maplibre-gl/maplibre-gl.mjs", "text/javascript"),
        ("/console/static/vendor/maplibre-gl/maplibre-gl.css", "text/css"),
        ("/console/static/vendor/world-atlas/land-110m.geojson", "application/geo+json"),
    ]:
        response = secured.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media), path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert "frame-ancestors 'none'" in policy
        # the issuer's origin: the token request of a sign-in
        assert policy.endswith("connect-src 'self' http://127.0.0.1:9")
        assert response.headers["x-content-type-options"] == "nosniff"
    assert secured.get("/console/static/console.js").headers["cache-control"] == "no-cache"
    vendored = secured.get("/console/static/vendor/uplot/uPlot.iife.min.js")
    assert vendored.headers["cache-control"] == "public, max-age=86400"
    etag = secured.get("/console/static/console.js").headers["etag"]
    assert secured.get("/console/static/console.js", headers={"If-None-Match": etag}).status_code == 304


def test_only_the_console_files_are_served(secured: TestClient) -> None:
    assert (STATIC / "vendor" / "VERSIONS").exists()
    for path in ["/console/static/vendor/VERSIONS", "/console/static/../__init__.py", "/console/static/nothing.js",
                 "/console/static/%2e%2e/__init__.py", "/console/static/"]:  # fmt: skip
        assert secured.get(path).status_code == 404, path
    assert secured.post("/console/static/console.js").status_code == 401  # only a GET of the files is public


def test_the_api_still_wants_credentials_and_the_config_names_the_sign_in(secured: TestClient) -> None:
    assert secured.get("/ngsi-ld/v1/agora/changes/stream").status_code == 401
    config = secured.get("/console/config.json").json()
    assert config == {
        "authRequired": True,
        "issuers": [{"issuer": "http://127.0.0.1:9/realms/city", "clientId": "web", "audience": "agora"}],
    }


def test_every_vendored_package_has_its_licence() -> None:
    for folder in (STATIC / "vendor").iterdir():
        if folder.is_dir():
            assert any(p.name.startswith("LICENSE") for p in folder.iterdir()), folder.name
    assert (Path(__file__).parents[1] / "e2e" / "console_vendor" / "LICENSE").exists()


def _stop(name: str, value: int, types: list[str] | None = None) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:Stop:{name}", "type": types or [STOP],
            "attrs": {"https://example.org/level": [{"type": "Property", "value": value}]}}  # fmt: skip


def test_a_change_shows_its_changed_attributes_in_its_tenant_and_types() -> None:
    change = Change(7, "", "urn:ngsi-ld:Stop:a", _stop("a", 1), _stop("a", 2), "2026-12-07T10:00:00Z")
    item = seen(change, UNRESTRICTED, "", frozenset({STOP}))
    assert item is not None
    assert (item.seq, item.types, item.changed) == (7, (STOP,), ("https://example.org/level",))
    assert seen(change, UNRESTRICTED, "other", None) is None
    assert seen(change, UNRESTRICTED, "", frozenset({"https://example.org/Bus"})) is None
    deleted = seen(Change(8, "", "urn:ngsi-ld:Stop:a", _stop("a", 2), None, "t"), UNRESTRICTED, "", None)
    assert deleted is not None and deleted.after is None and deleted.types == (STOP,)


LOCATION = "https://uri.etsi.org/ngsi-ld/location"


def _placed(lon: float, lat: float) -> dict[str, object]:
    located = _stop("a", 1)
    located["attrs"][LOCATION] = [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}]  # type: ignore[index]
    return located


def test_an_area_keeps_the_changes_of_entities_in_it_before_or_after() -> None:
    box = {"georel": "within", "geometry": "Polygon", "coordinates": "[[[7,48],[8,48],[8,49],[7,49],[7,48]]]"}
    area = parse_geo_query(box, core_termmap())
    inside, outside = _placed(7.5, 48.5), _placed(-116.7, 36.9)

    def kept(before: dict[str, object] | None, after: dict[str, object] | None) -> bool:
        change = Change(9, "", "urn:ngsi-ld:Stop:a", before, after, "2026-12-07T10:00:00Z")
        return seen(change, UNRESTRICTED, "", None, area) is not None

    assert kept(inside, inside) and not kept(outside, outside)
    assert kept(inside, outside) and kept(outside, inside)  # it left the area, it came into it
    assert kept(inside, None) and not kept(outside, None)  # deleted in the area, elsewhere
    assert not kept(None, _stop("a", 2))  # no location: in no area


def test_a_caller_who_may_read_nothing_sees_no_change() -> None:
    change = Change(7, "", "urn:ngsi-ld:Stop:a", None, _stop("a", 2), "2026-12-07T10:00:00Z")
    assert seen(change, View(), "", None) is None


def test_the_change_stream_checks_its_parameters_before_it_opens(secured: TestClient) -> None:
    key = {"X-Api-Key": "nope"}
    assert secured.get("/ngsi-ld/v1/agora/changes/stream", headers=key).status_code == 401


def test_a_bad_stream_request_is_400(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}"))) as open_broker:
        for params, headers in [
            ({"limit": "1"}, {}),
            ({"after": "x"}, {}),
            ({}, {"Last-Event-ID": "-1"}),
            ({"georel": "within", "geometry": "Polygon"}, {}),
            ({"georel": "within", "geometry": "Polygon", "coordinates": "[[[0,0],[1,1]]]"}, {}),
        ]:
            response = open_broker.get("/ngsi-ld/v1/agora/changes/stream", params=params, headers=headers)
            assert response.status_code == 400, (params, headers)
            assert response.headers["content-type"] == "application/json"


def test_a_stream_says_first_where_it_starts() -> None:
    """Its first block: a comment and `id:` without data, which sets the client's last event id (record 0407)."""

    async def nothing() -> AsyncIterator[FeedItem | None]:
        return
        yield

    async def blocks() -> list[bytes]:
        return [b async for b in _events(nothing(), core_termmap(), 41)]

    assert asyncio.run(blocks()) == [b": agora change feed\nid: 41\n\n"]
