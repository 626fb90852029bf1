"""The kit's documentation is checked: every option of `agora conformance` and of the pytest plug-in, every optional
feature and every case module is in conformance/README.md."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from conformance.cli import add_arguments
from conformance.features import FEATURES
from conformance.runner import load_cases

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "conformance" / "README.md").read_text()


def test_every_cli_option_is_in_the_readme() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = [opt for action in parser._actions for opt in action.option_strings if opt.startswith("--")]
    assert "--broker" in flags
    for flag in flags:
        assert f"`{flag}`" in README or flag == "--help", flag


def test_every_pytest_option_is_in_the_readme(pytestconfig: pytest.Config) -> None:
    """The plug-in is loaded in this very session through its pytest11 entry point."""
    assert pytestconfig.pluginmanager.has_plugin("agora_conformance")
    group = pytestconfig._parser.getgroup("ngsi-ld-conformance")
    flags = [name for option in group.options for name in option.names()]
    assert "--broker-url" in flags
    for flag in flags:
        assert f"`{flag}`" in README or f"pytest {flag}" in README or f"`pytest {flag}" in README, flag


def test_every_feature_and_case_module_is_in_the_readme() -> None:
    for feature in FEATURES:
        assert f"`{feature}`" in README, feature
    for group in {case.group for case in load_cases()}:
        assert f"`{group}.py`" in README, group


def test_agora_command_registers_the_subcommand() -> None:
    from broker.cli import build_parser

    args = build_parser().parse_args(["conformance", "--broker", "http://b", "--only", "5.6", "--report", "r.md"])
    assert (args.command, args.broker, args.only, [p.name for p in args.report]) == (
        "conformance", "http://b", ["5.6"], ["r.md"],
    )  # fmt: skip
