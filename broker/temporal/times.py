"""Instants and durations of the temporal API.

Instants are compared as integer microseconds since the epoch (UTC): a client may write `observedAt` with any
precision or UTC offset, and "2026-01-01T01:00:00+01:00" must order equal to "2026-01-01T00:00:00Z".
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broker.core.errors import BadRequestData

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_instant(text: str) -> datetime:
    """An NGSI-LD DateTime (ISO 8601 with a time zone designator) as an aware datetime; ValueError otherwise."""
    if not isinstance(text, str) or "T" not in text:
        raise ValueError(f"{text!r} is not a DateTime")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:  # NGSI-LD DateTimes are UTC; a bare one is read as UTC, as the core @context says
        value = value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC: no instant the broker can write
        raise ValueError(f"{text!r} is outside years 1 to 9999 in UTC") from None
    return value


@functools.lru_cache(maxsize=8192)
def to_micros(text: str) -> int:
    """Microseconds since the epoch. Cached: a write stamps its instances with the same few instants."""
    delta = parse_instant(text) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_or_none(text: object) -> int | None:
    """The instant of a stored temporal member, None when it is absent or not a DateTime."""
    if not isinstance(text, str):
        return None
    try:
        return to_micros(text)
    except ValueError:
        return None


def from_micros(micros: int) -> str:
    """The broker's own DateTime form (UTC, microseconds, Z), the one now_iso() writes. An aggregation writes two
    per period (thousands per answer): time.gmtime and one format string cost a fifth of datetime + strftime."""
    seconds, fraction = divmod(micros, 1_000_000)
    try:
        t = time.gmtime(seconds)
    except (OverflowError, OSError, ValueError):  # a platform whose gmtime stops short of years 1 to 9999
        return _from_micros_datetime(micros)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{fraction:06d}Z"
    )


def display_instant(micros: int) -> str:
    """An instant the broker computed (an aggregation period's bounds, a Content-Range end) written as clients
    write DateTimes: without a fraction when it is whole seconds ("2018-08-01T12:04:00Z", as annex C.5.14 shows),
    else with the digits the fraction needs (decision record 0122)."""
    text = from_micros(micros)
    head, _, fraction = text[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}Z" if fraction else f"{head}Z"


def _from_micros_datetime(micros: int) -> str:
    value = _EPOCH + timedelta(microseconds=micros)
    # %Y does not pad years before 1000 on every platform (glibc writes "1-01-01"): the year is written here
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}Z"


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration split into calendar months and exact microseconds (clause 4.5.19.1)."""

    months: int = 0
    micros: int = 0

    @property
    def is_zero(self) -> bool:
        return self.months == 0 and self.micros == 0

    def add_to(self, instant: datetime) -> datetime:
        """`instant` plus this duration; months are calendar months (the day is clamped to the month's end)."""
        if self.months:
            month_index = instant.month - 1 + self.months
            year, month = instant.year + month_index // 12, month_index % 12 + 1
            instant = instant.replace(year=year, month=month, day=min(instant.day, _days_in(year, month)))
        return instant + timedelta(microseconds=self.micros)


def _days_in(year: int, month: int) -> int:
    nxt = datetime(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def parse_duration(text: str, where: str = "aggrPeriodDuration") -> Duration:
    """P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W (clause 4.5.19.1); PT0S and P0D mean the whole time range."""
    match = _DURATION.match(text)
    if match is None:
        raise BadRequestData(f"{where}={text!r} is not an ISO 8601 duration like P1D, PT1H or P1W")
    parts = {k: (v or "0") for k, v in match.groupdict().items()}
    months = int(parts["Y"]) * 12 + int(parts["M"])
    seconds = (
        (int(parts["W"]) * 7 + int(parts["D"])) * 86_400
        + int(parts["h"]) * 3_600
        + int(parts["m"]) * 60
        + float(parts["s"])
    )
    return Duration(months, round(seconds * 1_000_000))
