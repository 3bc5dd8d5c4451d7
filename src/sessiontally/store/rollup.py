"""The rollup's levels: what a batch adds to them, and which rows a range reads. Pure;
shared by every engine.

Sessions are counted per UTC quarter-hour (``session_counts``) and again per UTC hour and
per UTC day (``session_counts_coarse``, keyed by ``grain``). A range of quarters is read
as few rows as possible: whole days where it covers them, whole hours next to those, and
quarters only at ragged ends (zones at +05:30 or +05:45). A 100-day series in a
whole-hour zone reads at most 2,400 hour rows instead of 9,600 quarters; in UTC, 100 day
rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from .base import NewSession

QUARTER_SECONDS = 900
QUARTER_US = QUARTER_SECONDS * 1_000_000
ALL_APPS = 0
ALL_USERS = 0

QUARTER = 1  # grains, in quarters
HOUR = 4
DAY = 96
COARSE_GRAINS = (HOUR, DAY)


def rollup_increments(
    fresh: Sequence[NewSession], segments: Sequence[Sequence[int]] | None = None
) -> list[tuple[int, int, int, int]]:
    """``(app_key, segment_key, quarter, sessions)`` rows, sorted (a fixed lock order, so
    concurrent writers never deadlock on each other's rollup rows).

    Each session counts in its app and in "all apps", for "all users" and for every
    segment key in ``segments[i]`` (the tracked segments its user matched).
    """
    counts: Counter[tuple[int, int, int]] = Counter()
    if not segments:
        # No tracked segment (the common case): count (app, quarter) pairs in one C loop,
        # then add each pair to its app and to "all apps".
        per_app = Counter(zip([s.app_key for s in fresh],
                              [s.started_at // QUARTER_US for s in fresh], strict=True))
        for (app_key, quarter), n in per_app.items():
            counts[(app_key, ALL_USERS, quarter)] += n
            counts[(ALL_APPS, ALL_USERS, quarter)] += n
    else:
        for i, session in enumerate(fresh):
            quarter = session.started_at // QUARTER_US
            for segment_key in (ALL_USERS, *segments[i]):
                counts[(session.app_key, segment_key, quarter)] += 1
                counts[(ALL_APPS, segment_key, quarter)] += 1
    return sorted((app, seg, quarter, n) for (app, seg, quarter), n in counts.items())


def coarse_increments(
    quarter_rows: Sequence[tuple[int, int, int, int]],
) -> list[tuple[int, int, int, int, int]]:
    """``(app_key, segment_key, grain, first_quarter, sessions)`` rows of the hour and day
    levels for the same increments, sorted (written after the quarter rows: one lock
    order for every writer)."""
    counts: Counter[tuple[int, int, int, int]] = Counter()
    for app, seg, quarter, n in quarter_rows:
        for grain in COARSE_GRAINS:
            counts[(app, seg, grain, quarter - quarter % grain)] += n
    return sorted((*key, n) for key, n in counts.items())


def cover(lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``[lo, hi)`` (quarters) as ``(grain, first, end)`` pieces, coarsest first where
    they fit: every piece's bounds are multiples of its grain, and the pieces are disjoint
    and in order. A piece of grain g covers ``(end - first) / g`` rows of its level."""
    pieces: list[tuple[int, int, int]] = []
    if lo >= hi:
        return pieces
    day_first, day_end = -(-lo // DAY) * DAY, hi // DAY * DAY
    if day_first < day_end:  # whole days in the middle, the ragged ends on each side
        _cover_hours(lo, day_first, pieces)
        pieces.append((DAY, day_first, day_end))
        _cover_hours(day_end, hi, pieces)
    else:
        _cover_hours(lo, hi, pieces)
    return pieces


def _cover_hours(lo: int, hi: int, pieces: list[tuple[int, int, int]]) -> None:
    if lo >= hi:
        return
    hour_first, hour_end = -(-lo // HOUR) * HOUR, hi // HOUR * HOUR
    if hour_first >= hour_end:
        pieces.append((QUARTER, lo, hi))
        return
    if lo < hour_first:
        pieces.append((QUARTER, lo, hour_first))
    pieces.append((HOUR, hour_first, hour_end))
    if hour_end < hi:
        pieces.append((QUARTER, hour_end, hi))


@lru_cache(maxsize=1024)
def plan_series_read(boundaries: tuple[int, ...]) -> tuple[tuple[int, int, int, int], ...]:
    """``(bucket, grain, first, end)`` for every piece of every bucket
    ``[boundaries[i], boundaries[i+1])``. Memoised: dashboards ask for the same windows."""
    return tuple(
        (i, grain, first, end)
        for i in range(len(boundaries) - 1)
        for grain, first, end in cover(boundaries[i], boundaries[i + 1])
    )
