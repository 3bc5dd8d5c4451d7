"""sessiontally.series_query: the /sessions/data_series query string (CONTRACT.md s. 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally.series_query import InvalidParameter, SeriesQuery, parse_series_query


def parse(**params: str) -> SeriesQuery:
    return parse_series_query(list(params.items()))


def refused(pairs, parameter: str) -> str:
    with pytest.raises(InvalidParameter) as info:
        parse_series_query(pairs)
    message = str(info.value)
    assert f"'{parameter}'" in message, message
    return message


def test_minimal_query_defaults():
    assert parse(length="7") == SeriesQuery(
        length=7, unit="day", ending_at=None, app_id=None, segment_id=None, time_zone=None
    )


def test_all_parameters():
    query = parse(
        length="100",
        unit="hour",
        ending_at="2025-06-01T12:00:00Z",
        app_id="a1b2",
        segment_id="s9",
        time_zone="Asia/Kolkata",
    )
    assert query == SeriesQuery(
        length=100,
        unit="hour",
        ending_at=datetime(2025, 6, 1, 12, tzinfo=UTC),
        app_id="a1b2",
        segment_id="s9",
        time_zone="Asia/Kolkata",
    )


# ------------------------------------------------------------------------ length


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("9", 9), ("10", 10), ("99", 99), ("100", 100)])
def test_length_accepted(raw, value):
    assert parse(length=raw).length == value


@pytest.mark.parametrize(
    "raw",
    [
        "", "0", "101", "1000", "-1", "+5", " 5", "5 ", "05", "005", "1e2", "1.0", "5.", "0x10",
        "ten", "1_0", "٥", "５", "\u0661\u0660", "5\n", "\t5", "100000000000000000000000",
    ],
)
def test_length_refused(raw):
    message = refused([("length", raw)], "length")
    assert "1" in message and "100" in message


def test_length_required():
    assert "required" in refused([], "length")
    assert "required" in refused([("unit", "day")], "length")
    assert "required" in refused([("Length", "5")], "length")  # names are case-sensitive


# -------------------------------------------------------------------------- unit


@pytest.mark.parametrize(("raw", "unit"), [("day", "day"), ("DAY", "day"), ("Day", "day"),
                                           ("hour", "hour"), ("HOUR", "hour"), ("hOuR", "hour")])
def test_unit_case_insensitive(raw, unit):
    assert parse(length="3", unit=raw).unit == unit


@pytest.mark.parametrize("raw", ["", "days", "hours", "week", "minute", " day", "day ", "d", "ｄａｙ"])
def test_unit_refused(raw):
    refused([("length", "3"), ("unit", raw)], "unit")


# --------------------------------------------------------------------- ending_at


def test_ending_at_forms():
    assert parse(length="1", ending_at="2025-06-01").ending_at == datetime(2025, 6, 1)
    assert parse(length="1", ending_at="2025-06-01T12:00:00").ending_at.tzinfo is None
    plus_as_space = parse(length="1", ending_at="2025-06-01T12:00:00 05:30").ending_at
    assert plus_as_space.utcoffset() == timedelta(hours=5, minutes=30)
    braze = parse(length="1", ending_at="2018-06-28T23:59:59-5:00").ending_at
    assert braze == datetime(2018, 6, 28, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    "raw", ["", "garbage", "2025-02-30", "2025-06-01T24:00:00", "2025-06-01T23:59:60", "1970-06-01",
            "9999-01-01", "0001-01-01", "2025-06-01T12:00:00+24:00", "x" * 300]
)
def test_ending_at_refused(raw):
    refused([("length", "1"), ("ending_at", raw)], "ending_at")


def test_ending_at_year_range():
    assert parse(length="1", ending_at="1971-01-01").ending_at == datetime(1971, 1, 1)
    assert parse(length="1", ending_at="9998-12-31T23:59:59").ending_at.year == 9998


# ------------------------------------------------ app_id, segment_id, time_zone


@pytest.mark.parametrize("name", ["app_id", "segment_id", "time_zone"])
def test_empty_ids_refused(name):
    refused([("length", "1"), (name, "")], name)


@pytest.mark.parametrize("name", ["length", "unit", "ending_at", "app_id", "segment_id", "time_zone"])
def test_overlong_values_refused(name):
    refused([("length", "1"), (name, "x" * 257)] if name != "length" else [(name, "1" * 257)], name)


# ---------------------------------------------------------- repeats and unknowns


@pytest.mark.parametrize(
    ("name", "value"),
    [("length", "5"), ("unit", "day"), ("ending_at", "2025-06-01"), ("app_id", "a"),
     ("segment_id", "s"), ("time_zone", "UTC")],
)
def test_repeated_parameter_refused(name, value):
    pairs = [("length", "5"), (name, value), (name, value)] if name != "length" else [(name, value)] * 2
    message = refused(pairs, name)
    assert "more than once" in message


def test_repeated_parameter_refused_even_when_values_differ_or_are_empty():
    refused([("length", "5"), ("length", "6")], "length")
    refused([("length", "5"), ("unit", ""), ("unit", "day")], "unit")


def test_unknown_parameters_ignored_even_repeated():
    query = parse_series_query(
        [("length", "2"), ("api_key", "k"), ("api_key", "k"), ("foo", ""), ("_", "x" * 10_000),
         ("LENGTH", "999"), ("utm_source", "dash")]
    )
    assert query.length == 2 and query.unit == "day"


def test_accepts_any_iterable_of_pairs():
    assert parse_series_query(iter([("length", "3")])).length == 3


# ------------------------------------------------------------------- robustness

NAMES = st.sampled_from(["length", "unit", "ending_at", "app_id", "segment_id", "time_zone", "other"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(NAMES, st.text(max_size=40)), max_size=8))
def test_any_input_parses_or_is_refused_naming_a_parameter(pairs):
    try:
        query = parse_series_query(pairs)
    except InvalidParameter as exc:
        assert any(f"'{name}'" in str(exc) for name, _ in pairs) or "'length'" in str(exc)
        return
    assert 1 <= query.length <= 100
    assert query.unit in ("day", "hour")
