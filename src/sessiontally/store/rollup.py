"""What a batch of new sessions adds to the rollup. Pure; shared by every engine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .base import NewSession

QUARTER_SECONDS = 900
QUARTER_US = QUARTER_SECONDS * 1_000_000
ALL_APPS = 0
ALL_USERS = 0


def rollup_increments(
    fresh: Sequence[NewSession], segments: Sequence[Sequence[int]] | None = None
) -> list[tuple[int, int, int, int]]:
    """``(app_key, segment_key, quarter, sessions)`` rows, sorted (a fixed lock order, so
    concurrent writers never deadlock on each other's rollup rows).

    Each session counts in its app and in "all apps", for "all users" and for every
    segment key in ``segments[i]`` (the tracked segments its user matched).
    """
    counts: Counter[tuple[int, int, int]] = Counter()
    for i, session in enumerate(fresh):
        quarter = session.started_at // QUARTER_US
        for segment_key in (ALL_USERS, *(segments[i] if segments else ())):
            counts[(session.app_key, segment_key, quarter)] += 1
            counts[(ALL_APPS, segment_key, quarter)] += 1
    return sorted((app, seg, quarter, n) for (app, seg, quarter), n in counts.items())
