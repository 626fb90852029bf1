"""A synthetic GTFS feed of a chosen size, for the adapter import rate (issue 9): a city of `stops` stops on a
grid, routes of 20 stops each, trips every 10 minutes, and the stop_times of every trip. Valid for the gtfs
adapter's required files; the values are made up, the shape of a real feed is kept (stop_times dominates)."""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

Rows = list[list[object]]
PER_ROUTE = 20
WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def table(header: str, rows: Iterable[list[object]]) -> Rows:
    return [list(header.split(",")), *rows]


def write_feed(path: Path, stops: int = 2000, trips_per_route: int = 20) -> int:
    """Write the zip; the number of rows of its files (what the adapter translates)."""
    routes = max(1, stops // PER_ROUTE)
    files: dict[str, Rows] = {
        "agency.txt": table(
            "agency_id,agency_name,agency_url,agency_timezone", [["A", "Bench", "http://a.example", "Europe/Paris"]]
        ),
        "calendar.txt": table(
            "service_id," + ",".join(WEEK) + ",start_date,end_date",
            [["WK", 1, 1, 1, 1, 1, 0, 0, "20260101", "20261231"]],
        ),
        "stops.txt": table(
            "stop_id,stop_name,stop_lat,stop_lon",
            (
                [f"S{i}", f"Stop {i}", round(45.70 + i // 100 * 0.001, 6), round(4.80 + i % 100 * 0.001, 6)]
                for i in range(stops)
            ),
        ),
        "routes.txt": table(
            "route_id,agency_id,route_short_name,route_long_name,route_type",
            ([f"R{r}", "A", str(r), f"Route {r}", 3] for r in range(routes)),
        ),
        "trips.txt": table("route_id,service_id,trip_id,direction_id", []),
        "stop_times.txt": table("trip_id,arrival_time,departure_time,stop_id,stop_sequence", []),
    }
    for r in range(routes):
        for t in range(trips_per_route):
            trip = f"T{r}_{t}"
            files["trips.txt"].append([f"R{r}", "WK", trip, t % 2])
            start = 6 * 3600 + t * 600
            for k in range(PER_ROUTE):
                at = start + k * 90
                stamp = f"{at // 3600}:{at % 3600 // 60:02d}:{at % 60:02d}"
                files["stop_times.txt"].append([trip, stamp, stamp, f"S{(r * PER_ROUTE + k) % stops}", k + 1])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as feed:
        for name, rows in files.items():
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            feed.writestr(name, text.getvalue())
    return sum(len(rows) - 1 for rows in files.values())


if __name__ == "__main__":
    print(write_feed(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2000))
