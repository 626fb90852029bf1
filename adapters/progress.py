"""What `agora import` (and `agora dump` / `restore`) show while they run: a progress bar on a terminal, a plain
line every few seconds elsewhere (issue 22, docs/decisions/0385).

The bar measures the bytes of the source, not its rows: an adapter streams its source and knows no row count until
the end, but it knows the size of what it is about to read (a file, the uncompressed members of a zip, the files
of a directory) before reading it. :class:`ByteMeter` holds that total and the bytes read so far; an adapter reads
through :meth:`ByteMeter.counted` (a :class:`CountingReader`), which adds to a plain integer on each read of a
buffer (never per row). The terminal is redrawn from those counters by rich's refresh thread, ten times a second
at most, whatever the import's pace.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

REFRESHES_PER_SECOND = 10


class ByteMeter:
    """The bytes an adapter is going to read from its source (``total``, None when it cannot be known: a URL, a
    stream) and the bytes it has read (``read``). A part read again (a zip member read twice) counts once."""

    def __init__(self) -> None:
        self.expected = 0
        self.unknown = False
        self.read = 0
        self._parts: dict[str, int] = {}  # part -> the furthest offset read in it

    @property
    def total(self) -> int | None:
        return None if self.unknown or not self.expected else self.expected

    def expect(self, size: int | None) -> None:
        """``size`` more bytes to read; None: a part of unknown size, so the whole has no known total."""
        if size is None:
            self.unknown = True
        else:
            self.expected += size

    def expect_files(self, *paths: str | os.PathLike[str]) -> None:
        for path in paths:
            self.expect(os.path.getsize(path))

    def advance(self, part: str, offset: int) -> None:
        """``part`` was read up to ``offset``: what lies beyond the furthest offset read before is new."""
        before = self._parts.get(part, 0)
        if offset > before:
            self._parts[part] = offset
            self.read += offset - before

    def counted(self, stream: IO[bytes], part: str) -> CountingReader:
        """``stream`` (binary, already expected), counting what is read from it as ``part``."""
        return CountingReader(stream, self, part)

    def open(self, path: str | os.PathLike[str]) -> CountingReader:
        """``path`` opened for binary reading, its size expected and its bytes counted as they are read."""
        stream = open(path, "rb")  # noqa: SIM115 - the reader closes it
        self.expect(os.fstat(stream.fileno()).st_size)
        return self.counted(stream, os.fspath(path))

    def open_text(self, path: str | os.PathLike[str], encoding: str, newline: str | None = None) -> TextIO:
        """``path`` as text (as ``open(path, encoding=..., newline=...)``), counted as :meth:`open`."""
        return io.TextIOWrapper(self.open(path), encoding=encoding, newline=newline)

    def read_bytes(self, path: str | os.PathLike[str], expected: bool = False) -> bytes:
        """All of ``path`` (as ``Path.read_bytes``), counted; ``expected``: its size was expected already."""
        if expected:
            with self.counted(open(path, "rb"), os.fspath(path)) as stream:
                return stream.read()
        with self.open(path) as stream:
            return stream.read()


class CountingReader(io.BufferedIOBase):
    """A binary reader over ``stream`` that tells ``meter`` how far into it the reads went.

    What it wraps is read by buffers (TextIOWrapper asks for 8 KB, lxml and zipfile for 32-64 KB), so counting costs
    one addition per buffer. A consumer that reads a whole file at once (json.load, protobuf) advances the meter by
    the whole file in one step.
    """

    def __init__(self, stream: IO[bytes], meter: ByteMeter, part: str) -> None:
        super().__init__()
        self._stream = stream
        self._meter = meter
        self._part = part
        self._offset = 0

    def _count(self, size: int) -> None:
        self._offset += size
        self._meter.advance(self._part, self._offset)

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(-1 if size is None else size)
        self._count(len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._stream, "read1", None)
        data = read1(size) if read1 is not None else self._stream.read(size)
        self._count(len(data))
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        size = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self._count(size or 0)
        return int(size or 0)

    def readable(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return self._part

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


class Progress:
    """What an import shows of its progress on ``stream`` (stderr): ``update`` after each batch sent, ``done`` at the
    end (``close`` on failure).

    On a terminal: a rich progress bar over the source's bytes (a spinner when ``meter`` knows no total), with the
    counts and the rate, redrawn at most ten times a second by rich's own thread. Elsewhere (a pipe, a log file,
    CI): a plain line at most every ``every`` seconds, no control characters. ``enabled=False``
    (``--no-progress``): nothing at all, the summary that follows says it all.
    """

    def __init__(self, stream: TextIO | None = None, every: float = 1.0, unit: str = "entities",
                 meter: ByteMeter | None = None, rejected: Callable[[], int] | None = None,
                 enabled: bool = True) -> None:  # fmt: skip
        self.stream = stream or sys.stderr
        self.unit = unit
        self.meter = meter
        self.rejected = rejected
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.every = every
        self.start = self.last = time.monotonic()
        self.count = self.instances = 0
        self._bar: RichProgress | None = _start_bar(self) if enabled and self.tty else None

    def counts(self, short: bool = False) -> str:
        """``instances``: the temporal instances sent besides the entities (a telemetry import's bulk), counted in
        the rate: an import of one fault record and its 40,000 samples is not "1 entity, 0/s". ``short``: the bar's
        wording, which leaves the line 80 columns even with every count."""
        both = f", {self.instances} temporal{'' if short else ' instances'}" if self.instances else ""
        rejected = f", {self.rejected()} rejected" if self.rejected is not None else ""
        return f"{self.count} {self.unit}{both}{rejected}, {self.rate():,.0f}/s"

    def rate(self) -> float:
        return (self.count + self.instances) / max(time.monotonic() - self.start, 1e-9)

    def line(self) -> str:
        """The plain line: the counts, the time, and the share of the source read when its size is known."""
        line = f"{self.counts()}, {time.monotonic() - self.start:.1f} s"
        total = self.meter.total if self.meter is not None else None
        if self.meter is not None and total is not None:
            line += f", {min(self.meter.read / total, 1.0):.0%} of {_size(total)} read"
        return line

    def update(self, count: int, instances: int = 0) -> None:
        self.count, self.instances = count, instances
        if self._bar is not None or not self.enabled:
            return  # the bar's thread draws the new counts at its next refresh
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def done(self, count: int, instances: int = 0) -> None:
        self.count, self.instances = count, instances
        if self._bar is not None:
            self.close()  # the bar's last frame stays on screen, with the final counts
            return
        if not self.enabled:
            return
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Stop the bar (its thread, the hidden cursor); the plain printer has nothing to stop."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.stop()


def _size(count: int) -> str:
    """Decimal units, as rich's DownloadColumn writes them on the bar."""
    if count < 1000:
        return f"{count} bytes"
    exponent = min(3, (len(str(count)) - 1) // 3)  # 1 kB, 2 MB, 3 GB and beyond
    return f"{count / 1000**exponent:,.1f} {('kB', 'MB', 'GB')[exponent - 1]}"


def _start_bar(progress: Progress) -> RichProgress:
    """The rich bar of ``progress``, started (rich is imported here: a run off a terminal does without it)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, ProgressColumn, SpinnerColumn, Task, TaskProgressColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class BarOrSpinner(ProgressColumn):
        """A bar over a known total, a spinner without one."""

        def __init__(self) -> None:
            super().__init__()
            self.bar, self.spinner = BarColumn(bar_width=16), SpinnerColumn()

        def render(self, task: Task) -> Any:
            return (self.bar if task.total is not None else self.spinner).render(task)

    class Counts(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(progress.counts(short=True), no_wrap=True, overflow="ellipsis")  # one line, even on 80 columns

    class MeteredBar(RichProgress):
        """Reads the byte meter before each frame: the adapter's reads only add to an integer."""

        def get_renderables(self) -> Any:
            meter = progress.meter
            if meter is not None:
                for task in self.tasks:
                    self.update(task.id, completed=meter.read, total=meter.total)
            yield from super().get_renderables()

    console = Console(file=progress.stream, force_terminal=True)
    sized = progress.meter is not None  # dump and restore count records, not bytes
    measured = [TaskProgressColumn(text_format_no_percentage=""), DownloadColumn()] if sized else []
    bar = MeteredBar(BarOrSpinner(), *measured, Counts(), console=console, refresh_per_second=REFRESHES_PER_SECOND,
                     transient=False)  # fmt: skip
    bar.add_task("import", total=None)
    bar.start()
    return bar
