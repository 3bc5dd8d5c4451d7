"""The rollup's levels (store/rollup.py): the read plan against brute force, the write
increments, and migration 0003's backfill of the hour and day levels on both engines."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally.store import Store
from sessiontally.store.base import NewSession
from sessiontally.store.postgres import PostgresStore
from sessiontally.store.rollup import (
    DAY,
    HOUR,
    QUARTER,
    QUARTER_US,
    coarse_increments,
    cover,
    plan_series_read,
    rollup_increments,
)
from sessiontally.store.sqlite import SqliteStore

quarters = st.integers(min_value=0, max_value=4_000_000)


@given(quarters, st.integers(min_value=0, max_value=20_000))
def test_cover_tiles_the_range_exactly_with_aligned_pieces(lo: int, width: int) -> None:
    hi = lo + width
    pieces = cover(lo, hi)
    position = lo
    for grain, first, end in pieces:
        assert grain in (DAY, HOUR, QUARTER)
        assert first == position and first < end
        assert first % grain == 0 and end % grain == 0
        position = end
    assert position == hi


@given(quarters, st.integers(min_value=1, max_value=20_000))
def test_cover_uses_a_coarse_row_wherever_one_fits(lo: int, width: int) -> None:
    """Minimal: no quarter piece holds a whole aligned hour, no hour piece a whole day."""
    for grain, first, end in cover(lo, lo + width):
        finer_than = {QUARTER: HOUR, HOUR: DAY}.get(grain)
        if finer_than is None:
            continue
        whole = -(-first // finer_than) * finer_than + finer_than <= end
        assert not whole, (grain, first, end)


def test_cover_of_typical_buckets() -> None:
    day = 96
    assert cover(10 * day, 11 * day) == [(DAY, 10 * day, 11 * day)]  # a UTC day: one row
    ny = 10 * day + 20  # 05:00 UTC (New York midnight, winter)
    assert cover(ny, ny + day) == [(HOUR, ny, ny + day)]  # 24 hour rows
    kolkata = 10 * day + 74  # 18:30 UTC
    assert cover(kolkata, kolkata + day) == [
        (QUARTER, kolkata, kolkata + 2), (HOUR, kolkata + 2, kolkata + day - 2),
        (QUARTER, kolkata + day - 2, kolkata + day),
    ]  # 2 + 23 + 2 rows instead of 96
    assert cover(5, 5) == []


def _model_sum(rows: Counter[int], lo: int, hi: int) -> int:
    return sum(n for q, n in rows.items() if lo <= q < hi)


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=3000), max_size=300),
       st.lists(st.integers(min_value=0, max_value=3100), min_size=2, max_size=12))
def test_plan_read_from_levels_equals_brute_force(started: list[int], edges: list[int]) -> None:
    """Counts read through the plan from the three levels built by the increments equal
    the direct count over quarters."""
    boundaries = sorted(edges)
    fresh = [NewSession(str(i), "u", 1, q * QUARTER_US + 7, None) for i, q in enumerate(started)]
    quarter_rows = rollup_increments(fresh)
    levels: dict[int, Counter[int]] = {QUARTER: Counter(), HOUR: Counter(), DAY: Counter()}
    for app, seg, quarter, n in quarter_rows:
        if app == 0 and seg == 0:
            levels[QUARTER][quarter] += n
    for app, seg, grain, first, n in coarse_increments(quarter_rows):
        if app == 0 and seg == 0:
            assert first % grain == 0
            levels[grain][first] += n
    totals = [0] * (len(boundaries) - 1)
    for i, grain, first, end in plan_series_read(tuple(boundaries)):
        totals[i] += _model_sum(levels[grain], first, end)
    expected = [_model_sum(Counter(started), boundaries[i], boundaries[i + 1])
                for i in range(len(boundaries) - 1)]
    assert totals == expected


def _increments_oracle(fresh: list[NewSession], segments: list[tuple[int, ...]] | None,
                       ) -> list[tuple[int, int, int, int]]:
    """Brute force: each session once in its app and once in "all apps", for "all users"
    and for each of its segments."""
    counts: Counter[tuple[int, int, int]] = Counter()
    for i, s in enumerate(fresh):
        for seg in (0, *(segments[i] if segments else ())):
            for app in (s.app_key, 0):
                counts[(app, seg, s.started_at // QUARTER_US)] += 1
    return sorted((*key, n) for key, n in counts.items())


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 20),  # few pairs: many repeats
                          st.lists(st.integers(1, 3), max_size=2, unique=True).map(tuple)),
                max_size=200),
       st.booleans())
def test_rollup_increments_equal_brute_force(
    drawn: list[tuple[int, int, tuple[int, ...]]], with_segments: bool
) -> None:
    """Both paths (no tracked segment, and segments per session) against the oracle."""
    fresh = [NewSession(f"s{i}", "u", app, q * QUARTER_US + i, None) for i, (app, q, _) in enumerate(drawn)]
    segments = [seg for _, _, seg in drawn] if with_segments else None
    assert rollup_increments(fresh, segments) == _increments_oracle(fresh, segments)
    if not with_segments:  # no segment per session counts like no tracked segment
        assert rollup_increments(fresh, [()] * len(fresh)) == rollup_increments(fresh)


def test_coarse_increments_are_sorted_and_keep_every_session() -> None:
    quarter_rows = [(0, 0, 5, 2), (0, 0, 7, 1), (0, 0, 100, 4), (1, 3, 5, 2)]
    rows = coarse_increments(quarter_rows)
    assert rows == sorted(rows)
    assert (0, 0, HOUR, 4, 3) in rows and (0, 0, HOUR, 100, 4) in rows
    assert (0, 0, DAY, 0, 3) in rows and (0, 0, DAY, 96, 4) in rows
    for grain in (HOUR, DAY):
        assert sum(n for *_, g, _, n in rows if g == grain) == 9


def test_store_reads_match_brute_force_at_every_level(store: Store) -> None:
    """Through a real store: random sessions over a month, random buckets (aligned to
    days, hours, half hours and quarters), counts equal the raw rows' counts."""
    rng = random.Random(5)
    ws = store.create_workspace("rollup", "UTC", 1000)
    app = store.create_app(ws.workspace_id, "00000000-0000-4000-8000-000000000001", "a", None)
    base = 20_000 * DAY
    started = [base + rng.randrange(30 * DAY) for _ in range(3000)]
    sessions = [NewSession(f"s{i}", "u", app.app_key, q * QUARTER_US + rng.randrange(QUARTER_US), None)
                for i, q in enumerate(started)]
    for begin in range(0, len(sessions), 500):
        store.record_sessions(ws.workspace_id, sessions[begin:begin + 500])
    assert store.rollup_total(ws.workspace_id, 0, 0) == len(sessions)
    for step in (DAY, HOUR, 2, 1):
        offset = rng.randrange(DAY // step) * step
        boundaries = [base - DAY + offset + k * rng.choice((DAY, DAY - HOUR, DAY + HOUR))
                      for k in range(33)]
        boundaries = sorted(set(boundaries))
        counted = store.count_by_quarters(ws.workspace_id, app.app_key, 0, boundaries)
        expected = [sum(1 for q in started if lo <= q < hi) for lo, hi in itertools.pairwise(boundaries)]
        assert counted == expected, step


def test_an_empty_bucket_reads_zero(store: Store) -> None:
    ws = store.create_workspace("rollup", "UTC", 1000)
    assert store.count_by_quarters(ws.workspace_id, 0, 0, [40, 40, 44]) == [0, 0]


def _run_sql(store: Store, statements: list[str], params: tuple[object, ...] = ()) -> None:
    if isinstance(store, SqliteStore):
        with store.connections.write() as conn:
            for sql in statements:
                conn.execute(sql, params if "?" in sql else ())
    else:
        assert isinstance(store, PostgresStore)
        with store._tx() as conn:
            for sql in statements:
                conn.execute(sql.replace("?", "%s"), params if "?" in sql else ())


def test_migration_0003_backfills_hours_and_days_from_quarters(store: Store) -> None:
    """A database that was at version 2 with quarter rows gets the same totals at every level."""
    ws = store.create_workspace("old", "UTC", 1000)
    app = store.create_app(ws.workspace_id, "00000000-0000-4000-8000-000000000001", "a", None)
    sessions = [NewSession(f"s{i}", "u", app.app_key, (19_000 * DAY + i * 37) * QUARTER_US, None)
                for i in range(400)]
    store.record_sessions(ws.workspace_id, sessions)
    # Back to the schema of version 2, with the quarter rows kept.
    _run_sql(store, ["DROP TABLE session_counts_coarse", "DELETE FROM schema_migrations WHERE version = 3"])
    assert store.migrate() == 3
    for app_key in (0, app.app_key):
        assert store.rollup_total(ws.workspace_id, app_key, 0) == 400
    boundaries = [19_000 * DAY + k * DAY for k in range(0, 160)]
    expected = [sum(1 for i in range(400) if lo <= 19_000 * DAY + i * 37 < hi)
                for lo, hi in itertools.pairwise(boundaries)]
    assert store.count_by_quarters(ws.workspace_id, 0, 0, boundaries) == expected


def test_a_disagreeing_level_fails_the_integrity_check(store: Store) -> None:
    ws = store.create_workspace("broken", "UTC", 1000)
    app = store.create_app(ws.workspace_id, "00000000-0000-4000-8000-000000000001", "a", None)
    session = NewSession("s", "u", app.app_key, 19_000 * DAY * QUARTER_US, None)
    store.record_sessions(ws.workspace_id, [session])
    assert store.rollup_total(ws.workspace_id, 0, 0) == 1
    _run_sql(store, ["UPDATE session_counts_coarse SET sessions = 2"
                     " WHERE workspace_id = ? AND app_key = 0 AND grain = 96"],
             (ws.workspace_id,))
    with pytest.raises(RuntimeError, match="rollup levels disagree"):
        store.rollup_total(ws.workspace_id, 0, 0)
