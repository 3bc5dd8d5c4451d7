"""Pure tests of ``sessiontally.kpi`` (CONTRACT section 12): what one day becoming active
or inactive does to DAU, MAU and new users (``activation``), checked against
``brute_force`` (and ``brute_force`` against a count by hand), and ``local_day`` across
DST changes, odd offsets and days before 1970-01-01."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally import kpi
from sessiontally.kpi import DAU, MAU, NEW_USERS, Neighbours

S = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def neighbours(days: set[int], day: int) -> Neighbours:
    """The nearest other active days around ``day`` (by definition, from the set)."""
    before = [d for d in days if d < day]
    after = [d for d in days if d > day]
    return Neighbours(max(before) if before else None, min(after) if after else None)


def toggle(days: set[int], day: int, totals: Counter[tuple[int, int]]) -> None:
    """Make ``day`` active if it is not, else inactive, adding its activation to ``totals``."""
    sign = -1 if day in days else 1
    days.discard(day)
    totals.update(kpi.activation(day, neighbours(days, day), sign))
    if sign > 0:
        days.add(day)


def as_counts(totals: Counter[tuple[int, int]], first: int, last: int) -> dict[int, dict[int, int]]:
    assert all(first <= day <= last for (_, day), n in totals.items() if n), "an increment out of range"
    return {kind: {day: totals[(kind, day)] for day in range(first, last + 1)}
            for kind in (DAU, MAU, NEW_USERS)}


# ----------------------------------------------------------------- brute force itself


def test_brute_force_counts_by_definition():
    counts = kpi.brute_force({"a": {0, 40}, "b": {29, 30}, "c": set()}, -1, 70)
    assert counts[DAU][0] == 1 and counts[DAU][29] == 1 and counts[DAU][1] == 0
    assert counts[MAU][-1] == 0 and counts[MAU][0] == 1 and counts[MAU][28] == 1
    assert counts[MAU][29] == 2 and counts[MAU][30] == 1  # a's day 0 leaves after day 29
    assert counts[MAU][40] == 2 and counts[MAU][59] == 2 and counts[MAU][60] == 1  # b's 30 leaves
    assert counts[MAU][69] == 1 and counts[MAU][70] == 0
    assert counts[NEW_USERS] == {d: (1 if d in (0, 29) else 0) for d in range(-1, 71)}


# ------------------------------------------------------------------- the property


@st.composite
def toggles(draw) -> list[tuple[str, int]]:
    """Days of a few persons made active and inactive one at a time, in random order:
    days close together (the MAU window's edges), far apart, and negative."""
    persons = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True))
    anchor = draw(st.integers(-100, 100))
    offsets = st.one_of(st.sampled_from([0, 1, 28, 29, 30, 31, 59, 60, -29, -30, -31]),
                        st.integers(-70, 70))
    steps = []
    for _ in range(draw(st.integers(1, 30))):
        steps.append((draw(st.sampled_from(persons)), anchor + draw(offsets)))
    # A day removed again now and then: each listed twice is added then removed.
    steps += draw(st.lists(st.sampled_from(steps), max_size=10))
    return draw(st.permutations(steps))


@settings(max_examples=400, deadline=None)
@given(toggles())
def test_activations_in_any_order_add_up_to_the_brute_force_of_the_final_sets(steps):
    days: dict[str, set[int]] = {}
    totals: Counter[tuple[int, int]] = Counter()
    for person, day in steps:
        toggle(days.setdefault(person, set()), day, totals)
    every = [day for _, day in steps]
    first, last = min(every) - 2, max(every) + kpi.MAU_WINDOW_DAYS + 2
    assert as_counts(totals, first, last) == kpi.brute_force(days, first, last)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-40, 40), min_size=1, max_size=12, unique=True), st.data())
def test_removing_every_day_again_leaves_nothing(added, data):
    days: set[int] = set()
    totals: Counter[tuple[int, int]] = Counter()
    for day in added:
        toggle(days, day, totals)
    for day in data.draw(st.permutations(added)):
        toggle(days, day, totals)
    assert not days and not +totals and not -totals


# ------------------------------------------------------------- window edges by hand


def test_one_day_covers_exactly_the_30_days_ending_29_days_later():
    changes = kpi.activation(100, Neighbours(None, None), 1)
    assert sorted(day for (kind, day) in changes if kind == MAU) == list(range(100, 130))
    assert changes[(DAU, 100)] == 1 and changes[(NEW_USERS, 100)] == 1


@pytest.mark.parametrize(("gap", "covered"), [(29, range(130, 159)), (30, range(130, 160)),
                                              (31, range(131, 161)), (1, range(130, 131))])
def test_a_later_day_covers_only_what_the_previous_one_does_not(gap, covered):
    """Day 100 is active; 100 + gap becomes active: MAU grows on the days after 129
    (day 100's last) up to 29 days after the new day."""
    changes = kpi.activation(100 + gap, Neighbours(100, None), 1)
    assert sorted(day for (kind, day) in changes if kind == MAU and changes[(kind, day)]) == list(covered)
    assert (NEW_USERS, 100 + gap) not in changes  # not the first day


@pytest.mark.parametrize("gap", [29, 30, 31])
def test_an_earlier_day_covers_up_to_the_day_before_the_next(gap):
    """Day 100 is active; 100 - gap becomes active: MAU grows from it up to the day
    before 100 at most (day 100 already covers itself onwards)."""
    day = 100 - gap
    changes = kpi.activation(day, Neighbours(None, 100), 1)
    mau = sorted(d for (kind, d) in changes if kind == MAU and changes[(kind, d)])
    assert mau == list(range(day, min(day + 30, 100)))
    # The first day moves from 100 to the new one.
    assert changes[(NEW_USERS, day)] == 1 and changes[(NEW_USERS, 100)] == -1


def test_mau_at_the_window_edges_by_brute_force_and_activation():
    for gap in (29, 30):
        totals: Counter[tuple[int, int]] = Counter()
        days: set[int] = set()
        toggle(days, 0, totals)
        toggle(days, gap, totals)
        assert totals[(MAU, 29)] == 1  # one person, however many of its days cover 29
        assert totals[(MAU, gap + 29)] == 1 and totals[(MAU, gap + 30)] == 0
        assert totals[(MAU, 30)] == 1  # day 0 has left the window; day `gap` covers it


def test_new_users_move_to_an_earlier_day_and_come_back_when_it_goes():
    days: set[int] = set()
    totals: Counter[tuple[int, int]] = Counter()
    toggle(days, 10, totals)
    assert totals[(NEW_USERS, 10)] == 1
    toggle(days, 5, totals)  # an earlier day: the first day moves
    assert (totals[(NEW_USERS, 5)], totals[(NEW_USERS, 10)]) == (1, 0)
    toggle(days, 7, totals)  # between: nothing moves
    assert (totals[(NEW_USERS, 5)], totals[(NEW_USERS, 7)], totals[(NEW_USERS, 10)]) == (1, 0, 0)
    toggle(days, 5, totals)  # the first day goes: the next one (7) is first again
    assert (totals[(NEW_USERS, 5)], totals[(NEW_USERS, 7)], totals[(NEW_USERS, 10)]) == (0, 1, 0)
    toggle(days, 7, totals)
    assert (totals[(NEW_USERS, 7)], totals[(NEW_USERS, 10)]) == (0, 1)
    toggle(days, 10, totals)
    assert not +totals and not -totals


# ------------------------------------------------------------------------ local days


def at(text: str) -> int:
    """Microseconds since the epoch of a UTC ISO time."""
    return (datetime.fromisoformat(text).replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def day_of(text: str) -> int:
    return date.fromisoformat(text).toordinal() - date(1970, 1, 1).toordinal()


# (zone, UTC instant, local date): the last and first instants of local days around
# DST changes and odd offsets, worked out by hand from each zone's rules.
LOCAL_DAYS = [
    # New York, spring forward 2025-03-09 02:00 EST -> 03:00 EDT (07:00Z): a 23-hour day.
    ("America/New_York", "2025-03-09T04:59:59.999999", "2025-03-08"),
    ("America/New_York", "2025-03-09T05:00:00", "2025-03-09"),
    ("America/New_York", "2025-03-09T06:59:59", "2025-03-09"),
    ("America/New_York", "2025-03-09T07:00:00", "2025-03-09"),
    ("America/New_York", "2025-03-10T03:59:59", "2025-03-09"),
    ("America/New_York", "2025-03-10T04:00:00", "2025-03-10"),
    # Fall back 2025-11-02 02:00 EDT -> 01:00 EST (06:00Z): a 25-hour day.
    ("America/New_York", "2025-11-02T03:59:59", "2025-11-01"),
    ("America/New_York", "2025-11-02T04:00:00", "2025-11-02"),
    ("America/New_York", "2025-11-02T06:30:00", "2025-11-02"),  # the second 01:30
    ("America/New_York", "2025-11-03T04:59:59", "2025-11-02"),
    ("America/New_York", "2025-11-03T05:00:00", "2025-11-03"),
    # Kathmandu, +05:45 (no DST): local midnight is 18:15Z the day before.
    ("Asia/Kathmandu", "2025-06-14T18:14:59", "2025-06-14"),
    ("Asia/Kathmandu", "2025-06-14T18:15:00", "2025-06-15"),
    # ... and +05:30 before 1986.
    ("Asia/Kathmandu", "1985-06-14T18:29:59", "1985-06-14"),
    ("Asia/Kathmandu", "1985-06-14T18:30:00", "1985-06-15"),
    # Lord Howe: +11 in summer, +10:30 in winter (a half-hour DST change). It ends
    # 2025-04-06 02:00 +11 -> 01:30 +10:30 (15:00Z on the 5th).
    ("Australia/Lord_Howe", "2025-04-05T12:59:59", "2025-04-05"),
    ("Australia/Lord_Howe", "2025-04-05T13:00:00", "2025-04-06"),
    ("Australia/Lord_Howe", "2025-04-06T13:29:59", "2025-04-06"),
    ("Australia/Lord_Howe", "2025-04-06T13:30:00", "2025-04-07"),
    # It starts 2025-10-05 02:00 +10:30 -> 02:30 +11 (15:30Z on the 4th).
    ("Australia/Lord_Howe", "2025-10-04T13:29:59", "2025-10-04"),
    ("Australia/Lord_Howe", "2025-10-04T13:30:00", "2025-10-05"),
    ("Australia/Lord_Howe", "2025-10-05T12:59:59", "2025-10-05"),
    ("Australia/Lord_Howe", "2025-10-05T13:00:00", "2025-10-06"),
    # Before 1970-01-01, locally or in UTC: negative day numbers.
    ("America/Los_Angeles", "1970-01-01T02:00:00", "1969-12-31"),
    ("America/Los_Angeles", "1970-01-01T07:59:59", "1969-12-31"),
    ("America/Los_Angeles", "1970-01-01T08:00:00", "1970-01-01"),
    ("UTC", "1969-12-31T23:59:59.999999", "1969-12-31"),
    ("UTC", "1970-01-01T00:00:00", "1970-01-01"),
    ("Pacific/Pago_Pago", "1970-01-01T10:59:59", "1969-12-31"),
    ("America/New_York", "1969-07-20T20:17:40", "1969-07-20"),
    ("Asia/Kathmandu", "1969-12-31T18:29:59", "1969-12-31"),  # +05:30 then
    ("Asia/Kathmandu", "1969-12-31T18:30:00", "1970-01-01"),
]


@pytest.mark.parametrize(("zone", "instant", "local"), LOCAL_DAYS)
def test_local_day(zone, instant, local):
    assert kpi.local_day(zone, at(instant)) == day_of(local)
    assert kpi.day_label(kpi.local_day(zone, at(instant))) == local


def test_days_before_1970_are_negative():
    assert kpi.local_day("America/Los_Angeles", 2 * 3600 * S) == -1
    assert kpi.local_day("UTC", -1) == -1  # one microsecond before the epoch
    assert kpi.local_day("UTC", 0) == 0
    assert kpi.day_label(-1) == "1969-12-31" and kpi.day_label(-365) == "1969-01-01"
