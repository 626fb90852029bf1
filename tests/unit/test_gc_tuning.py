"""The collector settings of a serving broker (broker/http/gc_tuning.py, record 0055): set while a broker runs,
given back when the last one of the process stops."""

from __future__ import annotations

import gc
from pathlib import Path

from starlette.testclient import TestClient

from broker.http import gc_tuning
from broker.http.app import create_app
from broker.settings import Settings


def test_a_running_broker_freezes_its_start_up_and_raises_the_young_threshold(tmp_path: Path) -> None:
    before = gc.get_threshold()
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}"))
    with TestClient(app) as client:
        assert client.get("/ngsi-ld/v1/entities", params={"type": "T"}).status_code == 200
        assert gc.get_threshold() == (gc_tuning.YOUNG, before[1], before[2])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_last_of_two_brokers_to_stop_puts_the_settings_back(tmp_path: Path) -> None:
    before = gc.get_threshold()
    first = TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}")))
    second = TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'b.db'}")))
    with first:
        with second:
            assert gc.get_threshold()[0] == gc_tuning.YOUNG
        assert gc.get_threshold()[0] == gc_tuning.YOUNG  # the first is still serving
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_are_still_collected_while_a_broker_runs(tmp_path: Path) -> None:
    import weakref

    class Node:
        pass

    with TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}"))):
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        alive = weakref.ref(a)
        del a, b
        gc.collect()
        assert alive() is None
