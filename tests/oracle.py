"""A brute-force oracle for ``GET /sessions/data_series`` (CONTRACT.md section 3).

Deliberately independent of ``sessiontally.buckets``: it uses only ``zoneinfo`` and
re-derives every bucket by stepping through time, not by computing boundaries.

Definitions (all instants are UTC epoch seconds unless the name says ``_us``):

* day label of an instant ``t``: the maximum local calendar date seen at any instant
  ``s <= t`` (a running maximum, so that an instant whose wall time went back across
  midnight at a fall-back stays in the day that had already begun). Wall time never goes
  back by more than ``LOOKBACK_SECONDS``, so only that much history is scanned.
* day series: the ``length`` consecutive calendar dates ending with the day label of the
  ending instant.
* hour bucket: a maximal run of instants sharing (local date, local hour, UTC offset); its
  label is the local ISO-8601 time, with offset, of the run's first instant, found by
  stepping back a minute at a time and then a second at a time.
* hour series: the bucket of the ending instant and the ``length - 1`` buckets before it,
  found by stepping to ``first_instant - 1``.
* a session counts in the bucket whose label equals its own label, if that label is one of
  the series' labels.
* a naive ``ending_at`` is wall time in the zone, resolved with ``fold=0``.

Reusable by end-to-end tests: ``expected_series(starts_us, zone, unit, length, ending)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

LOOKBACK_SECONDS = 3 * 3600 + 60  # no post-1970 fall-back in our zones exceeds 3 hours
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_zone(zone: str | ZoneInfo) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


@lru_cache(maxsize=1 << 18)
def _local(zone: ZoneInfo, t: int) -> datetime:
    return (_EPOCH + timedelta(seconds=t)).astimezone(zone)


def _local_date(zone: ZoneInfo, t: int) -> date:
    return _local(zone, t).date()


# ----------------------------------------------------------------------------- days


def day_label_date(zone: ZoneInfo, t: int) -> date:
    """Running maximum of the local date over instants ``s <= t`` (within the lookback)."""
    best = _local_date(zone, t)
    # Every minute of the absolute grid, and the exact second ``t - k*60`` as well: a
    # transition is on a whole second, and a date held for under a minute would need a
    # finer step (no such transition exists in the tz database after 1970).
    minute = t - t % 60
    for s in range(minute, t - LOOKBACK_SECONDS, -60):
        d = _local_date(zone, s)
        if d > best:
            best = d
    return best


def day_label(zone: ZoneInfo, t: int) -> str:
    return day_label_date(zone, t).isoformat()


def day_labels(zone: ZoneInfo, ending: int, length: int) -> list[str]:
    last = day_label_date(zone, ending)
    return [(last - timedelta(days=back)).isoformat() for back in range(length - 1, -1, -1)]


# ---------------------------------------------------------------------------- hours


def _hour_key(zone: ZoneInfo, t: int) -> tuple[date, int, timedelta | None]:
    value = _local(zone, t)
    return value.date(), value.hour, value.utcoffset()


def hour_first_instant(zone: ZoneInfo, t: int) -> int:
    """First instant of the maximal run of instants with the same hour key as ``t``."""
    key = _hour_key(zone, t)
    first = t
    # Minute steps on the absolute minute grid, then single seconds inside the last minute.
    s = t - t % 60
    if _hour_key(zone, s) == key:
        while _hour_key(zone, s - 60) == key:
            s -= 60
        first = s
    while _hour_key(zone, first - 1) == key:
        first -= 1
    return first


def hour_label_of_first(zone: ZoneInfo, first: int) -> str:
    return _local(zone, first).isoformat()


def hour_label(zone: ZoneInfo, t: int) -> str:
    return hour_label_of_first(zone, hour_first_instant(zone, t))


def hour_buckets(zone: ZoneInfo, ending: int, length: int) -> list[tuple[str, int]]:
    """(label, first instant) of the ``length`` hour buckets ending with ``ending``'s, oldest first."""
    firsts = [hour_first_instant(zone, ending)]
    while len(firsts) < length:
        firsts.append(hour_first_instant(zone, firsts[-1] - 1))
    firsts.reverse()
    return [(hour_label_of_first(zone, f), f) for f in firsts]


def hour_labels(zone: ZoneInfo, ending: int, length: int) -> list[str]:
    return [label for label, _ in hour_buckets(zone, ending, length)]


# --------------------------------------------------------------------------- series


def resolve_ending_seconds(value: int | datetime, zone: ZoneInfo) -> int:
    """UTC epoch second of an ending: an int is epoch microseconds; an aware datetime is
    an instant; a naive one is wall time in ``zone`` read with fold=0. Floors fractions."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)  # fold=0
        return (value - _EPOCH) // timedelta(seconds=1)
    return value // 1_000_000


def labels(unit: str, zone: str | ZoneInfo, length: int, ending: int | datetime) -> list[str]:
    zone = as_zone(zone)
    end_s = resolve_ending_seconds(ending, zone)
    if unit == "day":
        return day_labels(zone, end_s, length)
    if unit == "hour":
        return hour_labels(zone, end_s, length)
    raise ValueError(unit)


def label_of(unit: str, zone: ZoneInfo, start_us: int) -> str:
    t = start_us // 1_000_000
    return day_label(zone, t) if unit == "day" else hour_label(zone, t)


def expected_series(
    starts_us: Iterable[int],
    zone: str | ZoneInfo,
    unit: str,
    length: int,
    ending: int | datetime,
) -> list[tuple[str, int]]:
    """The expected ``data`` of a series as (time label, session count), oldest first.

    ``starts_us``: session start instants in UTC epoch microseconds. ``ending``: epoch
    microseconds, an aware datetime, or a naive datetime (wall time in ``zone``).
    """
    zone = as_zone(zone)
    wanted = labels(unit, zone, length, ending)
    counts = dict.fromkeys(wanted, 0)
    for start_us in starts_us:
        label = label_of(unit, zone, start_us)
        if label in counts:
            counts[label] += 1
    return [(label, counts[label]) for label in wanted]


# ---------------------------------------------------------------------- test helpers


def offset_seconds(zone: ZoneInfo, t: int) -> int:
    offset = _local(zone, t).utcoffset()
    assert offset is not None
    return offset // timedelta(seconds=1)


@lru_cache(maxsize=256)
def transitions(zone: ZoneInfo, start: int, stop: int, step: int = 6 * 3600) -> tuple[int, ...]:
    """UTC epoch seconds of the zone's offset changes in [start, stop), found by scanning
    every ``step`` seconds and bisecting to the exact second (two changes closer together
    than ``step`` that cancel out are not seen)."""
    found = []
    previous_t, previous = start, offset_seconds(zone, start)
    for t in range(start + step, stop + step, step):
        current = offset_seconds(zone, t)
        if current != previous:
            low, high = previous_t, t  # offset(low) == previous != offset(high)
            while high - low > 1:
                middle = (low + high) // 2
                if offset_seconds(zone, middle) == previous:
                    low = middle
                else:
                    high = middle
            if high < stop:
                found.append(high)
        previous_t, previous = t, current
    return tuple(found)
