"""A temporal query with q answers the same on the memory and SQLite stores, and shows exactly the instances that
meet q (clause 5.7.4.4, decision record 0071), on generated histories (hypothesis against the in-process app).

The direct definition checked here: for `q=<attr><op><n>` an entity is selected when one of its instances of
<attr> in the interval meets the condition; it then shows those instances of <attr>, and every instance of the
other attribute; lastN keeps the last N of what it shows."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings

T = "/ngsi-ld/v1/temporal/entities"
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
START = 2  # the interval: timerel=after, timeAt=hour(START)


def hour(h: int) -> str:
    return f"2026-03-01T{h:02d}:00:00Z"


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[TestClient]]:
    path: Path = tmp_path_factory.mktemp("temporal-q") / "agora.db"
    with (
        TestClient(create_app(Settings(store="memory://")), raise_server_exceptions=False) as memory,
        TestClient(create_app(Settings(store=f"sqlite:///{path}")), raise_server_exceptions=False) as sqlite,
    ):
        yield [memory, sqlite]


series = st.lists(st.integers(0, 5), min_size=1, max_size=8)  # values at hours 0, 1, 2, ...
histories = st.lists(st.tuples(series, series), min_size=1, max_size=4)


def _shown(doc: dict[str, Any], attr: str) -> list[tuple[Any, str]]:
    value = doc.get(attr, [])
    return [(i["value"], i["observedAt"]) for i in (value if isinstance(value, list) else [value])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=histories,
    attr=st.sampled_from(["a", "b"]),
    op=st.sampled_from(sorted(OPS)),
    bound=st.integers(0, 5),
    last_n=st.sampled_from([None, 1, 2]),
)
def test_q_shows_the_instances_that_meet_it_on_every_store(
    apis: list[TestClient],
    history: list[tuple[list[int], list[int]]],
    attr: str,
    op: str,
    bound: int,
    last_n: int | None,
) -> None:
    kind = "S" + uuid.uuid4().hex[:8]
    for n, (a, b) in enumerate(history):
        body = {
            "id": f"urn:ngsi-ld:{kind}:{n}",
            "type": kind,
            "a": [{"type": "Property", "value": v, "observedAt": hour(h)} for h, v in enumerate(a)],
            "b": [{"type": "Property", "value": v, "observedAt": hour(h)} for h, v in enumerate(b)],
        }
        for api in apis:
            assert api.post(T, json=body).status_code == 201
    params = {"type": kind, "timerel": "after", "timeAt": hour(START), "q": f"{attr}{op}{bound}"}
    if last_n is not None:
        params["lastN"] = str(last_n)
    answers = []
    for api in apis:
        response = api.get(T, params=params)
        assert response.status_code == 200, response.text
        answers.append({d["id"]: {x: _shown(d, x) for x in ("a", "b")} for d in response.json()})
    assert answers[0] == answers[1], "memory and SQLite differ"
    assert answers[0] == _expected(kind, history, attr, OPS[op], bound, last_n)


def _expected(
    kind: str,
    history: list[tuple[list[int], list[int]]],
    attr: str,
    test: Callable[[Any, Any], bool],
    bound: int,
    last_n: int | None,
) -> dict[str, dict[str, list[tuple[Any, str]]]]:
    out = {}
    for n, (a, b) in enumerate(history):
        inside = {x: [(v, hour(h)) for h, v in enumerate(vs) if h >= START] for x, vs in (("a", a), ("b", b))}
        meeting = [(v, at) for v, at in inside[attr] if test(v, bound)]
        if not meeting:
            continue
        shown = {**inside, attr: meeting}
        if last_n is not None:
            shown = {x: v[-last_n:] for x, v in shown.items()}
        out[f"urn:ngsi-ld:{kind}:{n}"] = shown
    return out
