"""What a user sees of `agora import` on a terminal (issue 22): for every file adapter, the progress line rewritten
in place (carriage return and erase-line, not a line per update) and the summary table at the end; a telemetry
import counts its temporal instances in both. The import runs under a pseudo-terminal, as from a shell."""

from __future__ import annotations

import os
import pty
import re
import select
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


def on_terminals(commands: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Each `agora ARGS...` with its stdout and stderr a pseudo-terminal of its own, all at once (each is mostly
    Python starting up): name -> its exit status and what it wrote there."""
    running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
    for name, args in commands.items():
        leader, follower = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "broker.cli", *args], stdout=follower, stderr=follower,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
        os.close(follower)
        running[leader] = (name, process)
    output: dict[int, list[bytes]] = {fd: [] for fd in running}
    open_fds = set(running)
    while open_fds:
        for fd in select.select(list(open_fds), [], [], 120)[0] or list(open_fds):
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the process closed its end
                chunk = b""
            if chunk:
                output[fd].append(chunk)
            else:
                open_fds.discard(fd)
                os.close(fd)
    return {name: (process.wait(timeout=120), b"".join(output[fd]).decode(errors="replace").replace("\r\n", "\n"))
            for fd, (name, process) in running.items()}  # fmt: skip


@pytest.fixture(scope="module")
def imports(broker_server: BrokerProcess) -> dict[str, tuple[int, str]]:
    return on_terminals({adapter: ["import", adapter, str(source), "--broker", broker_server.url, "--network",
                                   network] for adapter, (source, network, _) in SOURCES.items()})  # fmt: skip


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
