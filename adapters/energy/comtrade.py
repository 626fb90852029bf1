"""COMTRADE records (IEEE C37.111 / IEC 60255-24: 1991, 1999 and 2013) into a FaultRecord event with the samples
of its channels as temporal instances (docs/decisions/0363).

SOURCE is the ``.cfg`` (its ``.dat`` beside it, same stem) or a 2013 single-file ``.cff``. Data files in ASCII,
BINARY (int16), BINARY32 (int32) and FLOAT32, with the digital channels packed 16 to a word.

One ``FaultRecord`` entity per record (station, recording device, revision, start and trigger times, sampling
rates, line frequency), with two multi-attributes: ``analogValue`` (one datasetId per analog channel, the value
scaled ``a*x+b`` and taken to the primary side, in the canonical unit of its kind) and ``digitalState`` (one
datasetId per status channel, 0 or 1). The entity carries each channel's last sample, and its description as
sub-properties; every earlier sample goes through the temporal API (``TemporalFragment``), so the record's history
holds every sample with its observedAt.

``?scl=station.scd`` links the record to the SCL IED whose name is the recording device id (``recordedBy``) and to
the SCL substation whose name is the station name (``recordedAt``); ``sclNetwork=`` names the network the SCL file
was imported under (its stem by default, as the scl adapter does).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.attrs import Attr, entity, prop, quantity, rel
from adapters.base import Adapter, Entity, SourceError, TemporalFragment, split_source
from adapters.units import UnknownUnit, normalise

FRAGMENT_SIZE = 1000  # instances per temporal fragment (one POST each)
FILE_TYPES = {"ASCII": "", "BINARY": "h", "BINARY32": "i", "FLOAT32": "f"}  # struct code of an analog sample
MISSING = {"BINARY": -32768, "BINARY32": -(2**31)}
CFF_SECTION = re.compile(rb"^--- *file type: *([A-Za-z ]+?)(?: *: *(\d+))? *---[ \t]*\r?$", re.M | re.I)


@dataclass
class Analog:
    index: int
    channel_id: str
    phase: str
    component: str
    unit: str
    a: float
    b: float
    skew: float
    primary: float
    secondary: float
    side: str  # P or S: which side a*x+b gives

    def value(self, raw: float) -> float:
        """The primary-side value of a raw sample: a*x+b, times primary/secondary when that gives the secondary."""
        scaled = self.a * raw + self.b
        if self.side == "S" and self.secondary:
            return scaled * self.primary / self.secondary
        return scaled


@dataclass
class Digital:
    index: int
    channel_id: str
    phase: str
    component: str
    normal: int


@dataclass
class Config:
    station: str
    device: str
    revision: int
    analogs: list[Analog] = field(default_factory=list)
    digitals: list[Digital] = field(default_factory=list)
    frequency: float = 0.0
    rates: list[tuple[float, int]] = field(default_factory=list)  # (samples per second, last sample number)
    start: datetime = datetime.min
    trigger: datetime = datetime.min
    file_type: str = "ASCII"
    time_mult: float = 1.0
    time_code: str | None = None
    local_code: str | None = None
    time_quality: str | None = None
    leap_second: int | None = None


class ConfigReader:
    """The .cfg text line by line; every error names the file, the line and the field (SourceError)."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = [line.rstrip("\r") for line in text.rstrip("\r\n\x1a ").split("\n")]
        self.number = 0

    def fail(self, field_name: str, reason: str) -> SourceError:
        return SourceError(f"{self.file} line {self.number} field {field_name}: {reason}")

    def next(self, fields: int, names: tuple[str, ...]) -> list[str]:
        """The next line's fields (at least ``fields`` of them)."""
        self.number += 1
        if self.number > len(self.lines):
            return self._missing(names[0])
        parts = [p.strip() for p in self.lines[self.number - 1].split(",")]
        if len(parts) < fields:
            raise self.fail(names[min(len(parts), len(names) - 1)], "required value is missing")
        return parts

    def _missing(self, name: str) -> list[str]:
        raise self.fail(name, "the file ends before this line")

    def number_of(self, text: str, name: str, kind: type = float) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise self.fail(name, f"not a number: {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(name, f"not a number: {text!r}")
        return value

    def read(self) -> Config:
        station, device, *rest = self.next(2, ("station_name", "rec_dev_id"))
        revision = self.number_of(rest[0], "rev_year", int) if rest and rest[0] else 1991
        if revision not in (1991, 1999, 2013):
            raise self.fail("rev_year", f"not 1991, 1999 or 2013: {revision}")
        config = Config(station, device, revision)
        total, analog, digital = self.next(3, ("TT", "##A", "##D"))[:3]
        counts = [self.number_of(t.rstrip("AaDd"), n, int) for t, n in ((total, "TT"), (analog, "##A"),
                                                                          (digital, "##D"))]  # fmt: skip
        if not analog.upper().endswith("A") or not digital.upper().endswith("D") or counts[0] != counts[1] + counts[2]:
            raise self.fail("TT", f"{total},{analog},{digital}: TT must be ##A + ##D, written nA and nD")
        config.analogs = [self._analog() for _ in range(counts[1])]
        config.digitals = [self._digital() for _ in range(counts[2])]
        config.frequency = self.number_of(self.next(1, ("lf",))[0], "lf")
        self._rates(config)
        config.start = self._moment(config.revision, "start")
        config.trigger = self._moment(config.revision, "trigger")
        config.file_type = self.next(1, ("ft",))[0].upper()
        if config.file_type not in FILE_TYPES:
            raise self.fail("ft", f"not ASCII, BINARY, BINARY32 or FLOAT32: {config.file_type!r}")
        if config.revision >= 1999:
            config.time_mult = self.number_of(self.next(1, ("timemult",))[0], "timemult")
        if config.revision >= 2013:
            self._time_codes(config)
        return config

    def _analog(self) -> Analog:
        names = ("An", "ch_id", "ph", "ccbm", "uu", "a", "b", "skew", "min", "max", "primary", "secondary", "PS")
        parts = self.next(10, names)
        parts += [""] * (13 - len(parts))
        a, b, skew = (self.number_of(parts[i], names[i]) for i in (5, 6, 7))
        primary = self.number_of(parts[10], "primary") if parts[10] else 1.0
        secondary = self.number_of(parts[11], "secondary") if parts[11] else 1.0
        side = (parts[12] or "P").upper()
        if side not in ("P", "S"):
            raise self.fail("PS", f"not P or S: {parts[12]!r}")
        return Analog(self.number_of(parts[0], "An", int), parts[1], parts[2], parts[3], parts[4], a, b, skew,
                      primary, secondary, side)  # fmt: skip

    def _digital(self) -> Digital:
        parts = self.next(3, ("Dn", "ch_id", "ph", "ccbm", "y"))
        if len(parts) == 3:  # 1991: Dn, ch_id, y
            parts = [parts[0], parts[1], "", "", parts[2]]
        parts += [""] * (5 - len(parts))
        normal = self.number_of(parts[4] or "0", "y", int)
        if normal not in (0, 1):
            raise self.fail("y", f"the normal state is 0 or 1, not {normal}")
        return Digital(self.number_of(parts[0], "Dn", int), parts[1], parts[2], parts[3], normal)

    def _rates(self, config: Config) -> None:
        nrates = self.number_of(self.next(1, ("nrates",))[0], "nrates", int)
        for _ in range(max(nrates, 1)):  # nrates 0: one line "0,endsamp" follows (the time stamps decide)
            samp, endsamp = self.next(2, ("samp", "endsamp"))[:2]
            config.rates.append((self.number_of(samp, "samp"), self.number_of(endsamp, "endsamp", int)))

    def _moment(self, revision: int, name: str) -> datetime:
        day, time = self.next(2, (f"{name} date", f"{name} time"))[:2]
        order = "%m/%d/%Y" if revision == 1991 else "%d/%m/%Y"  # 1991: mm/dd/yy; 1999 and 2013: dd/mm/yyyy
        if revision == 1991 and len(day.split("/")[-1]) == 2:
            order = "%m/%d/%y"
        whole, _, fraction = time.partition(".")
        try:
            moment = datetime.strptime(f"{day} {whole}", f"{order} %H:%M:%S")
        except ValueError:
            raise self.fail(f"{name} date", f"not a date and time ({order[1:].replace('%', '')}): "
                            f"{day},{time!r}") from None  # fmt: skip
        if fraction and not fraction.isdigit():
            raise self.fail(f"{name} time", f"not a fraction of a second: {fraction!r}")
        return moment + timedelta(microseconds=round(float(f"0.{fraction or 0}") * 1e6))

    def _time_codes(self, config: Config) -> None:
        codes = self.next(2, ("time_code", "local_code"))
        for code, name in ((codes[0], "time_code"), (codes[1], "local_code")):
            if code.lower() != "x" and offset(code) is None:
                raise self.fail(name, f"not a UTC offset such as -5h30 or +1: {code!r}")
        config.time_code, config.local_code = codes[0], codes[1]
        quality = self.next(2, ("tmq_code", "leapsec"))
        config.time_quality = quality[0]
        config.leap_second = self.number_of(quality[1], "leapsec", int)


def offset(code: str) -> timedelta | None:
    """A C37.111-2013 time code (``-5h30``, ``+1``, ``0``) as the offset of the file's times from UTC."""
    match = re.fullmatch(r"([+-]?)(\d{1,2})(?:h(\d{2}))?", code.strip())
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def date_time(moment: datetime) -> Attr:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": iso(moment)}}


class ComtradeAdapter(Adapter):
    name = "comtrade"
    description = "COMTRADE (C37.111 1991/1999/2013; .cfg+.dat or .cff): a FaultRecord with its channel samples"
    source_help = (
        "a COMTRADE .cfg (its .dat beside it) or .cff; ?scl=station.scd links the recording IED and "
        "substation (&sclNetwork=N: the network that file was imported under); ?utcOffset=+1 for files "
        "that do not say their time zone (1991, 1999)"
    )
    entity_types = ("FaultRecord",)

    def entities(self, source: str) -> Iterator[Entity]:
        path, options = split_source(source)
        self.file = Path(path).name
        self.base = Path(path).parent
        if self.network is None:
            self.network = Path(path).stem
        cfg_text, data, data_name = self._files(Path(path))
        self.config = ConfigReader(self.file, cfg_text).read()
        self.utc_offset = self._utc_offset(options.get("utcOffset"))
        self.record_id = self.entity_id("FaultRecord", self.config.station, self.config.device,
                                        iso(self._utc(self.config.start)))  # fmt: skip
        samples = list(self._samples(data, data_name))
        self.sample_count = len(samples)
        latest = samples[-1] if samples else None
        record = self._record(options)
        if latest is not None:
            record.update(self._instances(latest, describe=True))
        yield record
        yield from self._history(samples[:-1])

    # -- files ---------------------------------------------------------------------------------------------------
    def _files(self, path: Path) -> tuple[str, bytes, str]:
        combined = path.suffix.lower() == ".cff"
        beside = () if combined else (path.with_suffix(".dat"), path.with_suffix(".DAT"))
        dat = next((p for p in beside if p.exists()), None)
        try:
            if dat is not None:
                self.meter.expect_files(dat)  # before the .cfg is read: the progress bar's total never grows
            raw = self.meter.read_bytes(path)
        except OSError as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        if combined:
            return self._cff(raw)
        if dat is None:
            raise SourceError(f"{self.file}: no data file {path.with_suffix('.dat').name} beside it")
        return self._text(raw, self.file), self.meter.read_bytes(dat, expected=True), dat.name

    def _text(self, raw: bytes, name: str) -> str:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return raw.decode("latin-1")  # 1991/1999 files predate the standard's UTF-8 (2013)

    def _cff(self, raw: bytes) -> tuple[str, bytes, str]:
        """A 2013 combined file: CFG, INF, HDR and DAT sections, each after a ``--- file type: X ---`` line."""
        marks = list(CFF_SECTION.finditer(raw))
        sections: dict[str, bytes] = {}
        for i, mark in enumerate(marks):
            kind = mark.group(1).decode().strip().upper()
            start = mark.end() + (2 if raw[mark.end() : mark.end() + 2] == b"\r\n" else 1)
            if mark.group(2):  # DAT BINARY: n bytes follow, whatever they look like
                sections["DAT"] = raw[start : start + int(mark.group(2))]
                break
            end = marks[i + 1].start() if i + 1 < len(marks) else len(raw)
            sections["DAT" if kind.startswith("DAT") else kind] = raw[start:end]
        if "CFG" not in sections or "DAT" not in sections:
            raise SourceError(f"{self.file}: a .cff needs its CFG and DAT sections")
        return self._text(sections["CFG"], self.file).strip("\r\n") + "\n", sections["DAT"], self.file

    # -- times ---------------------------------------------------------------------------------------------------
    def _utc_offset(self, option: str | None) -> timedelta:
        """How far the file's times are ahead of UTC: ``?utcOffset=`` (e.g. ``+1``, ``-5h30``), else the 2013
        time_code, else zero (1991 and 1999 files say nothing: their times are taken as UTC; decision 0363)."""
        code = option or (self.config.time_code if self.config.time_code not in (None, "x", "X") else None)
        if code is None:
            return timedelta(0)
        found = offset(code)
        if found is None:
            raise SourceError(f"utcOffset {code!r} is not a UTC offset such as -5h30 or +1")
        return found

    def _utc(self, moment: datetime) -> datetime:
        return (moment - self.utc_offset).replace(tzinfo=UTC)

    def _offset_seconds(self, number: int, stamp: int | None) -> float | None:
        """Seconds from the first sample: from the sampling rates when the file has them, else the time stamp."""
        first = 0
        elapsed = 0.0
        for rate, end in self.config.rates:
            if rate <= 0:
                break
            if number <= end:
                return elapsed + (number - max(first, 1)) / rate
            elapsed += (end - max(first, 1) + 1) / rate
            first = end + 1
        if stamp is None:
            return None
        return stamp * self.config.time_mult / 1e6

    # -- samples -------------------------------------------------------------------------------------------------
    def _samples(self, data: bytes, name: str) -> Iterator[tuple[datetime, list[float | None], list[int]]]:
        rows = self._ascii(data, name) if self.config.file_type == "ASCII" else self._binary(data, name)
        start = self._utc(self.config.start)
        for row, number, stamp, analogs, digitals in rows:
            seconds = self._offset_seconds(number, stamp)
            if seconds is None:
                self.reject(name, row, "timestamp", "missing, and the file gives no sampling rate")
                continue
            yield start + timedelta(seconds=seconds), analogs, digitals

    def _ascii(self, data: bytes, name: str) -> Iterator[tuple[int, int, int | None, list[float | None], list[int]]]:
        width = 2 + len(self.config.analogs) + len(self.config.digitals)
        for row, line in enumerate(self._text(data, name).splitlines(), start=1):
            if not line.strip() or line.strip() == "\x1a":  # a DOS end-of-file mark ends some 1991 files
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != width:
                self.reject(name, row, "sample", f"{len(parts)} fields, the .cfg announces {width}")
                continue
            try:
                number = int(parts[0])
                stamp = int(parts[1]) if parts[1] else None
                analogs = [None if p in ("", "99999") else float(p) for p in parts[2 : 2 + len(self.config.analogs)]]
                digitals = [int(p) for p in parts[2 + len(self.config.analogs) :]]
            except ValueError as exc:
                self.reject(name, row, "sample", f"not a number ({exc})")
                continue
            yield row, number, stamp, analogs, digitals

    def _binary(self, data: bytes, name: str) -> Iterator[tuple[int, int, int | None, list[float | None], list[int]]]:
        code = FILE_TYPES[self.config.file_type]
        n_analog, n_digital = len(self.config.analogs), len(self.config.digitals)
        words = (n_digital + 15) // 16
        layout = struct.Struct(f"<II{n_analog}{code}{words}H")
        if len(data) % layout.size:
            self.reject(name, len(data) // layout.size + 1, "sample", f"{len(data) % layout.size} bytes left over "
                        f"after the last whole {layout.size}-byte sample")  # fmt: skip
        missing = MISSING.get(self.config.file_type)
        for row, values in enumerate(layout.iter_unpack(data[: len(data) - len(data) % layout.size]), start=1):
            number, stamp = values[0], values[1]
            analogs: list[float | None] = []
            for raw in values[2 : 2 + n_analog]:
                absent = raw == missing or (isinstance(raw, float) and not math.isfinite(raw))
                analogs.append(None if absent else float(raw))
            packed = values[2 + n_analog :]
            digitals = [(packed[i // 16] >> (i % 16)) & 1 for i in range(n_digital)]
            yield row, number, None if stamp == 0xFFFFFFFF else stamp, analogs, digitals

    # -- entities ------------------------------------------------------------------------------------------------
    def _record(self, options: dict[str, str]) -> Entity:
        config = self.config
        links = self._scl_links(options)
        return entity(self.record_id, "FaultRecord", {
            "name": prop(f"{config.station} {config.device} {iso(self._utc(config.start))}"),
            "stationName": prop(config.station),
            "recordingDeviceId": prop(config.device),
            "revisionYear": prop(config.revision),
            "firstSampleTime": date_time(self._utc(config.start)),
            "triggerTime": date_time(self._utc(config.trigger)),
            "lineFrequency": quantity(config.frequency, "HTZ") if config.frequency else None,
            "sampleRate": prop([{"rate": rate, "endSample": end} for rate, end in config.rates]),
            "sampleCount": prop(self.sample_count),
            "dataFileType": prop(config.file_type),
            "timeMultiplier": prop(config.time_mult),
            "timeCode": prop(config.time_code),
            "localCode": prop(config.local_code),
            "timeQuality": prop(config.time_quality),
            "leapSecond": prop(config.leap_second),
            "analogChannelCount": prop(len(config.analogs)),
            "digitalChannelCount": prop(len(config.digitals)),
            **links,
        })  # fmt: skip

    def _scl_links(self, options: dict[str, str]) -> dict[str, Attr | None]:
        if not options.get("scl"):
            return {}
        from adapters.energy.scl import SCL, SclAdapter, parse_scl

        scl_path = Path(options["scl"])
        if not scl_path.is_absolute():
            scl_path = self.base / scl_path
        root, _ = parse_scl(str(scl_path))
        naming = SclAdapter(network=options.get("sclNetwork") or scl_path.stem)  # the ids the scl adapter gives
        ieds = {e.get("name") for e in root.findall(f"{SCL}IED")}
        substations = {e.get("name") for e in root.findall(f"{SCL}Substation")}
        found: dict[str, Attr | None] = {}
        if self.config.device in ieds:
            found["recordedBy"] = rel(naming.entity_id("IED", self.config.device))
        if self.config.station in substations:
            found["recordedAt"] = rel(naming.entity_id("SclSubstation", self.config.station))
        if not found:
            self.notes.append(f"{self.file}: no IED {self.config.device!r} nor substation {self.config.station!r} "
                              f"in {scl_path.name}: the record is not linked")  # fmt: skip
        return found

    def _unit(self, channel: Analog) -> str | None:
        try:
            normalise(1.0, channel.unit)
        except (UnknownUnit, KeyError):
            return None
        return channel.unit

    def _analog_instance(self, channel: Analog, raw: float, moment: datetime) -> Attr:
        value = channel.value(raw)
        unit = self._unit(channel)
        attr = quantity(value, unit) if unit else None
        if attr is None:
            attr = {"type": "Property", "value": value}
        attr["observedAt"] = iso(moment)
        attr["datasetId"] = f"urn:ngsi-ld:Dataset:comtrade:analog:{channel.index}"
        return attr

    def _digital_instance(self, channel: Digital, state: int, moment: datetime) -> Attr:
        return {"type": "Property", "value": state, "observedAt": iso(moment),
                "datasetId": f"urn:ngsi-ld:Dataset:comtrade:digital:{channel.index}"}  # fmt: skip

    def _instances(self, sample: tuple[datetime, list[float | None], list[int]], describe: bool) -> dict[str, Any]:
        moment, analogs, digitals = sample
        analog: list[Attr] = []
        for channel, raw in zip(self.config.analogs, analogs, strict=True):
            if raw is None:
                continue
            item = self._analog_instance(channel, raw, moment)
            if describe:
                item.update(self._describe_analog(channel))
            analog.append(item)
        digital: list[Attr] = []
        for status, state in zip(self.config.digitals, digitals, strict=True):
            item = self._digital_instance(status, state, moment)
            if describe:
                item.update({"channelId": prop(status.channel_id), "phase": prop(status.phase or None),
                             "circuitComponent": prop(status.component or None),
                             "normalState": prop(status.normal)})  # fmt: skip
            digital.append({k: v for k, v in item.items() if v is not None})
        found: dict[str, Any] = {}
        if analog:
            found["analogValue"] = analog
        if digital:
            found["digitalState"] = digital
        return found

    def _describe_analog(self, channel: Analog) -> dict[str, Attr]:
        unit = self._unit(channel)
        if unit is None and channel.unit:
            note = f"{self.file}: unit {channel.unit!r} of channel {channel.channel_id!r} is not in the unit table"
            if note not in self.notes:
                self.notes.append(note + ": its values carry no unitCode")
        described = {
            "channelId": prop(channel.channel_id), "phase": prop(channel.phase or None),
            "circuitComponent": prop(channel.component or None), "nativeUnit": prop(channel.unit or None),
            "multiplier": prop(channel.a), "offset": prop(channel.b), "skew": quantity(channel.skew / 1e6, "SEC"),
            "primaryRatio": prop(channel.primary), "secondaryRatio": prop(channel.secondary),
            "scaledSide": prop(channel.side),
        }  # fmt: skip
        return {k: v for k, v in described.items() if v is not None}

    def _history(self, samples: list[tuple[datetime, list[float | None], list[int]]]) -> Iterator[TemporalFragment]:
        fragment = TemporalFragment(id=self.record_id, type="FaultRecord")
        size = 0
        for sample in samples:
            for name, items in self._instances(sample, describe=False).items():
                fragment.setdefault(name, []).extend(items)
                size += len(items)
            if size >= FRAGMENT_SIZE:
                yield fragment
                fragment, size = TemporalFragment(id=self.record_id, type="FaultRecord"), 0
        if size:
            yield fragment
