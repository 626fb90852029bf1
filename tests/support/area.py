"""One area for the cross-network scenarios (issue 8's one area, issue 16's federated city).

The samples come from three places (a Nevada demo feed, an Upper Rhine grid, EPANET's drawing frame). For one area,
an EPANET drawing frame is placed on the grid (a local transverse Mercator in feet around P: a CRS for the tests,
not a claim about the network, decision 0060) and a small Rhine transit feed is written here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from urllib.parse import quote

#: The centre of the area (lon, lat): the Upper Rhine, where pandapower's mv_oberrhein grid lies.
P = (7.85, 48.40)
CRS = "+proj=tmerc +lat_0=48.40 +lon_0=7.85 +k=1 +x_0=0 +y_0=0 +units=us-ft"
#: The same CRS as it rides on an `agora import epanet` SOURCE (`path?crs=...`).
AREA_CRS = quote(CRS, safe="=")


def small_feed(path: Path) -> Path:
    """A two-stop GTFS feed: S1 (Mitte) 55 m north of P, S2 (Far) some 60 km away."""
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nRT,Rhine Transit,https://example.org,"
                      "Europe/Berlin\n",
        "stops.txt": f"stop_id,stop_name,stop_lat,stop_lon\nS1,Mitte,{P[1] + 0.0005},{P[0]}\nS2,Far,48.9,8.4\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,RT,1,3\n",
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\n"
                          "T1,08:30:00,08:30:00,S2,2\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                        "WK,1,1,1,1,1,0,0,20260101,20261231\n",
    }  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path
