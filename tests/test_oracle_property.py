"""Property tests: sessiontally.buckets against the brute-force oracle (tests/oracle.py).

Sessions and ``ending_at`` values are concentrated around real DST transitions (and the
date-line jump of Pacific/Apia in 2011), around the ending instant and on the quarter-hour
grid, where off-by-one mistakes live.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import (
    expected_series,
    hour_buckets,
    labels,
    resolve_ending_seconds,
    transitions,
)

from sessiontally import buckets

ZONES = (
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Africa/Cairo",
    "America/New_York",
    "Europe/Berlin",
    "America/Santiago",
    "Pacific/Chatham",
    "America/St_Johns",
    "Asia/Tehran",
    "Pacific/Apia",
    # a few more shapes of change: negative DST, a 2-hour DST, Ramadan DST, 3-hour jumps
    # at 00:01 across midnight, 30-minute zone changes
    "Europe/Dublin",
    "Antarctica/Troll",
    "Africa/Casablanca",
    "Antarctica/Casey",
    "Asia/Pyongyang",
)


def _epoch(year: int, month: int = 1, day: int = 1) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


WINDOW = (_epoch(2020), _epoch(2027))
# Older periods worth clustering around too: the Apia date-line jump (2011-12-30 never
# happened there), Pyongyang's 30-minute zone changes, and St_Johns' changes at 00:01
# local, whose fall-back crosses midnight backwards (23:01 of the day before, twice).
EXTRA_WINDOWS = {
    "Pacific/Apia": (_epoch(2011, 12, 1), _epoch(2012, 1, 31)),
    "Asia/Pyongyang": (_epoch(2015), _epoch(2019)),
    "America/St_Johns": (_epoch(2007), _epoch(2011, 6)),
}


@cache
def anchors(zone_name: str) -> tuple[int, ...]:
    """Instants to cluster around: the zone's transitions in 2020-2026 (and the extras)."""
    zone = ZoneInfo(zone_name)
    found = set(transitions(zone, *WINDOW))
    if zone_name in EXTRA_WINDOWS:
        found.update(transitions(zone, *EXTRA_WINDOWS[zone_name]))
    return tuple(sorted(found))


def _count_with_buckets(series: tuple[buckets.Bucket, ...], starts_us: list[int]) -> list[int]:
    """Each session in the bucket [start, end) that contains it (bisect on the starts)."""
    edges = [b.start * 1_000_000 for b in series]
    counts = [0] * len(series)
    for s in starts_us:
        i = bisect.bisect_right(edges, s) - 1
        if i >= 0 and s < series[i].end * 1_000_000:
            counts[i] += 1
    return counts


def _check_shape(series: tuple[buckets.Bucket, ...], zone: ZoneInfo, unit: str, length: int) -> None:
    assert len(series) == length
    for previous, current in zip(series, series[1:], strict=False):
        assert previous.end == current.start, (previous, current)
    for b in series:
        if b.start == b.end:
            # Only a calendar date that never happens locally (Apia, 2011-12-30) may be empty.
            assert unit == "day", b
            before = datetime.fromtimestamp(b.start - 1, zone).date()
            after = datetime.fromtimestamp(b.start, zone).date()
            assert before < date.fromisoformat(b.label) < after, b
        else:
            assert b.start < b.end, b


# ------------------------------------------------------------------------ strategies


@st.composite
def scenarios(draw):
    zone_name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(zone_name)
    unit = draw(st.sampled_from(buckets.UNITS))
    length = draw(st.integers(1, buckets.MAX_LENGTH))
    points = anchors(zone_name)
    if points and draw(st.integers(0, 9)) > 0:
        anchor = draw(st.sampled_from(points))
    else:
        anchor = draw(st.integers(*WINDOW))
    delta = draw(
        st.one_of(
            st.integers(-7200, 7200),
            st.integers(-4 * 86400, 4 * 86400),
            st.sampled_from([-3601, -3600, -1801, -1800, -901, -900, -1, 0, 1, 899, 900, 1800, 3600]),
        )
    )
    ending_s = anchor + delta
    form = draw(st.sampled_from(["micros", "aware", "naive"]))
    if form == "micros":
        ending = ending_s * 1_000_000 + draw(st.integers(0, 999_999))
    elif form == "aware":
        minutes = draw(st.integers(-14 * 60, 14 * 60))
        fixed = timezone(timedelta(minutes=minutes))
        micros = timedelta(microseconds=draw(st.integers(0, 999_999)))
        ending = datetime.fromtimestamp(ending_s, fixed) + micros
    else:
        # wall time near the anchor, so that gaps and repeated hours get hit
        wall = datetime.fromtimestamp(ending_s, zone).replace(tzinfo=None)
        ending = wall + timedelta(minutes=draw(st.integers(-120, 120)) * draw(st.sampled_from([1, 15])))

    resolved = resolve_ending_seconds(ending, zone)
    span = length * (86400 if unit == "day" else 3600)
    low, high = max(0, resolved - span - 2 * 86400), resolved + 2 * 86400
    nearby = [p for p in points if low <= p <= high] or [resolved]
    grid_steps = span // 900 + 200

    near_point = st.builds(
        lambda p, d: p + d,
        st.sampled_from(nearby),
        st.one_of(st.integers(-2, 2), st.integers(-7200, 7200)),
    ).map(lambda s: s * 1_000_000)
    near_end = st.integers(-7200, 7200).map(lambda d: (resolved + d) * 1_000_000)
    on_grid = st.builds(
        lambda k, us: ((resolved // 900) + k) * 900 * 1_000_000 + us,
        st.integers(-grid_steps, 200),
        st.sampled_from([-1, 0, 1]),
    )
    anywhere = st.integers(low * 1_000_000, high * 1_000_000)
    session = st.one_of(near_point, near_end, on_grid, anywhere).map(lambda us: max(0, us))
    starts = draw(st.lists(session, max_size=200))
    return zone_name, unit, length, ending, starts


# ------------------------------------------------------------------------ properties


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_series_matches_oracle(scenario):
    zone_name, unit, length, ending, starts = scenario
    zone = buckets.load_zone(zone_name)

    if isinstance(ending, datetime):
        ending_s = buckets.resolve_ending(ending, zone)
        assert ending_s == resolve_ending_seconds(ending, zone)
    else:
        ending_s = ending // 1_000_000

    series = buckets.series(unit, length, ending_s, zone)
    expected = expected_series(starts, zone, unit, length, ending)

    assert [b.label for b in series] == [label for label, _ in expected]
    assert _count_with_buckets(series, starts) == [count for _, count in expected]
    assert series[-1].start <= ending_s < series[-1].end or series[-1].start == series[-1].end
    _check_shape(series, zone, unit, length)
    if unit == "hour":
        assert [b.start for b in series] == [first for _, first in hour_buckets(zone, ending_s, length)]


# Fall-backs that cross midnight backwards (00:01 -> 23:01 of the day before): the hour
# after such a change is wall time of the previous date but belongs to the new day. Rare in
# the random scenarios above, so checked here on such changes of 2001-2010.
CROSSING_ZONES = ("America/St_Johns", "America/Goose_Bay", "America/Moncton")


@settings(max_examples=100, deadline=None)
@given(
    zone_name=st.sampled_from(CROSSING_ZONES),
    unit=st.sampled_from(buckets.UNITS),
    length=st.integers(1, 30),
    data=st.data(),
)
def test_series_matches_oracle_at_backward_midnight_crossings(zone_name, unit, length, data):
    zone = buckets.load_zone(zone_name)
    points = transitions(zone, _epoch(2001), _epoch(2011))
    fall_backs = [t for t in points if datetime.fromtimestamp(t, zone).hour == 23]
    assert len(fall_backs) >= 6, (zone_name, points)  # Moncton: until 2006, the others 2010
    anchor = data.draw(st.sampled_from(fall_backs))
    ending_s = anchor + data.draw(st.integers(-2 * 3600, 2 * 3600))
    starts = data.draw(
        st.lists(st.integers((anchor - 7200) * 1_000_000, (anchor + 7200) * 1_000_000), max_size=50)
    )
    series = buckets.series(unit, length, ending_s, zone)
    expected = expected_series(starts, zone, unit, length, ending_s * 1_000_000)
    assert [b.label for b in series] == [label for label, _ in expected]
    assert _count_with_buckets(series, starts) == [count for _, count in expected]
    _check_shape(series, zone, unit, length)


# Zones and periods where tzdata puts transitions off the quarter-hour grid after 1980
# (found by scanning; see test_off_grid_transitions_are_exactly_these). The service counts
# such buckets from raw sessions instead of the quarter-hour rollup.
OFF_GRID = {
    "America/St_Johns": (_epoch(1987, 4, 5), _epoch(2011, 3, 14)),  # changes at 00:01 local
    "Antarctica/Casey": (_epoch(2020, 10, 3), _epoch(2022, 10, 2)),  # changes at 00:01 local
}
SINCE_1980 = (_epoch(1980), _epoch(2031))


def _on_grid_expected(zone_name: str, instant: int) -> bool:
    window = OFF_GRID.get(zone_name)
    return window is None or not window[0] - 200 * 86400 <= instant <= window[1] + 200 * 86400


def test_off_grid_transitions_are_exactly_these():
    found = {}
    for zone_name in ZONES:
        zone = ZoneInfo(zone_name)
        for t in transitions(zone, *SINCE_1980):
            offset = int(datetime.fromtimestamp(t, zone).utcoffset().total_seconds())
            if t % 900 or offset % 900:
                first, last = found.get(zone_name, (t, t))
                found[zone_name] = (min(first, t), max(last, t))
    assert set(found) == set(OFF_GRID)
    for zone_name, (first, last) in found.items():
        low, high = OFF_GRID[zone_name]
        assert low <= first and last < high, (zone_name, first, last)
    # St_Johns: every change from 1987-04-05 to 2011-03-13 is at 00:01 local (xx:31 UTC).
    st_johns = [t for t in transitions(ZoneInfo("America/St_Johns"), *SINCE_1980) if t % 900]
    assert len(st_johns) == 49
    assert {datetime.fromtimestamp(t, UTC).minute for t in st_johns} == {31}


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    unit=st.sampled_from(buckets.UNITS),
    length=st.integers(1, buckets.MAX_LENGTH),
    data=st.data(),
)
def test_boundaries_contiguous_increasing_and_on_quarter_hours(zone_name, unit, length, data):
    zone = buckets.load_zone(zone_name)
    points = transitions(zone, *SINCE_1980)
    if points and data.draw(st.booleans()):
        ending = data.draw(st.sampled_from(points)) + data.draw(st.integers(-3 * 86400, 3 * 86400))
    else:
        ending = data.draw(st.integers(*SINCE_1980))
    series = buckets.series(unit, length, ending, zone)
    _check_shape(series, zone, unit, length)
    assert series[-1].start <= ending < series[-1].end
    if _on_grid_expected(zone_name, ending):
        edges = [b.start for b in series] + [series[-1].end]
        assert all(edge % 900 == 0 for edge in edges), (zone_name, unit, length, ending)


def test_every_transition_since_1980_gives_quarter_hour_boundaries():
    """Exhaustive over the listed zones' changes since 1980: the hour and day buckets on
    both sides of each change start and end on the quarter-hour grid (except OFF_GRID)."""
    for zone_name in ZONES:
        zone = buckets.load_zone(zone_name)
        for t in transitions(zone, *SINCE_1980):
            for unit, length in (("hour", 4), ("day", 2)):
                series = buckets.series(unit, length, t + (3600 if unit == "hour" else 86400), zone)
                _check_shape(series, zone, unit, length)
                edges = [b.start for b in series] + [series[-1].end]
                on_grid = all(edge % 900 == 0 for edge in edges)
                assert on_grid or not _on_grid_expected(zone_name, t), (zone_name, t, series)


# --------------------------------------------------------------- every length, fixed


@pytest.mark.parametrize(
    ("zone_name", "ending"),
    [
        ("America/New_York", datetime(2025, 11, 2, 1, 30, tzinfo=timezone(timedelta(hours=-5)))),
        ("America/New_York", datetime(2025, 3, 9, 3, 0, 0, tzinfo=timezone(timedelta(hours=-4)))),
        ("Australia/Lord_Howe", datetime(2025, 4, 6, 1, 45, tzinfo=timezone(timedelta(hours=10.5)))),
    ],
)
def test_every_length_both_units_near_a_transition(zone_name, ending):
    zone = buckets.load_zone(zone_name)
    ending_s = int(ending.timestamp())
    # sessions on every quarter hour, and a microsecond either side, over 101 days
    starts = []
    for k in range(-101 * 96, 96):
        q = (ending_s // 900 + k) * 900 * 1_000_000
        starts.extend((q - 1, q, q + 1) if k % 7 == 0 else (q,))
    for unit in buckets.UNITS:
        full = buckets.series(unit, buckets.MAX_LENGTH, ending_s, zone)
        for length in range(1, buckets.MAX_LENGTH + 1):
            series = buckets.series(unit, length, ending_s, zone)
            assert series == full[-length:]
            assert [b.label for b in series] == labels(unit, zone, length, ending)
            if unit == "hour":
                assert [b.start for b in series] == [f for _, f in hour_buckets(zone, ending_s, length)]
        assert _count_with_buckets(full, starts) == [
            n for _, n in expected_series(starts, zone, unit, buckets.MAX_LENGTH, ending)
        ]
