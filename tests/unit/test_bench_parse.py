"""The benchmark harness's wrk output parser and table formatting (bench/run.py); no timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import ANALYSIS, Row, WrkResult, format_table, lua_value, parse_wrk, split_template, write_report

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:40001
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    14.11ms    9.02ms 112.48ms   96.35%
    Req/Sec     2.20k   210.43     2.45k    85.00%
  4389 requests in 2.01s, 3.41MB read
Requests/sec:   2183.58
Transfer/sec:      1.70MB
BENCH_JSON {"requests":4389,"duration_us":2010000,"non2xx":0,"connect":0,"read":0,"write":0,"timeout":0,\
"p50_us":14380.0,"p95_us":20010.5,"p99_us":112480.0,"sample":""}
"""


def test_parse_wrk_reads_the_json_line() -> None:
    res = parse_wrk(WRK_OUTPUT)
    assert res.requests == 4389
    assert res.duration_s == pytest.approx(2.01)
    assert res.rate == pytest.approx(4389 / 2.01)
    assert (res.p50_ms, res.p95_ms, res.p99_ms) == pytest.approx((14.38, 20.0105, 112.48))
    assert res.error == ""


def test_non_2xx_and_socket_errors_fail_the_scenario() -> None:
    line = WRK_OUTPUT.replace('"non2xx":0', '"non2xx":3').replace('"timeout":0', '"timeout":2')
    res = parse_wrk(line.replace('"sample":""', '"sample":"404 not found"'))
    assert (res.non2xx, res.socket_errors) == (3, 2)
    assert "3 non-2xx" in res.error and "2 socket errors" in res.error and "404" in res.error


def test_no_completed_request_is_an_error() -> None:
    res = parse_wrk(WRK_OUTPUT.replace('"requests":4389', '"requests":0'))
    assert res.error == "no request completed"


def test_missing_json_line_raises() -> None:
    with pytest.raises(ValueError, match="BENCH_JSON"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_table_has_one_line_per_row_and_formats_numbers() -> None:
    rows = [
        Row("ceiling", None, 8000.0, p50=3.9, p95=4.1, p99=6.1, cpu=0.99),
        Row("GET entity", 1000, 2300.4, p50=13.3, p95=22.5, p99=102.9, ratio=2300.4 / 8000.0),
        Row("query", 10000, 2.0, p50=597.9, p95=627.5, p99=627.5, ratio=2.0 / 8000.0),
        Row("batch upsert", 1000, 19990.0, unit="entities/s", note="4 connections"),
        Row("resident memory", 100000, result="512 MB"),
        Row("PATCH | attr", 1000, 10.0, error="3 non-2xx"),
    ]
    lines = format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count(" | ") == lines[0].count(" | ") for line in lines[2:])  # the `|` in a cell is escaped
    assert "| 8,000 req/s | 3.90 | 4.10 | 6.10 |  | 99% |  |" in lines[2]
    assert "| 1,000 | 2,300 req/s |" in lines[3] and "| 29% |" in lines[3]
    assert "| 2.00 req/s |" in lines[4] and "| 0.0% |" in lines[4]
    assert "19,990 entities/s" in lines[5] and "4 connections" in lines[5]
    assert "| 100,000 | 512 MB |" in lines[6]
    assert "FAILED: 3 non-2xx" in lines[7] and "PATCH \\| attr" in lines[7]


def test_report_keeps_the_hand_written_analysis(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# old table\n\n{ANALYSIS}\n\nGET is slow.\n")
    write_report(out, "# new table\n")
    assert out.read_text() == f"# new table\n\n{ANALYSIS}\n\nGET is slow.\n"
    fresh = tmp_path / "fresh.md"
    write_report(fresh, "# table\n")
    assert fresh.read_text() == "# table\n"


def test_lua_literals_and_entity_template() -> None:
    assert lua_value(20) == "20"
    assert lua_value('<http://x>; rel="a"') == '"<http://x>; rel=\\"a\\""'
    pre, post = split_template("Car")
    entity = json.loads(pre + "urn:ngsi-ld:Car:1" + post)
    assert entity["id"] == "urn:ngsi-ld:Car:1" and entity["type"] == "Car"
    kinds = [a if isinstance(a, dict) else a[0] for k, a in entity.items() if k not in ("id", "type")]
    assert [a["type"] for a in kinds].count("Property") == 6
    assert {a["type"] for a in kinds} == {"Property", "Relationship", "GeoProperty"}


def test_wrk_result_rate_of_an_empty_run_is_zero() -> None:
    assert WrkResult(0, 0.0, 0.0, 0.0, 0.0, 0, 0).rate == 0.0
