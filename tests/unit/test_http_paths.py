"""The path a router sees for encoded slashes (broker/http/paths.py): every segment comes back exactly."""

from __future__ import annotations

from urllib.parse import quote, unquote

from hypothesis import given
from hypothesis import strategies as st

from broker.http.paths import RestConvertor, SegmentConvertor, quote_segment, segment_path

segments = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5)


@given(segments)
def test_each_encoded_segment_comes_back_exactly(parts: list[str]) -> None:
    raw = "/" + "/".join(quote(p, safe="") for p in parts)
    routed = segment_path(raw.encode())
    assert routed.split("/")[1:] == [p.replace("%", "%25").replace("/", "%2F") for p in parts]
    assert [SegmentConvertor().convert(s) for s in routed.split("/")[1:]] == parts


@given(st.text(min_size=1))
def test_a_segment_the_broker_writes_reads_back(value: str) -> None:
    written = quote_segment(value)
    assert "/" not in written and "?" not in written and "#" not in written
    assert SegmentConvertor().convert(segment_path(written.encode())) == value
    assert unquote(written) == value


def test_a_path_without_escapes_converts_to_itself() -> None:
    assert RestConvertor().convert("https://example.org/T") == "https://example.org/T"
    assert SegmentConvertor().convert("urn:ngsi-ld:Thing:1") == "urn:ngsi-ld:Thing:1"
