"""Operations records that other programs write and the broker only reads (issue 21, records 0404 and 0405):

- the import runs of `agora import --metrics-file DIR/NAME.prom` (adapters/import_metrics.py, record 0243), read
  from the directory `import_metrics_dir`: the last run of each file;
- the conformance kit's JSON reports (`agora conformance --report DIR/NAME.json`, conformance/reports.py), read
  from `conformance_reports_dir`: the newest one.

Both are broker-wide (neither file names a tenant) and need the admin action, as the audit log does. A setting
left empty is a resource this broker does not have (404); a configured directory or file that cannot be read, or
that holds something else than it should, is the host's state, for its operator to fix (503, never a 500)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import FileUnavailable, ResourceNotFound

#: node_exporter's textfile collector reads *.prom files, so one directory can serve both; the file the importer
#: writes aside before renaming it (NAME.prom.<pid>.<thread>) is not one, nor the kit's (.NAME.json.<pid>.tmp).
IMPORT_FILES: Final = ".prom"
REPORT_FILES: Final = ".json"
#: The `format` of a kit's JSON report (conformance/reports.py REPORT_FORMAT; a test holds the two equal).
REPORT_FORMAT: Final = "agora-conformance-report/1"
#: The most import files read (the newest), and the largest file read: the directory is the operator's, but a
#: stray big file must not fill the broker's memory. A report of the whole kit is about 200 kB.
MAX_IMPORT_FILES: Final = 500
MAX_FILE_BYTES: Final = 16 * 1024 * 1024
#: The outcomes of agora_import_last_entities, as the API names them.
OUTCOMES: Final = {
    "created": "created",
    "updated": "updated",
    "unchanged": "unchanged",
    "refused": "refused",
    "invalid": "invalid",
    "pruned": "pruned",
    "rejected_rows": "rejectedRows",
}
_REPORT_MEMBERS: Final = {"started": str, "counts": dict, "clauses": list, "cases": list}


@dataclass
class ImportRun:
    """The last run of one adapter as one metrics file tells it."""

    file: str
    adapter: str
    ended_at: str = ""
    duration: float | None = None
    succeeded: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "adapter": self.adapter,
            "endedAt": self.ended_at,
            "durationSeconds": self.duration,
            "succeeded": self.succeeded,
            "counts": {name: self.counts.get(name, 0) for name in OUTCOMES.values()},
            "sent": dict(sorted(self.sent.items())),
        }


class Operations:
    def __init__(self, access: Access, import_metrics_dir: str, conformance_reports_dir: str) -> None:
        self.access = access
        self.import_dir = import_metrics_dir
        self.reports_dir = conformance_reports_dir

    async def import_runs(self, caller: Caller) -> list[dict[str, Any]]:
        """The runs of the metrics files, newest first; a file that cannot be parsed is listed with its problem."""
        await self.access.require(caller, "admin", "read the import runs")
        directory = _configured(self.import_dir, "import_metrics_dir", "import runs")
        return await asyncio.to_thread(read_import_runs, directory)

    async def latest_report(self, caller: Caller) -> dict[str, Any]:
        """The newest (by modification time) JSON report of the kit, with the name of its file."""
        await self.access.require(caller, "admin", "read the conformance reports")
        directory = _configured(self.reports_dir, "conformance_reports_dir", "conformance reports")
        return await asyncio.to_thread(read_latest_report, directory)


def _configured(value: str, setting: str, what: str) -> Path:
    if not value:
        raise ResourceNotFound(f"this broker reads no {what}: the setting {setting} is not set")
    return Path(value)


# -- files --------------------------------------------------------------------------------------------------------
def _listed(directory: Path, suffix: str, setting: str) -> list[tuple[float, Path]]:
    """(modification time, path) of the regular files of `directory` named *`suffix`, newest first (scandir, not
    glob: glob says nothing of a directory it cannot read)."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.endswith(suffix) or entry.name.startswith("."):
                    continue
                try:
                    if entry.is_file():
                        found.append((entry.stat().st_mtime, Path(entry.path)))
                except OSError:  # gone since the listing, or a dangling link: not a file to read
                    continue
    except OSError as exc:
        raise FileUnavailable(f"the {setting} {directory} cannot be read: {exc.strerror or exc}") from exc
    return sorted(found, key=lambda f: (f[0], f[1].name), reverse=True)


def _read(path: Path) -> str:
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    return raw.decode("utf-8")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- import runs --------------------------------------------------------------------------------------------------
def read_import_runs(directory: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for mtime, path in _listed(directory, IMPORT_FILES, "import_metrics_dir")[:MAX_IMPORT_FILES]:
        try:
            runs = parse_import_metrics(path.name, _read(path), mtime)
        except (OSError, ValueError) as exc:  # one bad file does not hide the others
            out.append({"file": path.name, "problem": f"not an import metrics file: {exc}"})
            continue
        out += [run.to_doc() for run in runs]
    return sorted(out, key=lambda run: str(run.get("endedAt", "")), reverse=True)


def parse_import_metrics(name: str, text: str, mtime: float) -> list[ImportRun]:
    """The runs (one per adapter label) of the Prometheus text `text`; a file without agora_import_* samples (another
    exporter's, in a textfile collector's directory) has none. ValueError when the text is not the format."""
    from prometheus_client.parser import text_string_to_metric_families

    runs: dict[str, ImportRun] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            adapter = sample.labels.get("adapter")
            if adapter is None or not sample.name.startswith("agora_import_last_"):
                continue
            run = runs.setdefault(adapter, ImportRun(name, adapter))
            _take(run, sample.name, sample.labels, sample.value)
    for run in runs.values():
        run.ended_at = run.ended_at or _iso(mtime)  # a run that did not write everything has no success timestamp
    return list(runs.values())


def _take(run: ImportRun, metric: str, labels: dict[str, str], value: float) -> None:
    if metric == "agora_import_last_entities" and labels.get("outcome") in OUTCOMES:
        run.counts[OUTCOMES[labels["outcome"]]] = _count(value)
    elif metric == "agora_import_last_entities_sent" and "type" in labels:
        run.sent[labels["type"]] = _count(value)
    elif metric == "agora_import_last_duration_seconds":
        run.duration = round(_positive(value, "a duration"), 3)
    elif metric == "agora_import_last_success_timestamp_seconds":
        run.succeeded = True
        try:
            run.ended_at = _iso(_positive(value, "a time"))
        except (OverflowError, OSError) as exc:  # beyond the years a datetime holds
            raise ValueError(f"{value} is not a time") from exc


def _positive(value: float, what: str) -> float:
    """`value` when it is finite and not negative (NaN and +Inf are valid sample values of the format)."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{value} is not {what}")
    return value


def _count(value: float) -> int:
    if _positive(value, "a count") != int(value):  # fractional: no count of entities
        raise ValueError(f"{value} is not a count")
    return int(value)


# -- conformance reports ------------------------------------------------------------------------------------------
def read_latest_report(directory: Path) -> dict[str, Any]:
    files = _listed(directory, REPORT_FILES, "conformance_reports_dir")
    if not files:
        raise ResourceNotFound(
            f"no conformance report in {directory} yet: agora conformance --broker URL --report {directory}/NAME.json"
        )
    path = files[0][1]
    try:
        doc = json.loads(_read(path))
        _check_report(doc)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FileUnavailable(
            f"the newest file of conformance_reports_dir, {path.name}, is not a JSON report of the conformance kit "
            f"({REPORT_FORMAT}): {exc}"
        ) from exc
    return {**doc, "file": path.name}


def _check_report(doc: object) -> None:
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("format") != REPORT_FORMAT:
        raise ValueError(f"its format is {doc.get('format')!r}")
    wrong = [name for name, kind in _REPORT_MEMBERS.items() if not isinstance(doc.get(name), kind)]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} missing or of the wrong kind")
