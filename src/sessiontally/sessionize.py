"""Sessions derived from activity events (CONTRACT section 11). Pure.

A person's sessions in an app are the maximal runs of its event times in which
consecutive times are at most the app's timeout apart. Such a run is fully described by
its first and last time: a new time inside a run changes nothing, one within the timeout
of a run's end (or start) extends it, and one within the timeout of two runs joins them.
So the stored state is one interval per session, never the events, and adding a set of
times to a set of intervals gives the same intervals whatever the order, batching or
repetition of the times (the union of two point sets is cut the same way as the union of
their runs).

``resolve`` turns the stored intervals near a batch's times, and those times, into the
changes to make: intervals to remove and intervals to add. A caller turns those into
rollup increments (-1 at a removed start, +1 at an added start).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

DEFAULT_TIMEOUT_S = 30 * 60
MIN_TIMEOUT_S = 1
MAX_TIMEOUT_S = 7 * 24 * 3600


class Interval(NamedTuple):
    """A stored session: its first and last event time (epoch microseconds) and the
    tracked segment keys it counts toward."""

    started_at: int
    ended_at: int
    segments: tuple[int, ...]


class Activity(NamedTuple):
    """One new activity event: its time and the ``userId`` it carried (None if none)."""

    at: int
    user_id: str | None


class NewInterval(NamedTuple):
    """A session to store. ``segments`` is None when it absorbed no stored session: its
    membership is then that of ``user_id`` (the earliest user id among its new events),
    as matched now."""

    started_at: int
    ended_at: int
    segments: tuple[int, ...] | None
    user_id: str | None


class Changes(NamedTuple):
    removed: list[Interval]
    added: list[NewInterval]


def window(times: Sequence[Activity], timeout_us: int) -> tuple[int, int]:
    """The span of stored intervals that ``times`` can touch: an interval matters if it
    ends at or after ``lo`` and starts at or before ``hi``."""
    first = min(a.at for a in times)
    last = max(a.at for a in times)
    return first - timeout_us, last + timeout_us


def resolve(stored: Sequence[Interval], times: Sequence[Activity], timeout_us: int) -> Changes:
    """What adding ``times`` to the person's ``stored`` intervals (those in ``window``,
    disjoint) changes. A merged session keeps the membership of the earliest stored
    session it absorbed (section 11: a moved start keeps it; of two merged, the earlier
    keeps its own)."""
    # Stored intervals and new times as one sorted sweep; a stored interval sorts before a
    # new time at the same instant, so the earliest member of a group is a stored one.
    # New times at the same instant sort by user id, so that the user id a new session
    # takes does not depend on the order of the batch.
    items: list[tuple[int, int, int, Interval | None, str | None]] = [
        (iv.started_at, 0, iv.ended_at, iv, None) for iv in stored
    ]
    items += [(a.at, 1, a.at, None, a.user_id) for a in times]
    items.sort(key=lambda item: (item[0], item[1], item[2], item[4] or ""))

    removed: list[Interval] = []
    added: list[NewInterval] = []
    group: list[tuple[int, int, int, Interval | None, str | None]] = []
    group_end = 0
    for item in items:
        if group and item[0] - group_end > timeout_us:
            _close(group, group_end, removed, added)
            group = []
        if not group:
            group_end = item[2]
        group.append(item)
        group_end = max(group_end, item[2])
    if group:
        _close(group, group_end, removed, added)
    return Changes(removed, added)


def _close(
    group: list[tuple[int, int, int, Interval | None, str | None]],
    end: int,
    removed: list[Interval],
    added: list[NewInterval],
) -> None:
    start = group[0][0]
    absorbed = [item[3] for item in group if item[3] is not None]
    if len(absorbed) == 1 and (absorbed[0].started_at, absorbed[0].ended_at) == (start, end):
        return  # new times inside one stored session: nothing changes
    removed.extend(absorbed)
    if absorbed:
        added.append(NewInterval(start, end, absorbed[0].segments, None))
    else:
        user_id = next((item[4] for item in group if item[4] is not None), None)
        added.append(NewInterval(start, end, None, user_id))


def sessionize(times: Sequence[int], timeout_us: int) -> list[tuple[int, int]]:
    """The sessions of one person's event times, by definition (tests' oracle, demo)."""
    runs: list[tuple[int, int]] = []
    for t in sorted(times):
        if runs and t - runs[-1][1] <= timeout_us:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs
