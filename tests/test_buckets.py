"""Named cases for sessiontally.buckets: exact labels and UTC boundaries (CONTRACT.md s. 3)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sessiontally import buckets
from sessiontally.buckets import Bucket


def at(text: str) -> int:
    """UTC epoch seconds of an ISO-8601 instant ('Z' or an offset)."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def hours(series) -> list[float]:
    return [(b.end - b.start) / 3600 for b in series]


def run(unit: str, length: int, ending: str | datetime, zone_name: str) -> tuple[Bucket, ...]:
    zone = buckets.load_zone(zone_name)
    if isinstance(ending, str):
        ending = datetime.fromisoformat(ending)
    return buckets.series(unit, length, buckets.resolve_ending(ending, zone), zone)


def triples(series) -> list[tuple[str, int, int]]:
    return [(b.label, b.start, b.end) for b in series]


# ----------------------------------------------------------------------- New York


def test_new_york_fall_back_has_two_one_oclock_buckets():
    series = run("hour", 5, "2025-11-02T03:30:00-05:00", "America/New_York")
    assert triples(series) == [
        ("2025-11-02T00:00:00-04:00", at("2025-11-02T04:00Z"), at("2025-11-02T05:00Z")),
        ("2025-11-02T01:00:00-04:00", at("2025-11-02T05:00Z"), at("2025-11-02T06:00Z")),
        ("2025-11-02T01:00:00-05:00", at("2025-11-02T06:00Z"), at("2025-11-02T07:00Z")),
        ("2025-11-02T02:00:00-05:00", at("2025-11-02T07:00Z"), at("2025-11-02T08:00Z")),
        ("2025-11-02T03:00:00-05:00", at("2025-11-02T08:00Z"), at("2025-11-02T09:00Z")),
    ]


def test_new_york_spring_forward_has_no_two_oclock_bucket():
    series = run("hour", 4, "2025-03-09T04:00:00-04:00", "America/New_York")
    assert triples(series) == [
        ("2025-03-09T00:00:00-05:00", at("2025-03-09T05:00Z"), at("2025-03-09T06:00Z")),
        ("2025-03-09T01:00:00-05:00", at("2025-03-09T06:00Z"), at("2025-03-09T07:00Z")),
        ("2025-03-09T03:00:00-04:00", at("2025-03-09T07:00Z"), at("2025-03-09T08:00Z")),
        ("2025-03-09T04:00:00-04:00", at("2025-03-09T08:00Z"), at("2025-03-09T09:00Z")),
    ]
    whole_day = run("hour", 23, "2025-03-09T23:59:59", "America/New_York")
    assert whole_day[0].label == "2025-03-09T00:00:00-05:00"
    assert not [b for b in whole_day if "T02:" in b.label]


def test_new_york_days_of_23_and_25_hours():
    spring = run("day", 3, "2025-03-10", "America/New_York")
    assert [b.label for b in spring] == ["2025-03-08", "2025-03-09", "2025-03-10"]
    assert hours(spring) == [24, 23, 24]
    autumn = run("day", 1, "2025-11-02T23:59:59.999999", "America/New_York")
    assert triples(autumn) == [("2025-11-02", at("2025-11-02T04:00Z"), at("2025-11-03T05:00Z"))]


def test_naive_ending_in_gap_or_fold_reads_fold_0():
    zone = buckets.load_zone("America/New_York")
    # 02:30 does not exist on 2025-03-09: read with the old offset (-05:00) -> 03:30 EDT
    assert buckets.resolve_ending(datetime(2025, 3, 9, 2, 30), zone) == at("2025-03-09T07:30Z")
    # 01:30 happens twice on 2025-11-02: fold=0 is the first one (EDT)
    assert buckets.resolve_ending(datetime(2025, 11, 2, 1, 30), zone) == at("2025-11-02T05:30Z")
    series = run("hour", 1, "2025-11-02T01:30:00", "America/New_York")
    assert series[0].label == "2025-11-02T01:00:00-04:00"


# ------------------------------------------------------------------------- Berlin


def test_berlin_23_hour_and_25_hour_days():
    spring = run("day", 3, "2025-03-30T12:00:00", "Europe/Berlin")
    assert triples(spring) == [
        ("2025-03-28", at("2025-03-27T23:00Z"), at("2025-03-28T23:00Z")),
        ("2025-03-29", at("2025-03-28T23:00Z"), at("2025-03-29T23:00Z")),
        ("2025-03-30", at("2025-03-29T23:00Z"), at("2025-03-30T22:00Z")),
    ]
    autumn = run("day", 2, "2025-10-26T23:30:00+01:00", "Europe/Berlin")
    assert triples(autumn) == [
        ("2025-10-25", at("2025-10-24T22:00Z"), at("2025-10-25T22:00Z")),
        ("2025-10-26", at("2025-10-25T22:00Z"), at("2025-10-26T23:00Z")),
    ]
    assert hours(autumn) == [24, 25]


def test_berlin_hours_across_both_changes():
    spring = run("hour", 3, "2025-03-30T03:00:00+02:00", "Europe/Berlin")
    assert [b.label for b in spring] == [
        "2025-03-30T00:00:00+01:00",
        "2025-03-30T01:00:00+01:00",
        "2025-03-30T03:00:00+02:00",
    ]
    autumn = run("hour", 3, "2025-10-26T02:59:59+01:00", "Europe/Berlin")
    assert [b.label for b in autumn] == [
        "2025-10-26T01:00:00+02:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:00:00+01:00",
    ]


# -------------------------------------------------------------------------- Cairo


def test_cairo_day_without_midnight_starts_at_first_existing_instant():
    # 2025-04-25 00:00 does not exist in Cairo: clocks jump from 23:59:59+02:00 to 01:00+03:00.
    series = run("day", 3, "2025-04-25", "Africa/Cairo")  # bare date = midnight, read fold=0
    assert triples(series) == [
        ("2025-04-23", at("2025-04-22T22:00Z"), at("2025-04-23T22:00Z")),
        ("2025-04-24", at("2025-04-23T22:00Z"), at("2025-04-24T22:00Z")),
        ("2025-04-25", at("2025-04-24T22:00Z"), at("2025-04-25T21:00Z")),
    ]
    zone = buckets.load_zone("Africa/Cairo")
    first = series[-1].start
    assert datetime.fromtimestamp(first, zone).isoformat() == "2025-04-25T01:00:00+03:00"
    assert buckets.day_start(zone, date(2025, 4, 25)) == first
    hourly = run("hour", 3, "2025-04-25T01:00:00+03:00", "Africa/Cairo")
    assert [b.label for b in hourly] == [
        "2025-04-24T22:00:00+02:00",
        "2025-04-24T23:00:00+02:00",
        "2025-04-25T01:00:00+03:00",
    ]


def test_cairo_autumn_day_of_25_hours():
    # last Thursday of October at 24:00 (+03:00) back to 23:00 (+02:00)
    series = run("day", 2, "2025-10-31T00:00:00", "Africa/Cairo")
    assert triples(series) == [
        ("2025-10-30", at("2025-10-29T21:00Z"), at("2025-10-30T22:00Z")),
        ("2025-10-31", at("2025-10-30T22:00Z"), at("2025-10-31T22:00Z")),
    ]
    hourly = run("hour", 2, "2025-10-30T21:30:00Z", "Africa/Cairo")
    assert [b.label for b in hourly] == ["2025-10-30T23:00:00+03:00", "2025-10-30T23:00:00+02:00"]


# ------------------------------------------------------ offsets not a whole hour


def test_kathmandu_hours_start_at_quarter_past_utc():
    series = run("hour", 2, "2025-06-01T12:00:00Z", "Asia/Kathmandu")
    assert triples(series) == [
        ("2025-06-01T16:00:00+05:45", at("2025-06-01T10:15Z"), at("2025-06-01T11:15Z")),
        ("2025-06-01T17:00:00+05:45", at("2025-06-01T11:15Z"), at("2025-06-01T12:15Z")),
    ]
    day = run("day", 1, "2025-06-01T12:00:00Z", "Asia/Kathmandu")
    assert triples(day) == [("2025-06-01", at("2025-05-31T18:15Z"), at("2025-06-01T18:15Z"))]


def test_kolkata_hours_start_at_half_past_utc():
    series = run("hour", 2, "2025-06-01T12:00:00Z", "Asia/Kolkata")
    assert triples(series) == [
        ("2025-06-01T16:00:00+05:30", at("2025-06-01T10:30Z"), at("2025-06-01T11:30Z")),
        ("2025-06-01T17:00:00+05:30", at("2025-06-01T11:30Z"), at("2025-06-01T12:30Z")),
    ]


def test_lord_howe_spring_forward_short_bucket_labelled_by_first_instant():
    # 2025-10-05 02:00+10:30 -> 02:30+11:00
    series = run("hour", 4, "2025-10-05T03:10:00+11:00", "Australia/Lord_Howe")
    assert triples(series) == [
        ("2025-10-05T00:00:00+10:30", at("2025-10-04T13:30Z"), at("2025-10-04T14:30Z")),
        ("2025-10-05T01:00:00+10:30", at("2025-10-04T14:30Z"), at("2025-10-04T15:30Z")),
        ("2025-10-05T02:30:00+11:00", at("2025-10-04T15:30Z"), at("2025-10-04T16:00Z")),
        ("2025-10-05T03:00:00+11:00", at("2025-10-04T16:00Z"), at("2025-10-04T17:00Z")),
    ]
    day = run("day", 1, "2025-10-05", "Australia/Lord_Howe")
    assert triples(day) == [("2025-10-05", at("2025-10-04T13:30Z"), at("2025-10-05T13:00Z"))]
    assert hours(day) == [23.5]


def test_lord_howe_fall_back_april():
    # 2025-04-06 02:00+11:00 -> 01:30+10:30: 01:30-02:00 happens twice
    series = run("hour", 4, "2025-04-06T02:10:00+10:30", "Australia/Lord_Howe")
    assert triples(series) == [
        ("2025-04-06T00:00:00+11:00", at("2025-04-05T13:00Z"), at("2025-04-05T14:00Z")),
        ("2025-04-06T01:00:00+11:00", at("2025-04-05T14:00Z"), at("2025-04-05T15:00Z")),
        ("2025-04-06T01:30:00+10:30", at("2025-04-05T15:00Z"), at("2025-04-05T15:30Z")),
        ("2025-04-06T02:00:00+10:30", at("2025-04-05T15:30Z"), at("2025-04-05T16:30Z")),
    ]
    day = run("day", 1, "2025-04-06T23:00:00", "Australia/Lord_Howe")
    assert triples(day) == [("2025-04-06", at("2025-04-05T13:00Z"), at("2025-04-06T13:30Z"))]
    assert hours(day) == [24.5]


def test_chatham_hours_start_at_quarter_past_utc():
    series = run("hour", 1, "2025-06-01T12:00:00Z", "Pacific/Chatham")
    assert triples(series) == [
        ("2025-06-02T00:00:00+12:45", at("2025-06-01T11:15Z"), at("2025-06-01T12:15Z"))
    ]


# ----------------------------------------------------------------------- Santiago


def test_santiago_april_fall_back_25_hour_day():
    # 2025-04-06 00:00-03:00 -> 2025-04-05 23:00-04:00: Saturday 23:00 happens twice
    day = run("day", 2, "2025-04-06T12:00:00", "America/Santiago")
    assert triples(day) == [
        ("2025-04-05", at("2025-04-05T03:00Z"), at("2025-04-06T04:00Z")),
        ("2025-04-06", at("2025-04-06T04:00Z"), at("2025-04-07T04:00Z")),
    ]
    assert hours(day) == [25, 24]
    hourly = run("hour", 4, "2025-04-06T00:30:00-04:00", "America/Santiago")
    assert triples(hourly) == [
        ("2025-04-05T22:00:00-03:00", at("2025-04-06T01:00Z"), at("2025-04-06T02:00Z")),
        ("2025-04-05T23:00:00-03:00", at("2025-04-06T02:00Z"), at("2025-04-06T03:00Z")),
        ("2025-04-05T23:00:00-04:00", at("2025-04-06T03:00Z"), at("2025-04-06T04:00Z")),
        ("2025-04-06T00:00:00-04:00", at("2025-04-06T04:00Z"), at("2025-04-06T05:00Z")),
    ]


def test_santiago_september_day_starts_at_one():
    day = run("day", 2, "2025-09-07", "America/Santiago")
    assert triples(day) == [
        ("2025-09-06", at("2025-09-06T04:00Z"), at("2025-09-07T04:00Z")),
        ("2025-09-07", at("2025-09-07T04:00Z"), at("2025-09-08T03:00Z")),
    ]
    zone = buckets.load_zone("America/Santiago")
    assert datetime.fromtimestamp(day[-1].start, zone).isoformat() == "2025-09-07T01:00:00-03:00"


# ------------------------------------------------------------ historical oddities


def test_apia_skipped_date_is_an_empty_bucket():
    # Samoa crossed the date line: 2011-12-29T23:59:59-10:00 -> 2011-12-31T00:00:00+14:00
    day = run("day", 3, "2011-12-31T12:00:00", "Pacific/Apia")
    assert triples(day) == [
        ("2011-12-29", at("2011-12-29T10:00Z"), at("2011-12-30T10:00Z")),
        ("2011-12-30", at("2011-12-30T10:00Z"), at("2011-12-30T10:00Z")),
        ("2011-12-31", at("2011-12-30T10:00Z"), at("2011-12-31T10:00Z")),
    ]
    hourly = run("hour", 2, "2011-12-31T00:30:00+14:00", "Pacific/Apia")
    assert triples(hourly) == [
        ("2011-12-29T23:00:00-10:00", at("2011-12-30T09:00Z"), at("2011-12-30T10:00Z")),
        ("2011-12-31T00:00:00+14:00", at("2011-12-30T10:00Z"), at("2011-12-30T11:00Z")),
    ]


def test_st_johns_fall_back_at_0001_crosses_midnight_backwards():
    # 2005-10-30 00:01-02:30 -> 2005-10-29 23:01-03:30. The hour after the change is wall
    # time of the 29th, but the 30th had already begun: it belongs to the 30th.
    change = at("2005-10-30T02:31Z")
    zone = buckets.load_zone("America/St_Johns")
    assert datetime.fromtimestamp(change, zone).isoformat() == "2005-10-29T23:01:00-03:30"
    assert buckets.day_of(zone, change + 1800) == date(2005, 10, 30)
    day = buckets.series("day", 2, change + 1800, zone)
    assert triples(day) == [
        ("2005-10-29", at("2005-10-29T02:30Z"), at("2005-10-30T02:30Z")),
        ("2005-10-30", at("2005-10-30T02:30Z"), at("2005-10-31T03:30Z")),
    ]
    hourly = buckets.series("hour", 4, change + 1800, zone)
    assert triples(hourly) == [
        ("2005-10-29T22:00:00-02:30", at("2005-10-30T00:30Z"), at("2005-10-30T01:30Z")),
        ("2005-10-29T23:00:00-02:30", at("2005-10-30T01:30Z"), at("2005-10-30T02:30Z")),
        ("2005-10-30T00:00:00-02:30", at("2005-10-30T02:30Z"), change),  # one minute long
        ("2005-10-29T23:01:00-03:30", change, at("2005-10-30T03:30Z")),
    ]


def test_casey_three_hour_fall_back_gives_27_hour_day():
    # Antarctica/Casey 2021-03-14 00:00+11:00 -> 2021-03-13 21:00+08:00
    day = run("day", 2, "2021-03-14T12:00:00", "Antarctica/Casey")
    assert triples(day) == [
        ("2021-03-13", at("2021-03-12T13:00Z"), at("2021-03-13T16:00Z")),
        ("2021-03-14", at("2021-03-13T16:00Z"), at("2021-03-14T16:00Z")),
    ]
    assert hours(day) == [27, 24]


# ---------------------------------------------------------------- label formats

DAY_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}")
HOUR_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


@pytest.mark.parametrize("zone_name", ["UTC", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"])
def test_label_formats(zone_name):
    for b in run("day", 100, "2025-06-01T00:00:00Z", zone_name):
        assert DAY_LABEL.fullmatch(b.label), b
    for b in run("hour", 100, "2025-06-01T00:00:00Z", zone_name):
        assert HOUR_LABEL.fullmatch(b.label), b
    assert run("hour", 1, "2025-06-01T00:00:00Z", "UTC")[0].label == "2025-06-01T00:00:00+00:00"


# ---------------------------------------------------------------- API surface


def test_series_validates_unit_and_length():
    zone = buckets.load_zone("UTC")
    for unit, length in (("week", 1), ("Day", 1), ("day", 0), ("hour", 101), ("day", -1)):
        with pytest.raises(ValueError):
            buckets.series(unit, length, 0, zone)
    assert len(buckets.series("day", 100, 0, zone)) == 100
    assert len(buckets.series("hour", 1, 0, zone)) == 1


def test_utc_series_is_plain_arithmetic():
    ending = at("2025-06-01T12:34:56Z")
    hourly = buckets.series("hour", 3, ending, buckets.load_zone("UTC"))
    assert [(b.start, b.end) for b in hourly] == [
        (at("2025-06-01T10:00Z"), at("2025-06-01T11:00Z")),
        (at("2025-06-01T11:00Z"), at("2025-06-01T12:00Z")),
        (at("2025-06-01T12:00Z"), at("2025-06-01T13:00Z")),
    ]
    daily = buckets.series("day", 2, ending, buckets.load_zone("UTC"))
    assert triples(daily) == [
        ("2025-05-31", at("2025-05-31T00:00Z"), at("2025-06-01T00:00Z")),
        ("2025-06-01", at("2025-06-01T00:00Z"), at("2025-06-02T00:00Z")),
    ]


def test_ending_on_a_boundary_belongs_to_the_bucket_it_starts():
    zone = buckets.load_zone("UTC")
    midnight = at("2025-06-01T00:00Z")
    assert buckets.series("day", 1, midnight, zone)[0].label == "2025-06-01"
    assert buckets.series("day", 1, midnight - 1, zone)[0].label == "2025-05-31"
    assert buckets.series("hour", 1, midnight, zone)[0].label == "2025-06-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "name",
    ["", "Not/AZone", "../etc/passwd", "/etc/localtime", "UTC/..", "a" * 65, "Europe/../UTC", ".hidden"],
)
def test_load_zone_rejects_unknown_names(name):
    with pytest.raises(buckets.UnknownZoneError):
        buckets.load_zone(name)


def test_load_zone_accepts_iana_names():
    assert str(buckets.load_zone("America/New_York")) == "America/New_York"
    assert buckets.load_zone("UTC") is buckets.load_zone("UTC")


def test_resolve_ending_floors_fractions_and_accepts_fixed_offsets():
    zone = buckets.load_zone("UTC")
    assert buckets.resolve_ending(datetime(2025, 6, 1, 0, 0, 1, 999_999, tzinfo=UTC), zone) == at(
        "2025-06-01T00:00:01Z"
    )
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert buckets.resolve_ending(before_epoch, zone) == -1
    ist = timezone(timedelta(hours=5, minutes=30))
    assert buckets.resolve_ending(datetime(2025, 6, 1, 5, 30, tzinfo=ist), zone) == at("2025-06-01T00:00Z")
    kolkata = buckets.load_zone("Asia/Kolkata")
    assert buckets.resolve_ending(datetime(2025, 6, 1, 5, 30), kolkata) == at("2025-06-01T00:00Z")


def test_helpers():
    zone = buckets.load_zone("America/New_York")
    assert buckets.offset_at(zone, at("2025-07-01T00:00Z")) == -4 * 3600
    assert buckets.offset_at(zone, at("2025-01-01T00:00Z")) == -5 * 3600
    assert buckets.day_of(zone, at("2025-06-01T03:59:59Z")) == date(2025, 5, 31)
    assert buckets.day_of(zone, at("2025-06-01T04:00Z")) == date(2025, 6, 1)
    b = buckets.hour_bucket_at(zone, at("2025-11-02T06:59:59Z"))
    assert b == Bucket("2025-11-02T01:00:00-05:00", at("2025-11-02T06:00Z"), at("2025-11-02T07:00Z"))


def test_repeated_queries_are_equal():
    a = run("hour", 50, "2025-11-02T03:30:00-05:00", "America/New_York")
    b = run("hour", 50, "2025-11-02T03:30:00-05:00", "America/New_York")
    assert a == b


def _clear_caches() -> None:
    for cached in (buckets._day_series, buckets._hour_series, buckets.day_start):
        cached.cache_clear()


@pytest.mark.parametrize("process_zone", ["UTC", "America/St_Johns", "Asia/Kathmandu", "Pacific/Kiritimati"])
def test_process_time_zone_does_not_matter(monkeypatch, process_zone):
    import time

    cases = [
        ("hour", 30, "2025-11-02T03:30:00", "America/New_York"),
        ("day", 30, "2025-04-25", "Africa/Cairo"),
        ("hour", 30, "2025-10-05T03:10:00+11:00", "Australia/Lord_Howe"),
    ]
    _clear_caches()
    expected = [run(*case) for case in cases]
    monkeypatch.setenv("TZ", process_zone)
    time.tzset()
    try:
        _clear_caches()
        assert [run(*case) for case in cases] == expected
    finally:
        monkeypatch.undo()
        time.tzset()
        _clear_caches()
