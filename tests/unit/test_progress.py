"""The byte meter behind `agora import`'s progress bar (adapters/progress.py; issue 22): what a counting reader
reports, and, for every file adapter on its fixture, that the bytes read reach the total expected before reading."""

from __future__ import annotations

import gzip
import io
import os
import pty
import re
import select
import zipfile
from pathlib import Path

import pytest

from adapters.base import load_adapter
from adapters.progress import ByteMeter, Progress

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOURCES = {  # adapter -> source, network (those of tests/e2e/test_import_progress.py)
    "gtfs": (FIXTURES / "gtfs" / "google-sample-gtfs.zip", "demo"),
    "gtfs-rt": (FIXTURES / "gtfs-rt" / "synthetic-google-sample-feed.pb", "DTA"),
    "epanet": (FIXTURES / "water" / "Net1.inp", "net1"),
    "pandapower": (FIXTURES / "energy" / "pandapower-mv_oberrhein.json.gz", "oberrhein"),
    "cgmes": (FIXTURES / "energy" / "cgmes-cigre-mv.zip", "cigre"),
    "scl": (FIXTURES / "energy" / "scl" / "openscd-valid2007B4.scd", "s1"),
    "comtrade": (FIXTURES / "energy" / "comtrade" / "sample_ascii.cfg", "ct"),
    "historian": (f"{FIXTURES / 'energy' / 'historian-long.csv'}?tagmap={FIXTURES / 'energy' / 'historian-tagmap.csv'}",
                  "oberrhein"),
    "usgs-nwis": (FIXTURES / "water" / "usgs-nwis-iv-2sites.json", "usgs"),
    "wqx": (FIXTURES / "water" / "wqp-wqx3-results.csv", "wqx"),
    "waterml2": (FIXTURES / "water" / "waterml2-52n-sos-getobservation.xml", "52n"),
}  # fmt: skip


def test_a_counting_reader_counts_what_is_read_by_every_read_method(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    meter = ByteMeter()
    with meter.open(path) as reader:
        assert meter.total == 10240 and meter.read == 0
        assert len(reader.read(100)) == 100 and meter.read == 100
        assert len(reader.read1(50)) == 50 and meter.read == 150
        buffer = bytearray(1000)
        assert reader.readinto(buffer) == 1000 and meter.read == 1150
        assert len(reader.read()) == 10240 - 1150 and meter.read == 10240
        assert reader.read(10) == b"" and meter.read == 10240


def test_a_part_read_twice_counts_once_and_parts_add_up(tmp_path: Path) -> None:
    archive = tmp_path / "feed.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("a.txt", "x" * 5000)
        out.writestr("b.txt", "y" * 3000)
    meter = ByteMeter()
    with zipfile.ZipFile(archive) as feed:
        meter.expect(sum(i.file_size for i in feed.infolist()))  # the uncompressed sizes, not the zip's
        for name in ("a.txt", "a.txt", "b.txt"):
            with io.TextIOWrapper(meter.counted(feed.open(name), name), encoding="utf-8") as text:
                assert len(text.read()) in (5000, 3000)
    assert meter.total == meter.read == 8000


def test_a_gzip_file_counts_its_compressed_bytes(tmp_path: Path) -> None:
    path = tmp_path / "doc.json.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}' * 1000))
    meter = ByteMeter()
    with meter.open(path) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
        assert len(unzipped.read()) == 8000
    assert meter.total == meter.read == path.stat().st_size < 8000


def test_a_source_of_unknown_size_has_no_total() -> None:
    meter = ByteMeter()
    assert meter.total is None  # nothing expected: an adapter that does not read through its meter
    meter.expect(100)
    meter.expect(None)  # a URL among the parts: no percentage can be honest
    meter.advance("https://example.org/feed", 400)
    assert meter.total is None and meter.read == 400


@pytest.mark.parametrize("adapter", sorted(SOURCES))
def test_every_file_adapter_reads_exactly_the_bytes_it_expected(adapter: str) -> None:
    source, network = SOURCES[adapter]
    translator = load_adapter(adapter)(network=network)
    assert sum(1 for _ in translator.entities(str(source))) > 0
    assert translator.meter.total is not None and translator.meter.total > 0
    assert translator.meter.read == translator.meter.total


def test_a_cgmes_directory_expects_the_size_of_its_profiles(tmp_path: Path) -> None:
    with zipfile.ZipFile(FIXTURES / "energy" / "cgmes-cigre-mv.zip") as archive:
        archive.extractall(tmp_path)
        unzipped = sum(i.file_size for i in archive.infolist() if i.filename.endswith((".xml", ".rdf")))
    folder = next(p.parent for p in tmp_path.rglob("*.xml"))
    translator = load_adapter("cgmes")(network="cigre")
    assert sum(1 for _ in translator.entities(str(folder))) > 0
    assert translator.meter.read == translator.meter.total == unzipped


def test_the_plain_line_says_how_much_of_the_source_was_read() -> None:
    out = io.StringIO()
    meter = ByteMeter()
    meter.expect(2_000_000)
    meter.advance("f", 500_000)
    progress = Progress(out, every=0, meter=meter, rejected=lambda: 3)
    progress.update(10, 40)
    meter.advance("f", 2_000_000)
    progress.done(20, 80)
    first, last = out.getvalue().splitlines()
    assert first.startswith("10 entities, 40 temporal instances, 3 rejected, ")
    assert first.endswith(", 25% of 2.0 MB read")
    assert last.startswith("20 entities, 80 temporal instances, 3 rejected, ")
    assert last.endswith(", 100% of 2.0 MB read")
    assert not any(c < " " for c in out.getvalue().replace("\n", ""))  # no control characters off a terminal


def test_no_progress_prints_nothing() -> None:
    out = io.StringIO()
    progress = Progress(out, every=0, enabled=False)
    progress.update(10)
    progress.done(20)
    assert out.getvalue() == ""


def test_on_a_terminal_a_source_of_unknown_size_gets_a_spinner_with_the_counts() -> None:
    leader, follower = pty.openpty()
    meter = ByteMeter()
    meter.expect(None)  # a URL
    with os.fdopen(follower, "w", encoding="utf-8") as terminal:
        progress = Progress(terminal, meter=meter, rejected=lambda: 1)
        meter.advance("https://example.org/feed.pb", 2500)
        progress.update(7)
        progress.done(9)
    drawn = b""
    while select.select([leader], [], [], 0.5)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the writing end is closed and all was read
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    last = re.sub(r"\x1b\[[0-9;]*m", "", drawn.decode()).split("\r\x1b[2K")[-1]
    assert re.fullmatch(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] +2\.5/\? kB 9 entities, 1 rejected, [\d,]+/s\s*\x1b\[\?25h", last), repr(drawn)
