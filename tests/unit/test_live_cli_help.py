"""`agora ingest ...` and `agora source` explain themselves (issue 22): each command's --help, run as a user runs it
(the installed `agora` script in a subprocess), exits 0 and describes every flag the command takes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from broker.cli import build_parser

AGORA = Path(sys.executable).parent / "agora"
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
LIVE = README.split("## Live ingestion", 1)[1].split("\n## ", 1)[0]  # the section users read about these commands
COMMANDS = [("ingest",), ("ingest", "mqtt"), ("ingest", "opcua"), ("ingest", "modbus"), ("source",)]


def _parser(words: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def test_every_ingest_and_source_command_is_listed() -> None:
    """A sub-command added later is added to COMMANDS too, and so gets its --help checked."""
    assert set(_parser(("ingest",))._subparsers._group_actions[0].choices) == {  # type: ignore[union-attr]
        words[1] for words in COMMANDS if len(words) == 2
    }


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_help_exits_0_and_describes_every_flag(words: tuple[str, ...]) -> None:
    done = subprocess.run([str(AGORA), *words, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"usage: agora {' '.join(words)}"), out
    parser = _parser(words)
    assert parser.description and parser.description.split()[0] in out
    for action in _flags(parser):
        assert action.help and action.help != argparse.SUPPRESS, f"{words} {action.option_strings}: no description"
        assert len(action.help.split()) >= 3, f"{words} {action.option_strings}: {action.help!r} explains little"
        for option in action.option_strings:
            assert option in out, f"{words}: {option} missing from --help"
    if len(words) == 1 and words[0] == "ingest":
        for kind in ("mqtt", "opcua", "modbus"):
            assert kind in out


@pytest.mark.parametrize("words", COMMANDS[1:], ids=" ".join)
def test_every_flag_is_in_the_readme(words: tuple[str, ...]) -> None:
    for action in _flags(_parser(words)):
        for option in action.option_strings:
            assert f"`{option}" in LIVE, f"agora {' '.join(words)} {option} is not in the README's Live ingestion"
