"""Daily KPIs (CONTRACT section 12): what one change to a person's active days does to
DAU, MAU and new users. Pure.

A person is *active* on a local day (in the workspace's zone) when at least one of its
sessions starts that day. Distinct counts cannot be added up from counts, so the store
keeps, per scope (an app, or all apps) and person, the number of sessions starting on
each active day, and turns each day that becomes active or inactive into increments:

* DAU(D) changes by one for the day itself.
* MAU(D) counts persons active in the 30 days ending D. A day d that becomes active adds
  the person to MAU(D) for the D in [d, d + 29] not already covered by a neighbouring
  active day: D > prev + 29 (the previous active day is out of D's window) and D < next
  (the next active day, when inside the window, already covers it).
* New users(D) counts persons whose first active day is D: a day before every other
  moves the person's first day (−1 at the old first day, +1 at the new).

A day that becomes inactive undoes exactly what its activation did, with the same
neighbours. Applied one change at a time, in any order, the counts equal those computed
from the final set of active days: every increment depends only on that set.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import NamedTuple

from .buckets import load_zone

MAU_WINDOW_DAYS = 30
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

DAU, MAU, NEW_USERS, UNINSTALLS = 1, 2, 3, 4  # the ``kind`` of a stored KPI count
KINDS = {"dau": DAU, "mau": MAU, "new_users": NEW_USERS, "uninstalls": UNINSTALLS}
UNINSTALL_EVENT = "Application Uninstalled"  # Segment's lifecycle event


def local_day(zone_name: str, micros: int) -> int:
    """The local date of an instant in a zone, as days since 1970-01-01."""
    return datetime.fromtimestamp(micros // 1_000_000, load_zone(zone_name)).toordinal() - EPOCH_ORDINAL


def day_label(day: int) -> str:
    """``2025-06-01`` for a day number."""
    return date.fromordinal(day + EPOCH_ORDINAL).isoformat()


class Neighbours(NamedTuple):
    """A person's nearest other active days around ``day`` in one scope (None: none)."""

    previous: int | None
    next: int | None


def mau_span(day: int, around: Neighbours) -> tuple[int, int]:
    """The days D (``first..last``, empty when first > last) whose MAU the person counts
    in because of ``day`` alone."""
    first = day if around.previous is None else max(day, around.previous + MAU_WINDOW_DAYS)
    last = day + MAU_WINDOW_DAYS - 1
    if around.next is not None:
        last = min(last, around.next - 1)
    return first, last


def new_user_changes(day: int, around: Neighbours, sign: int) -> list[tuple[int, int]]:
    """``(day, increment)`` of new users when ``day`` becomes active (``sign`` +1) or
    inactive (-1): only when it is (or was) the person's first day."""
    if around.previous is not None:
        return []
    changes = [(day, sign)]
    if around.next is not None:  # the first day it displaces (or gives back)
        changes.append((around.next, -sign))
    return changes


def activation(day: int, around: Neighbours, sign: int) -> Counter[tuple[int, int]]:
    """``(kind, day) -> increment`` when ``day`` becomes active (``sign`` +1) or inactive
    (-1) for a person whose other active days nearest to it are ``around``."""
    changes: Counter[tuple[int, int]] = Counter()
    changes[(DAU, day)] += sign
    first, last = mau_span(day, around)
    for covered in range(first, last + 1):
        changes[(MAU, covered)] += sign
    for affected, n in new_user_changes(day, around, sign):
        changes[(NEW_USERS, affected)] += n
    return changes


class DayChanges:
    """Increments of many activations, MAU's kept as the edges of its spans (two entries
    per activation instead of up to 30) and expanded once (``rows``)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, int, int]] = Counter()  # (scope, kind, day)
        self.mau_edges: Counter[tuple[int, int]] = Counter()  # (scope, day): change from day on

    def add(self, scope: int, day: int, around: Neighbours, sign: int) -> None:
        self.counts[(scope, DAU, day)] += sign
        first, last = mau_span(day, around)
        if first <= last:
            self.mau_edges[(scope, first)] += sign
            self.mau_edges[(scope, last + 1)] -= sign
        for affected, n in new_user_changes(day, around, sign):
            self.counts[(scope, NEW_USERS, affected)] += n

    def rows(self) -> list[tuple[int, int, int, int]]:
        """``(scope, kind, day, increment)``, non-zero, sorted."""
        counts = Counter(self.counts)
        edge_days: dict[int, list[int]] = {}
        for scope, day in self.mau_edges:
            edge_days.setdefault(scope, []).append(day)
        for scope, days in edge_days.items():
            days.sort()
            total = 0
            for i, day in enumerate(days):
                total += self.mau_edges[(scope, day)]
                end = days[i + 1] if i + 1 < len(days) else day  # (spans end: total is 0 here)
                if total:
                    for covered in range(day, end):
                        counts[(scope, MAU, covered)] += total
        return sorted((*key, n) for key, n in counts.items() if n)


def brute_force(active_days: dict[str, set[int]], first: int, last: int) -> dict[int, dict[int, int]]:
    """``kind -> day -> count`` for days ``first..last`` by definition, from every
    person's set of active days (tests' oracle)."""
    counts: dict[int, dict[int, int]] = {kind: {} for kind in (DAU, MAU, NEW_USERS)}
    for day in range(first, last + 1):
        counts[DAU][day] = sum(day in days for days in active_days.values())
        counts[MAU][day] = sum(
            any(day - MAU_WINDOW_DAYS < d <= day for d in days) for days in active_days.values()
        )
        counts[NEW_USERS][day] = sum(bool(days) and min(days) == day for days in active_days.values())
    return counts
