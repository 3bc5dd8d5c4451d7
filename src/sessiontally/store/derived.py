"""Derived sessions in the store: the steps of recording a batch of tracking-API messages
that are the same on both engines, over a write transaction (``SharedStatements``,
``?`` placeholders).

* ``take_messages``: the app's hourly message limit, one counter row per app and UTC
  hour, raised in the batch's own transaction (so a batch rolled back gives its count
  back). The engine serialises an app's batches before this step (SQLite's one writer,
  PostgreSQL's lock on the app's row), so two batches never derive sessions of the same
  person at once.
* ``derive``: for each person of the batch, the stored sessions its new activity can
  touch (one key range), the changes ``sessionize.resolve`` makes of them, and the
  rollup's increments: -1 where a session no longer starts, +1 where one now does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from ..errors import RateLimited
from ..sessionize import Activity, Interval, resolve, window
from ..tracking import ACTIVITY_TYPES
from . import kpis
from .base import App, Classifier, NewEvent, TrackedSegment
from .rollup import ALL_APPS, ALL_USERS, QUARTER_US, coarse_increments
from .sql import TRACKED_SEGMENTS, SharedStatements, one_row

HOUR_US = 3_600_000_000
OVER_MESSAGE_LIMIT = "Over the app's hourly message limit"

TAKE_MESSAGES = (
    "INSERT INTO app_message_counts (workspace_id, app_key, hour, messages) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, app_key, hour)"
    " DO UPDATE SET messages = app_message_counts.messages + excluded.messages"
    " RETURNING messages"
)
NEAR_CHUNK = 300  # persons per lookup (3 parameters each: well under SQLite's 32766)
DELETE_SESSION = (
    "DELETE FROM derived_sessions WHERE workspace_id = ? AND app_key = ? AND person = ?"
    " AND ended_at = ?"
)
INSERT_SESSION = (
    "INSERT INTO derived_sessions (workspace_id, app_key, person, ended_at, started_at,"
    " segment_keys) VALUES (?, ?, ?, ?, ?, ?)"
)
USER_ATTRIBUTES = "SELECT attributes FROM users WHERE workspace_id = ? AND external_id = ?"
ADD_QUARTERS = (
    "INSERT INTO session_counts (workspace_id, app_key, segment_key, quarter, sessions)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, app_key, segment_key, quarter)"
    " DO UPDATE SET sessions = session_counts.sessions + excluded.sessions"
)
ADD_COARSE = (
    "INSERT INTO session_counts_coarse (workspace_id, app_key, segment_key, grain,"
    " first_quarter, sessions) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, app_key, segment_key, grain, first_quarter)"
    " DO UPDATE SET sessions = session_counts_coarse.sessions + excluded.sessions"
)



def take_messages(tx: SharedStatements, workspace_id: int, app: App, count: int, now_us: int) -> None:
    """Count ``count`` messages against the app's limit for this UTC hour, or raise
    RateLimited (the caller's transaction then rolls the count back)."""
    hour = now_us // HOUR_US
    (taken,) = one_row(tx.execute(TAKE_MESSAGES, (workspace_id, app.app_key, hour, count)))
    if int(taken) > app.event_limit:
        raise RateLimited(OVER_MESSAGE_LIMIT, (hour + 1) * 3600)


def derive(
    tx: SharedStatements,
    workspace_id: int,
    app: App,
    fresh: Sequence[NewEvent],
    classify: Classifier | None,
    lock_days: kpis.LockDays,
) -> None:
    """Update the derived sessions, the rollup and the daily KPIs for the newly recorded
    ``fresh``; count its custom events."""
    by_person: dict[str, list[Activity]] = {}
    for event in fresh:
        if event.type in ACTIVITY_TYPES:
            by_person.setdefault(event.person, []).append(Activity(event.occurred_at, event.user_id))
    if not by_person:
        return  # (custom events are activity too: none here means no track either)
    zone = lock_days(tx, workspace_id, sorted(by_person))
    tracked_users = sorted({e.user_id for e in fresh if e.type == "track" and e.user_id is not None})
    kpis.count_events(tx, workspace_id, zone, app.app_key, fresh,
                      memberships(tx, workspace_id, tracked_users, classify))
    timeout_us = app.session_timeout_s * 1_000_000
    key = (workspace_id, app.app_key)
    deltas: Counter[tuple[int, int, int]] = Counter()  # (app, segment, quarter) -> sessions
    removals: list[tuple[object, ...]] = []
    starts: list[tuple[int, str, int, int]] = []  # (app, person, started_at, ±1) for the KPIs
    inserts: list[tuple[str, int, int, tuple[int, ...] | None, str | None]] = []
    persons = sorted(by_person)  # (a fixed order: concurrent writers lock alike)
    windows = {person: window(by_person[person], timeout_us) for person in persons}
    stored = _near_sessions(tx, workspace_id, app.app_key, windows)
    for person in persons:
        changes = resolve(stored.get(person, ()), by_person[person], timeout_us)
        for gone in changes.removed:
            removals.append((*key, person, gone.ended_at))
            starts.append((app.app_key, person, gone.started_at, -1))
            _count(deltas, app.app_key, gone.started_at, gone.segments, -1)
        for new in changes.added:
            inserts.append((person, new.started_at, new.ended_at, new.segments, new.user_id))
    new_users = sorted({user for _, _, _, kept, user in inserts if kept is None and user is not None})
    matched = memberships(tx, workspace_id, new_users, classify)
    rows = []
    for (person, start, end, kept, user_id) in inserts:
        segments: Sequence[int] = kept if kept is not None else (
            matched.get(user_id, ()) if user_id is not None else ())
        rows.append((*key, person, end, start, " ".join(map(str, segments))))
        starts.append((app.app_key, person, start, +1))
        _count(deltas, app.app_key, start, segments, +1)
    if removals:
        tx.executemany(DELETE_SESSION, removals)
    if rows:
        tx.executemany(INSERT_SESSION, rows)
    kpis.upkeep(tx, workspace_id, zone, starts)
    quarters = sorted((*k, n) for k, n in deltas.items() if n)
    if quarters:
        tx.executemany(ADD_QUARTERS, [(workspace_id, *row) for row in quarters])
        coarse = [row for row in coarse_increments(quarters) if row[-1]]
        tx.executemany(ADD_COARSE, [(workspace_id, *row) for row in coarse])


def _near_sessions(
    tx: SharedStatements, workspace_id: int, app_key: int, windows: dict[str, tuple[int, int]]
) -> dict[str, list[Interval]]:
    """Each person's stored sessions within its window, in order, in one statement per
    NEAR_CHUNK persons (a join of the windows with the key range of each person)."""
    found: dict[str, list[Interval]] = {}
    items = list(windows.items())
    for begin in range(0, len(items), NEAR_CHUNK):
        chunk = items[begin:begin + NEAR_CHUNK]
        params: list[object] = []
        for person, (lo, hi) in chunk:
            params += (person, lo, hi)
        rows = tx.execute(_near_sql(len(chunk)), (*params, workspace_id, app_key)).fetchall()
        for person, start, end, segment_keys in rows:
            found.setdefault(person, []).append(Interval(int(start), int(end), _keys(segment_keys)))
    for intervals in found.values():
        intervals.sort()
    return found


@lru_cache(maxsize=64)
def _near_sql(persons: int) -> str:
    values = ", ".join(["(?, ?, ?)"] * persons)
    # (CAST: PostgreSQL types a VALUES list's parameters as text otherwise.)
    return (
        f"WITH near(person, lo, hi) AS (VALUES {values})"
        " SELECT d.person, d.started_at, d.ended_at, d.segment_keys"
        " FROM near JOIN derived_sessions d ON d.person = near.person"
        " AND d.ended_at >= CAST(near.lo AS BIGINT) AND d.started_at <= CAST(near.hi AS BIGINT)"
        " WHERE d.workspace_id = ? AND d.app_key = ?"
    )


def _keys(text: str) -> tuple[int, ...]:
    return tuple(int(k) for k in str(text).split())


def _count(
    deltas: Counter[tuple[int, int, int]], app_key: int, started_at: int,
    segments: Sequence[int], sign: int,
) -> None:
    quarter = started_at // QUARTER_US
    for segment_key in (ALL_USERS, *segments):
        deltas[(app_key, segment_key, quarter)] += sign
        deltas[(ALL_APPS, segment_key, quarter)] += sign


def memberships(
    tx: SharedStatements, workspace_id: int, users: Sequence[str], classify: Classifier | None
) -> dict[str, Sequence[int]]:
    """The tracked segments each of ``users`` matches now (read inside the recording
    transaction)."""
    if classify is None or not users:
        return {}
    tracked = [TrackedSegment(k, f) for k, f in tx.execute(TRACKED_SEGMENTS, (workspace_id,)).fetchall()]
    if not tracked:
        return {}
    stored = {}
    for user in users:
        row = tx.execute(USER_ATTRIBUTES, (workspace_id, user)).fetchone()
        if row is not None:
            stored[user] = str(row[0])
    return dict(classify(tracked, users, stored))
