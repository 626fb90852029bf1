"""Documentation is checked: every CLI flag, setting and error type is documented (STYLE.md, datasette habit)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from broker.cli import build_parser
from broker.core import errors
from broker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ERRORS_DOC = (ROOT / "docs" / "errors.md").read_text()


def test_every_serve_flag_is_in_the_readme() -> None:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = [opt for action in serve._actions for opt in action.option_strings if opt.startswith("--")]
    assert flags
    for flag in flags:
        assert f"`{flag}`" in README or flag == "--help", flag


def test_every_setting_has_its_environment_variable_in_the_readme() -> None:
    for field in dataclasses.fields(Settings):
        assert f"`AGORA_{field.name.upper()}`" in README, field.name


def test_every_error_type_is_documented() -> None:
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.NgsiLdError) and cls is not errors.HttpError:
            if cls is errors.NgsiLdError:
                continue
            assert f"| {cls.problem} |" in ERRORS_DOC, cls.problem


def test_every_decision_record_names_a_clause() -> None:
    records = sorted((ROOT / "docs" / "decisions").glob("0*.md"))
    assert records
    for record in records:
        text = record.read_text()
        assert "lause" in text or "ARCHITECTURE" in text, record.name
