"""sessiontally.timeparse: every ``ending_at`` form of CONTRACT.md section 3, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally.timeparse import (
    MAX_TEXT_LENGTH,
    TimeParseError,
    parse_instant,
    parse_timestamp,
    to_epoch_micros,
)


def tz(hours: int, minutes: int = 0) -> timezone:
    sign = -1 if hours < 0 else 1
    return timezone(sign * timedelta(hours=abs(hours), minutes=minutes))


def same(value: datetime, expected: datetime) -> None:
    """Equal, with the same offset (an aware == ignores the offset) or both naive."""
    assert value == expected
    assert value.utcoffset() == expected.utcoffset()
    assert (value.tzinfo is None) == (expected.tzinfo is None)


ACCEPTED = [
    # bare date: midnight wall time
    ("2025-06-01", datetime(2025, 6, 1)),
    # no offset: naive wall time
    ("2025-06-01T12:00:00", datetime(2025, 6, 1, 12)),
    ("2025-06-01T12:00", datetime(2025, 6, 1, 12)),
    ("2025-06-01 12:34:56", datetime(2025, 6, 1, 12, 34, 56)),
    ("2025-06-01t12:34:56", datetime(2025, 6, 1, 12, 34, 56)),
    # Z
    ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ("2025-06-01T12:00:00z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ("2025-06-01T12:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ("2025-06-01 12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    # +HH:MM, +HHMM, +HH, -H:MM
    ("2025-06-01T12:00:00+05:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00+0530", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00+05", datetime(2025, 6, 1, 12, tzinfo=tz(5))),
    ("2025-06-01T12:00:00-5:00", datetime(2025, 6, 1, 12, tzinfo=tz(-5))),
    ("2025-06-01T12:00:00-05:00", datetime(2025, 6, 1, 12, tzinfo=tz(-5))),
    ("2025-06-01T12:00:00-0330", datetime(2025, 6, 1, 12, tzinfo=tz(-3, 30))),
    ("2025-06-01T12:00:00+00:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ("2025-06-01T12:00:00-00:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ("2025-06-01T12:00:00+23:59", datetime(2025, 6, 1, 12, tzinfo=tz(23, 59))),
    ("2025-06-01T12:00:00+05:45", datetime(2025, 6, 1, 12, tzinfo=tz(5, 45))),
    ("2025-06-01T12:00+05:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00+5:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00-5", datetime(2025, 6, 1, 12, tzinfo=tz(-5))),
    # a '+' decoded to a space by an unencoded query string
    ("2025-06-01T12:00:00 05:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00 0530", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00 05", datetime(2025, 6, 1, 12, tzinfo=tz(5))),
    ("2025-06-01T12:00:00 5:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01 12:00:00 05:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00.5 05:30", datetime(2025, 6, 1, 12, 0, 0, 500_000, tzinfo=tz(5, 30))),
    # a space before an explicit sign
    ("2025-06-01T12:00:00 +05:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00 -05:00", datetime(2025, 6, 1, 12, tzinfo=tz(-5))),
    # ... whose '+' was then decoded too ("12:00:00 +05:30" sent unencoded)
    ("2025-06-01T12:00:00  05:30", datetime(2025, 6, 1, 12, tzinfo=tz(5, 30))),
    # fractional seconds, 1 to 9 digits, '.' or ','; truncated to microseconds
    ("2025-06-01T12:00:00.1Z", datetime(2025, 6, 1, 12, 0, 0, 100_000, tzinfo=UTC)),
    ("2025-06-01T12:00:00.123456Z", datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)),
    ("2025-06-01T12:00:00.123456789Z", datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)),
    ("2025-06-01T12:00:00.999999999+05:30", datetime(2025, 6, 1, 12, 0, 0, 999_999, tzinfo=tz(5, 30))),
    ("2025-06-01T12:00:00,25", datetime(2025, 6, 1, 12, 0, 0, 250_000)),
    ("2025-06-01 23:59:59.000001", datetime(2025, 6, 1, 23, 59, 59, 1)),
    # calendar edges
    ("2024-02-29", datetime(2024, 2, 29)),
    ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59", datetime(9999, 12, 31, 23, 59, 59)),
    ("0001-01-01", datetime(1, 1, 1)),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms(text, expected):
    same(parse_timestamp(text), expected)


REJECTED = [
    "",
    "garbage",
    "now",
    "2025",
    "2025-06",
    "20250601",
    "2025-6-1",
    "25-06-01",
    "2025/06/01",
    "2025-06-01T",
    "2025-06-01T12",
    "2025-06-01T1:00",
    "2025-06-01T12:0",
    "2025-06-01T12:00:0",
    "2025-06-01T12:00:00.",
    "2025-06-01T12:00:00.1234567890Z",  # ten fraction digits
    "2025-06-01T12:00:00ZZ",
    "2025-06-01T12:00:00 ",
    " 2025-06-01",
    "2025-06-01\n",
    "2025-06-01T12:00:00+",
    "2025-06-01T12:00:00+5:3",
    "2025-06-01T12:00:00+05:30:00",
    "2025-06-01T12:00:00+123",  # +01:23 or +12:3? ambiguous: a 1-digit hour needs ':'
    "2025-06-01T12:00:00+530",
    "2025-06-01T12:00:00 530",
    "2025-06-01T12:00:00+05:3",
    "2025-06-01T12:00:00+05:",
    "2025-06-01T12:00:00+:30",
    "2025-06-01T12:00:00UTC",
    "2025-06-01T12:00:00+05:30[Asia/Kolkata]",
    "2025-02-30",  # no such day
    "2025-02-29",
    "2025-13-01",
    "2025-00-10",
    "2025-06-00",
    "0000-01-01",
    "2025-06-01T24:00:00",  # hour 24
    "2025-06-01T12:60:00",
    "2025-06-01T23:59:60Z",  # leap second
    "2025-06-01T12:00:00+24:00",  # offset out of range
    "2025-06-01T12:00:00-24:00",
    "2025-06-01T12:00:00+99:00",
    "2025-06-01T12:00:00+05:60",
    "２０２５-０６-０１",  # fullwidth digits
    "2025-06-0\u0661",  # Arabic-Indic digit
    "2025-06-01T12:00:00+0\u0665:30",
    "2025-06-01T12:00:00\u00a005:30",  # no-break space
    "2025-06-01T12:00:00" + "0" * 60,
    "1" * 1000,
]


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_forms(text):
    with pytest.raises(TimeParseError):
        parse_timestamp(text)


def test_rejections_are_value_errors_with_a_reason():
    for text, words in (
        ("2025-02-30", "calendar date"),
        ("2025-06-01T24:00:00", "out of range"),
        ("2025-06-01T23:59:60", "leap"),
        ("2025-06-01T12:00:00+24:00", "offset"),
        ("x" * (MAX_TEXT_LENGTH + 1), "too long"),
        ("garbage", "ISO-8601"),
    ):
        with pytest.raises(ValueError, match=words):
            parse_timestamp(text)


def test_length_limit():
    longest = "2025-06-01T12:00:00.123456789+05:30"
    assert len(longest) < MAX_TEXT_LENGTH
    parse_timestamp(longest)


def test_parse_instant_requires_an_offset():
    same(parse_instant("2025-06-01T12:00:00Z"), datetime(2025, 6, 1, 12, tzinfo=UTC))
    same(parse_instant("2025-06-01T12:00:00 05:30"), datetime(2025, 6, 1, 12, tzinfo=tz(5, 30)))
    for text in ("2025-06-01T12:00:00", "2025-06-01", "2025-06-01 12:00"):
        with pytest.raises(TimeParseError, match="offset"):
            parse_instant(text)
    with pytest.raises(TimeParseError):
        parse_instant("garbage")


def test_to_epoch_micros_is_exact():
    assert to_epoch_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_epoch_micros(datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1
    assert to_epoch_micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert to_epoch_micros(parse_instant("2025-06-01T12:00:00.123456+05:30")) == 1_748_759_400_123_456
    # beyond float precision (2**53 microseconds is year 2255): still exact
    assert to_epoch_micros(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == 253_402_300_799_999_999
    year_one = -62_135_596_800_000_000
    assert to_epoch_micros(parse_instant("0001-01-01T00:00:00+23:59")) == year_one - 86_340_000_000


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
def test_round_trip_isoformat(value, offset_minutes):
    aware = value.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    parsed = parse_instant(aware.isoformat())
    same(parsed, aware)
    assert to_epoch_micros(parsed) == (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    same(parse_timestamp(value.isoformat()), value)
    same(parse_timestamp(value.isoformat(sep=" ")), value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_never_raises_anything_else(text):
    try:
        value = parse_timestamp(text)
    except TimeParseError:
        return
    assert isinstance(value, datetime)
