"""The kit as a pytest plug-in (entry point `pytest11`): `pytest --broker-url URL` adds one item per case.

Without --broker-url the plug-in only registers its options, so installing Agora changes nothing in other test
suites. Outcomes map to pytest's: passed, failed (the report shows the HTTP exchanges), not implemented -> skipped
with the reason, known gap -> xfailed with the issue number.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.features import FEATURES
from conformance.kit import Case, RunContext
from conformance.known_gaps import PRODUCTS, KnownGap
from conformance.runner import (
    FAILED,
    KNOWN_GAP,
    NOT_IMPLEMENTED,
    Options,
    Result,
    execute,
    known_gaps_for,
    load_cases,
    open_run,
    select,
)


@dataclass
class _State:
    options: Options
    stack: ExitStack
    run: RunContext | None = None
    gaps: dict[str, KnownGap] | None = None

    def ensure_started(self) -> tuple[RunContext, dict[str, KnownGap]]:
        """Start the helper servers on the first case only, so --collect-only starts nothing."""
        if self.run is None:
            self.run = self.stack.enter_context(open_run(self.options))
            self.gaps = known_gaps_for(self.run, self.options.known_gaps)
        assert self.gaps is not None
        return self.run, self.gaps


STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ngsi-ld-conformance", "NGSI-LD conformance kit (agora)")
    group.addoption("--broker-url", help="run the NGSI-LD conformance cases against this broker base URL")
    group.addoption("--broker-tenant", help="NGSI-LD tenant for every request of the conformance cases")
    group.addoption(
        "--conformance-only",
        action="append",
        default=[],
        metavar="CLAUSES",
        help="clauses, groups or case names to run (as `agora conformance --only`)",
    )
    group.addoption("--conformance-mqtt", metavar="URL", help="MQTT broker the kit listens on (mqtt://host:port)")
    group.addoption(
        "--conformance-mqtt-endpoint",
        metavar="URL",
        help="the same MQTT broker as the NGSI-LD broker reaches it, when that differs",
    )
    group.addoption(
        "--conformance-with",
        action="append",
        default=[],
        choices=sorted(FEATURES),
        metavar="FEATURE",
        help="declare an optional feature present (skip its detection)",
    )
    group.addoption(
        "--conformance-without",
        action="append",
        default=[],
        choices=sorted(FEATURES),
        metavar="FEATURE",
        help="declare an optional feature absent: its cases are not implemented",
    )
    group.addoption(
        "--conformance-known-gaps",
        choices=["auto", *PRODUCTS],
        default="auto",
        help="known-gaps table to apply (default auto)",
    )
    group.addoption("--conformance-public-host", help="host name the broker uses to reach the kit's servers")
    group.addoption("--conformance-receiver-port", type=int, default=0, help="port of the notification receiver")
    group.addoption("--conformance-context-port", type=int, default=0, help="port of the @context server")
    group.addoption("--conformance-source-port", type=int, default=0, help="port of the kit's context sources")


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("--broker-url")
    if not url:
        return
    options = Options(
        broker=url,
        tenant=config.getoption("--broker-tenant"),
        only=config.getoption("--conformance-only"),
        mqtt=config.getoption("--conformance-mqtt"),
        mqtt_endpoint=config.getoption("--conformance-mqtt-endpoint"),
        with_features=config.getoption("--conformance-with"),
        without_features=config.getoption("--conformance-without"),
        known_gaps=config.getoption("--conformance-known-gaps"),
        public_host=config.getoption("--conformance-public-host"),
        receiver_port=config.getoption("--conformance-receiver-port"),
        context_port=config.getoption("--conformance-context-port"),
        source_port=config.getoption("--conformance-source-port"),
    )
    config.stash[STATE] = _State(options, ExitStack())


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.stack.close()


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to the cases too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    collector = ConformanceCollector.from_parent(session, name="ngsi-ld-conformance")
    items.extend(collector.collect())


class ConformanceCollector(pytest.Collector):
    def collect(self) -> list[ConformanceItem]:
        state = self.config.stash[STATE]
        return [
            ConformanceItem.from_parent(self, name=case.name, case=case)
            for case in select(load_cases(), state.options.only)
        ]


class CaseFailure(Exception):
    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


class ConformanceItem(pytest.Item):
    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.user_properties.append(("clause", case.clause))

    def runtest(self) -> None:
        run, gaps = self.config.stash[STATE].ensure_started()
        result = execute(self.case, run, gaps)
        if result.outcome == NOT_IMPLEMENTED:
            pytest.skip(f"not implemented: {result.message}")
        if result.outcome == KNOWN_GAP and result.gap:
            pytest.xfail(f"known gap ({result.gap.ref}): {result.gap.reason}")
        if result.outcome == FAILED:
            raise CaseFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailure):
            result = excinfo.value.result
            parts = [f"clause {self.case.clause}: {self.case.requirement}", result.message]
            parts += [exchange.render() for exchange in result.exchanges]
            return "\n\n".join(parts)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.case.name} [clause {self.case.clause}]"
