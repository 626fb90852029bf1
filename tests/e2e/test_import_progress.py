"""What a user sees of `agora import` on a terminal (issue 22): for every file adapter, the progress line rewritten
in place (carriage return and erase-line, not a line per update) and the summary table at the end; a telemetry
import counts its temporal instances in both. The imports run under a pseudo-terminal, as from a shell."""

from __future__ import annotations

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
ERASE = "\r\x1b[K"  # back to the start of the line, erase it: the line is rewritten in place
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
NOT_FILES = {"links"}  # computes relationships over what a broker holds: it has no file to import


# One process runs the imports one after the other through the CLI's entry point, its stderr the terminal: the same
# code as `agora import ...` from a shell, with Python and the package imported once rather than eleven times.
RUNNER = """
import json, sys
from broker.cli import main
for name, args in json.loads(sys.argv[1]):
    code = main(args)
    sys.stderr.write(f"\\n=== {name} exit {code}\\n")
    sys.stderr.flush()
"""


def on_a_terminal(commands: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Each `agora ARGS...` with stdout and stderr a pseudo-terminal: name -> its exit status and what it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(list(commands.items()))], stdout=follower,
                               stderr=follower, stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
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
    for name in commands:
        out, marker, rest = rest.partition(f"\n=== {name} exit ")
        assert marker, text
        code, _, rest = rest.partition("\n")
        results[name] = (int(code), out)
    return results


@pytest.fixture(scope="module")
def imports(broker_server: BrokerProcess) -> dict[str, tuple[int, str]]:
    # a tenant of this test's own: the broker is the session's, and other tests query its default tenant by type
    return on_a_terminal({adapter: ["import", adapter, str(source), "--broker", broker_server.url, "--network",
                                    network, "--tenant", "import-progress"]
                          for adapter, (source, network, _) in SOURCES.items()})  # fmt: skip


def test_every_file_adapter_is_covered() -> None:
    from adapters.base import registered

    assert set(registered()) == set(SOURCES) | NOT_FILES


@pytest.mark.parametrize("adapter", sorted(SOURCES))
def test_a_terminal_import_shows_progress_in_place_and_a_summary_table(imports: dict[str, tuple[int, str]],
                                                                       adapter: str) -> None:  # fmt: skip
    temporal = SOURCES[adapter][2]
    status, out = imports[adapter]
    assert status in (0, 3), out  # 3: a source's own rejected rows (historian's two rows without a value)
    progress = re.search(re.escape(ERASE) + r"(\d+) entities(?:, (\d+) temporal instances)?, [\d,]+/s, [\d.]+ s\n", out)
    assert progress is not None, repr(out)
    entities, instances = int(progress[1]), int(progress[2] or 0)
    sent = re.search(r"entities sent: (\d+)\n((?:  \S+ +\d+\n)+)", out)  # the table: one row per entity type
    assert sent is not None, out
    rows = {line.split()[0]: int(line.split()[1]) for line in sent[2].splitlines()}
    assert int(sent[1]) == sum(rows.values()) == entities > 0
    assert re.search(r"created: \d+, updated: \d+, unchanged: \d+, refused by the broker: 0\n", out), out
    assert "rejected rows: " in out
    if temporal:
        assert instances > 0 and f"temporal instances sent: {instances}\n" in out, out
    else:
        assert instances == 0 and "temporal instances sent" not in out
