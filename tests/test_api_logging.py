"""The access log's helpers (api/logging.py): timestamps and redacted queries."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sessiontally.api import logging as access_logging


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_timestamps_match_isoformat_to_the_millisecond(now: float) -> None:
    expected = datetime.fromtimestamp(int(now), UTC).isoformat(timespec="milliseconds")
    got = access_logging.utc_timestamp(now)
    assert got[:20] == expected[:20] and got[-6:] == "+00:00" and len(got) == len(expected)
    # the milliseconds are truncated, never rounded up into the next second
    assert int(got[20:23]) == int((now - int(now)) * 1000) <= 999


def test_keys_are_redacted_whether_remembered_or_not() -> None:
    key = "st_12_" + "k" * 40
    short = f"api_key={key}&length=3&token={key}".encode()
    for _ in range(2):  # the second answer is the remembered one
        logged = access_logging.redacted_query(short)
        assert key not in logged and "api_key=%5Bredacted%5D" in logged and "length=3" in logged
    long = short + b"&pad=" + b"p" * access_logging.MEMOISED_QUERY_BYTES
    assert key not in access_logging.redacted_query(long)
