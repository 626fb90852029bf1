"""What a user sees of `agora import` (issue 22, record 0385): on a terminal, for every file adapter, a progress bar
over the source's bytes redrawn in place (carriage return and erase-line, not a line per update) that reaches 100%,
with the counts and the rate on its line, then the summary table; off a terminal (here a log file) plain lines
without a control character; with --no-progress, the summary alone. A telemetry import counts its temporal
instances in all of them. The imports run under a pseudo-terminal, as from a shell."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import BrokerProcess

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ERASE = "\r\x1b[2K"  # back to the start of the line, erase it: the bar is redrawn in place
HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"  # the cursor, hidden while the bar is drawn, shown again after it
STYLE = re.compile(r"\x1b\[[0-9;]*m")  # colours
BAR = re.compile(r"━+ +(\d+)% +\S+ \S+ (\d+) entities(?:, (\d+) temporal)?, (\d+) rejected, [\d,]+/s")
PLAIN = re.compile(r"(\d+) entities(?:, (\d+) temporal instances)?, (\d+) rejected, [\d,]+/s, [\d.]+ s, "
                   r"100% of [\d.,]+ (?:bytes|kB|MB) read\n")  # fmt: skip
SOURCES = {  # adapter -> source, network, whether it sends temporal instances
    "gtfs": (FIXTURES / "gtfs" / "google-sample-gtfs.zip", "demo", False),
    "gtfs-rt": (FIXTURES / "gtfs-rt" / "synthetic-google-sample-feed.pb", "DTA", False),
    "epanet": (FIXTURES / "water" / "Net1.inp", "net1", False),
    "pandapower": (FIXTURES / "energy" / "pandapower-mv_oberrhein.json.gz", "oberrhein", False),
    "cgmes": (FIXTURES / "energy" / "cgmes-cigre-mv.zip", "cigre", False),
    "scl": (FIXTURES / "energy" / "scl" / "openscd-valid2007B4.scd", "s1", False),
    "comtrade": (FIXTURES / "energy" / "comtrade" / "sample_ascii.cfg", "ct", True),
    "historian": (f"{FIXTURES / 'energy' / 'historian-long.csv'}?tagmap={FIXTURES / 'energy' / 'historian-tagmap.csv'}",
                  "oberrhein", True),
    "usgs-nwis": (FIXTURES / "water" / "usgs-nwis-iv-2sites.json", "usgs", True),
    "wqx": (FIXTURES / "water" / "wqp-wqx3-results.csv", "wqx", True),
    "waterml2": (FIXTURES / "water" / "waterml2-52n-sos-getobservation.xml", "52n", True),
}  # fmt: skip
LOGGED = ("gtfs", "historian")
NOT_FILES = {"links"}  # computes relationships over what a broker holds: it has no file to import


# One process runs the imports one after the other through the CLI's entry point, its stderr the terminal: the same
# code as `agora import ...` from a shell, with Python and the package imported once rather than eleven times. An
# import given as logged writes to a log file instead (its stderr, file descriptor 2, is the file), which the runner
# then passes on byte for byte (base64: the terminal would add a carriage return to each of its line ends).
RUNNER = """
import base64, json, os, sys, tempfile
from broker.cli import main
for name, args, logged in json.loads(sys.argv[1]):
    if logged:
        log, terminal = tempfile.TemporaryFile(), os.dup(2)
        os.dup2(log.fileno(), 2)
    code = main(args)
    if logged:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        log.seek(0)
        sys.stderr.write(base64.b64encode(log.read()).decode())
    sys.stderr.write(f"\\n=== {name} exit {code}\\n")
    sys.stderr.flush()
"""


def on_a_terminal(commands: dict[str, tuple[list[str], bool]]) -> dict[str, tuple[int, str]]:
    """Each `agora ARGS...` with stdout and stderr a pseudo-terminal, or a log file when it is given as logged:
    name -> its exit status and what it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps([(n, *c) for n, c in commands.items()])],
                               stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=300) == 0
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    results, rest = {}, text
    for name, (_, logged) in commands.items():
        out, marker, rest = rest.partition(f"\n=== {name} exit ")
        assert marker, text
        code, _, rest = rest.partition("\n")
        results[name] = (int(code), base64.b64decode(out).decode() if logged else out)
    return results


def command(adapter: str, url: str, tenant: str, *extra: str) -> list[str]:
    source, network, _ = SOURCES[adapter]
    return ["import", adapter, str(source), "--broker", url, "--network", network, "--tenant", tenant, *extra]


@pytest.fixture(scope="module")
def imports(broker_server: BrokerProcess) -> dict[str, tuple[int, str]]:
    # a tenant of this test's own: the broker is the session's, and other tests query its default tenant by type
    commands = {adapter: (command(adapter, broker_server.url, "import-progress"), False) for adapter in SOURCES}
    commands["gtfs --no-progress"] = (command("gtfs", broker_server.url, "import-progress", "--no-progress"), False)
    # off a terminal: one entity import, one telemetry import with rejected rows, in a tenant of their own, where
    # the temporal instances are new (those the terminal's import recorded are not sent twice)
    for adapter in LOGGED:
        commands[f"{adapter} logged"] = (command(adapter, broker_server.url, "import-logged"), True)
    return on_a_terminal(commands)


def test_every_file_adapter_is_covered() -> None:
    from adapters.base import registered

    assert set(registered()) == set(SOURCES) | NOT_FILES


def summary(out: str, temporal: bool) -> tuple[int, int, int]:
    """The entities, temporal instances and rejected rows the summary table tells."""
    sent = re.search(r"entities sent: (\d+)\n((?:  \S+ +\d+\n)+)", out)  # the table: one row per entity type
    assert sent is not None, out
    rows = {line.split()[0]: int(line.split()[1]) for line in sent[2].splitlines()}
    assert int(sent[1]) == sum(rows.values()) > 0
    assert re.search(r"created: \d+, updated: \d+, unchanged: \d+, refused by the broker: 0\n", out), out
    rejected = re.search(r"rejected rows: (\d+)\n", out)
    assert rejected is not None, out
    instances = re.search(r"temporal instances sent: (\d+)\n", out)
    assert (instances is not None) == temporal, out
    return int(sent[1]), int(instances[1]) if instances else 0, int(rejected[1])


@pytest.mark.parametrize("adapter", sorted(SOURCES))
def test_a_terminal_import_draws_a_bar_to_100_percent_and_a_summary_table(imports: dict[str, tuple[int, str]],
                                                                          adapter: str) -> None:  # fmt: skip
    temporal = SOURCES[adapter][2]
    status, out = imports[adapter]
    assert status in (0, 3), out  # 3: a source's own rejected rows (historian's two rows without a value)
    drawn, shown, table = out.partition("\n" + SHOW)
    assert shown and drawn.startswith(HIDE) and table.startswith("entities sent: "), repr(out)
    frames = [STYLE.sub("", frame) for frame in drawn.removeprefix(HIDE).split(ERASE)]
    assert all("\n" not in frame and "\r" not in frame for frame in frames), repr(out)  # each in place of the last
    bars = [BAR.fullmatch(frame.rstrip()) for frame in frames]
    percents = [int(bar[1]) for bar in bars if bar is not None]
    assert percents and percents == sorted(percents) and percents[-1] == 100, repr(out)
    last = bars[-1]
    assert last is not None, repr(out)  # the last frame is the bar at 100%, with the final counts
    assert (int(last[2]), int(last[3] or 0), int(last[4])) == summary(table, temporal)


def test_with_no_progress_a_terminal_gets_the_summary_alone(imports: dict[str, tuple[int, str]]) -> None:
    status, out = imports["gtfs --no-progress"]
    assert status == 0 and out.startswith("entities sent: ") and "\x1b" not in out and "\r" not in out, repr(out)
    summary(out, temporal=False)


@pytest.mark.parametrize("adapter", LOGGED)
def test_off_a_terminal_the_progress_is_plain_lines(imports: dict[str, tuple[int, str]], adapter: str) -> None:
    status, out = imports[f"{adapter} logged"]
    assert status in (0, 3), out
    assert not any(c < " " and c != "\n" for c in out), repr(out)  # no colour, no cursor move, no carriage return
    progress, sent, table = out.partition("entities sent: ")
    assert sent, out
    last = PLAIN.search(progress)
    assert last is not None and progress.endswith(last[0]), repr(out)
    assert (int(last[1]), int(last[2] or 0), int(last[3])) == summary(sent + table, SOURCES[adapter][2])
