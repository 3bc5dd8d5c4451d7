"""Zone-aware time buckets for a series: boundaries as UTC instants, and labels. Pure.

A ``day`` bucket is one local calendar day, from its first instant to the next day's
first instant (23, 24 or 25 hours at DST changes; a day whose midnight does not exist
starts at its first existing instant). An ``hour`` bucket is a maximal run of instants
that share the local date, the local hour and the UTC offset: a repeated hour at a
fall-back is two buckets, a skipped hour does not exist, and an hour cut by a 30-minute
change (Australia/Lord_Howe) is a short bucket labelled by its first instant.

Every boundary is an integer number of seconds since the epoch (tzdata transitions fall
on whole seconds). Results are memoised because dashboards ask for the same windows again
and again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UNITS = ("day", "hour")
MAX_LENGTH = 100

_UTC = UTC


class Bucket(NamedTuple):
    """One point of a series: ``[start, end)`` in UTC epoch seconds, and its label. (A
    named tuple: a series is a memo key, and tuples hash in C.)"""

    label: str
    start: int
    end: int


class UnknownZoneError(ValueError):
    """The name is not an IANA time zone known to this machine's tz database."""


@lru_cache(maxsize=1024)
def load_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; raises UnknownZoneError for anything else."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise UnknownZoneError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZoneError(name) from None


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def suggest_zone(name: str) -> str | None:
    """The zone whose name differs from ``name`` only in case (``europe/berlin``:
    ``Europe/Berlin``), to suggest in a refusal; None when there is none."""
    found = _zones_by_folded_name().get(name.casefold())
    return found if found != name else None


def unknown_zone_message(prefix: str, name: str) -> str:
    """``prefix`` (what the refusal says), with the zone meant when only its case is off."""
    meant = suggest_zone(name)
    return f"{prefix}; did you mean {meant!r}?" if meant else prefix


def offset_at(zone: ZoneInfo, instant: int) -> int:
    """The zone's UTC offset in seconds at a UTC epoch second."""
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _first_with_offset(zone: ZoneInfo, low: int, high: int, wanted: int) -> int:
    """Smallest t in (low, high] with offset ``wanted``, given offset(low) != wanted == offset(high)."""
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at(zone, middle) == wanted:
            high = middle
        else:
            low = middle
    return high


def _first_without_offset(zone: ZoneInfo, low: int, high: int, current: int) -> int:
    """Smallest t in (low, high] whose offset is not ``current``, given offset(low) == current."""
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at(zone, middle) == current:
            low = middle
        else:
            high = middle
    return high


# ---------------------------------------------------------------------------- hours


def hour_bucket_at(zone: ZoneInfo, instant: int) -> Bucket:
    """The hour bucket that contains ``instant`` (UTC epoch seconds)."""
    offset = offset_at(zone, instant)
    top = instant - (instant + offset) % 3600  # the local top of the hour, at this offset
    start = top if offset_at(zone, top) == offset else _first_with_offset(zone, top, instant, offset)
    following_top = start + 3600 - (start + offset) % 3600
    end = (
        following_top
        if offset_at(zone, following_top) == offset
        else _first_without_offset(zone, start, following_top, offset)
    )
    return Bucket(_hour_label(start, offset), start, end)


def _hour_label(start: int, offset: int) -> str:
    local = datetime.fromtimestamp(start, timezone(timedelta(seconds=offset)))
    return local.isoformat()


@lru_cache(maxsize=4096)
def _hour_series(zone: ZoneInfo, last_start: int, length: int) -> tuple[Bucket, ...]:
    buckets = [hour_bucket_at(zone, last_start)]
    while len(buckets) < length:
        buckets.append(hour_bucket_at(zone, buckets[-1].start - 1))
    buckets.reverse()
    return tuple(buckets)


# ----------------------------------------------------------------------------- days


@lru_cache(maxsize=65536)
def day_start(zone: ZoneInfo, day: date) -> int:
    """First instant (UTC epoch seconds) of local calendar day ``day``.

    That is the earliest instant whose local wall time is at or after the day's midnight:
    midnight itself if it exists (the earlier one if it happens twice), otherwise the
    transition that skips over it.
    """
    midnight = datetime.combine(day, time(0))
    candidates = []
    for fold in (0, 1):
        instant = int(midnight.replace(tzinfo=zone, fold=fold).timestamp())
        candidates.append(instant)
    valid = [c for c in candidates if datetime.fromtimestamp(c, zone).replace(tzinfo=None) == midnight]
    if valid:
        return min(valid)
    # Midnight is in a gap: fold=0 read it with the old offset (later instant), fold=1 with
    # the new one (earlier instant); the transition lies between them.
    early, late = min(candidates), max(candidates)
    return _first_without_offset(zone, early, late, offset_at(zone, early))


def day_of(zone: ZoneInfo, instant: int) -> date:
    """The local calendar day whose bucket contains ``instant``."""
    day = datetime.fromtimestamp(instant, zone).date()
    while day_start(zone, day) > instant:  # only if wall time went back across midnight
        day -= timedelta(days=1)
    while day < date.max and day_start(zone, day + timedelta(days=1)) <= instant:
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=4096)
def _day_series(zone: ZoneInfo, last_day: date, length: int) -> tuple[Bucket, ...]:
    days = [last_day - timedelta(days=back) for back in range(length - 1, -1, -1)]
    starts = [day_start(zone, d) for d in days] + [day_start(zone, last_day + timedelta(days=1))]
    return tuple(
        Bucket(d.isoformat(), starts[i], starts[i + 1]) for i, d in enumerate(days)
    )


# --------------------------------------------------------------------------- series


def series(unit: str, length: int, ending: int, zone: ZoneInfo) -> tuple[Bucket, ...]:
    """``length`` buckets, oldest first; the last one contains the instant ``ending``."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}")
    if not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be 1..{MAX_LENGTH}")
    if unit == "day":
        return _day_series(zone, day_of(zone, ending), length)
    return _hour_series(zone, hour_bucket_at(zone, ending).start, length)


def resolve_ending(value: datetime, zone: ZoneInfo) -> int:
    """UTC epoch second of ``ending_at``: aware values are instants; naive ones are wall
    time in ``zone`` (a wall time that does not exist or happens twice is read with
    fold=0, i.e. with the offset in force before the change)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    delta = value - datetime(1970, 1, 1, tzinfo=_UTC)
    return delta.days * 86_400 + delta.seconds  # floor: a fraction stays in its second

