"""Erasing a person, and deleting raw rows past a workspace's retention: the steps both
engines share, over a write transaction (``SharedStatements``, ``?`` placeholders).

* ``erase``: a user (an external id) and every person linked to it (the anonymous ids
  whose events carry it as ``userId``) lose their attributes, recorded sessions, events
  and derived sessions, and every count they contributed: the session rollup at every
  level (each app and all apps, all users and each tracked segment the row counted
  toward, as stored with it), custom-event counts, uninstalls, and their active days
  with what those did to DAU, MAU and new users (``kpis.forget``, from ``person_days``,
  so exact even where retention has deleted the raw rows). The engine takes its locks
  first (``Prepare``): the app rows and the user (PostgreSQL), then the persons' days.
* ``expired_keys`` / ``delete_expired``: raw rows older than the horizon, found by a
  read that holds no write lock, deleted by key in a short transaction; no count changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import kpi
from . import kpis
from .base import Classifier, TrackedSegment
from .derived import ADD_COARSE, ADD_QUARTERS
from .rollup import ALL_APPS, ALL_USERS, COARSE_GRAINS, QUARTER, QUARTER_US, coarse_increments
from .sql import TRACKED_SEGMENTS, SharedStatements

# (tx, workspace id, app keys) -> None: lock what recording an app's events locks, and the
# user's attributes, before the persons are looked up (PostgreSQL; SQLite needs nothing).
LockApps = Callable[[SharedStatements, int, Sequence[int], str], None]

APP_KEYS = "SELECT app_key FROM apps WHERE workspace_id = ? ORDER BY app_key"
LINKED_PERSONS = "SELECT DISTINCT person FROM events WHERE workspace_id = ? AND user_id = ?"
USER_ROW = "SELECT attributes FROM users WHERE workspace_id = ? AND external_id = ?"
DELETE_USER = "DELETE FROM users WHERE workspace_id = ? AND external_id = ?"
DELETE_RECORDED = (
    "DELETE FROM sessions WHERE workspace_id = ? AND external_id = ?"
    " RETURNING app_key, started_at, segment_keys"
)
DELETE_DERIVED = (
    "DELETE FROM derived_sessions WHERE workspace_id = ? AND app_key = ? AND person = ?"
    " RETURNING started_at, segment_keys"
)
DELETE_EVENTS = (
    "DELETE FROM events WHERE workspace_id = ? AND person = ?"
    " RETURNING app_key, type, event, user_id, occurred_at, segment_keys"
)
NAME_KEYS = "SELECT name, name_key FROM event_names WHERE workspace_id = ?"
NAME_STILL_COUNTED = (
    "SELECT 1 FROM event_counts WHERE workspace_id = ? AND app_key = ? AND segment_key = ?"
    " AND name_key = ? AND events <> 0 LIMIT 1"
)
FORGET_NAME_COUNTS = "DELETE FROM event_counts WHERE workspace_id = ? AND name_key = ?"
FORGET_NAME = "DELETE FROM event_names WHERE workspace_id = ? AND name_key = ?"


class _Legacy:
    """Segment keys of rows recorded before migration 0007 (NULL): the user's tracked
    segments as matched now, from the attributes stored now (read before any is
    deleted). Erasure's one approximation."""

    def __init__(self, tx: SharedStatements, workspace_id: int, classify: Classifier | None) -> None:
        self.tx, self.workspace_id, self.classify = tx, workspace_id, classify
        self.tracked: list[TrackedSegment] | None = None
        self.known: dict[str, tuple[int, ...]] = {}

    def prime(self, users: Sequence[str]) -> None:
        if self.classify is None:
            return
        if self.tracked is None:
            rows = self.tx.execute(TRACKED_SEGMENTS, (self.workspace_id,)).fetchall()
            self.tracked = [TrackedSegment(int(k), str(f)) for k, f in rows]
        missing = sorted({u for u in users if u not in self.known})
        if not missing or not self.tracked:
            self.known.update({u: () for u in missing})
            return
        stored = {}
        for user in missing:
            row = self.tx.execute(USER_ROW, (self.workspace_id, user)).fetchone()
            if row is not None:
                stored[user] = str(row[0])
        for user, keys in self.classify(self.tracked, missing, stored).items():
            self.known[user] = tuple(keys)

    def keys(self, stored: Any, user: str | None) -> tuple[int, ...]:
        if stored is not None:
            return tuple(int(k) for k in str(stored).split())
        return self.known.get(user, ()) if user is not None else ()


def erase(
    tx: SharedStatements,
    workspace_id: int,
    external_id: str,
    classify: Classifier | None,
    lock_apps: LockApps,
    lock_days: kpis.LockDays,
) -> bool:
    """Erase ``external_id`` and the anonymous persons it links, with every count they
    contributed; whether anything of theirs was stored."""
    apps = [int(row[0]) for row in tx.execute(APP_KEYS, (workspace_id,)).fetchall()]
    lock_apps(tx, workspace_id, apps, external_id)
    linked = {str(row[0]) for row in tx.execute(LINKED_PERSONS, (workspace_id, external_id)).fetchall()}
    persons = sorted(linked | {external_id})
    zone = lock_days(tx, workspace_id, persons)  # (after this, no batch adds to their days)
    legacy = _Legacy(tx, workspace_id, classify)
    legacy.prime(persons)
    sessions: Counter[tuple[int, int, int]] = Counter()  # (app, segment, quarter) -> change
    found = False
    for person in persons:
        for app_key, started_at, keys in tx.execute(DELETE_RECORDED, (workspace_id, person)).fetchall():
            found = True
            _count(sessions, int(app_key), int(started_at), legacy.keys(keys, person))
        for app_key in apps:
            for started_at, keys in tx.execute(DELETE_DERIVED, (workspace_id, app_key, person)).fetchall():
                found = True
                _count(sessions, app_key, int(started_at), legacy.keys(keys, None))
    events = [row for person in persons
              for row in tx.execute(DELETE_EVENTS, (workspace_id, person)).fetchall()]
    found = found or bool(events)
    legacy.prime([str(row[3]) for row in events if row[3] is not None and row[5] is None])
    _forget_events(tx, workspace_id, zone, events, legacy)
    found = kpis.forget(tx, workspace_id, [ALL_APPS, *apps], persons) or found
    for person in persons:
        found = tx.execute(DELETE_USER, (workspace_id, person)).rowcount > 0 or found
    quarters = sorted((*key, n) for key, n in sessions.items() if n)
    if quarters:
        tx.executemany(ADD_QUARTERS, [(workspace_id, *row) for row in quarters])
        tx.executemany(ADD_COARSE, [(workspace_id, *row) for row in coarse_increments(quarters)])
    return found


def _count(deltas: Counter[tuple[int, int, int]], app_key: int, started_at: int,
           segments: Sequence[int]) -> None:
    quarter = started_at // QUARTER_US
    for segment_key in (ALL_USERS, *segments):
        deltas[(app_key, segment_key, quarter)] -= 1
        deltas[(ALL_APPS, segment_key, quarter)] -= 1


def _forget_events(
    tx: SharedStatements, workspace_id: int, zone: str, events: Sequence[Sequence[Any]], legacy: _Legacy
) -> None:
    """Take the deleted ``track`` events off the event counts and the uninstalls; forget
    an event name nobody's events count toward any more."""
    tracked = [row for row in events if row[1] == "track" and row[2] is not None]
    if not tracked:
        return
    names: Mapping[str, int] = {str(n): int(k) for n, k in tx.execute(NAME_KEYS, (workspace_id,)).fetchall()}
    counts: Counter[tuple[int, int, int, int, int]] = Counter()
    uninstalls: Counter[tuple[int, int, int]] = Counter()
    for app_key, _, name, user_id, occurred_at, keys in tracked:
        name_key = names.get(str(name))
        if name_key is None:
            continue
        quarter = int(occurred_at) // QUARTER_US
        for app in (int(app_key), ALL_APPS):
            for segment in (ALL_USERS, *legacy.keys(keys, user_id)):
                for grain in (QUARTER, *COARSE_GRAINS):
                    counts[(app, segment, name_key, grain, quarter - quarter % grain)] -= 1
        if name == kpi.UNINSTALL_EVENT:
            day = kpi.local_day(zone, int(occurred_at))
            uninstalls[(int(app_key), kpi.UNINSTALLS, day)] -= 1
            uninstalls[(ALL_APPS, kpi.UNINSTALLS, day)] -= 1
    tx.executemany(kpis.ADD_EVENTS, [(workspace_id, *key, n) for key, n in sorted(counts.items())])
    kpis.add_kpis(tx, workspace_id, [(*key, n) for key, n in sorted(uninstalls.items())])
    for name_key in sorted({key[2] for key in counts}):
        if tx.execute(NAME_STILL_COUNTED, (workspace_id, ALL_APPS, ALL_USERS, name_key)).fetchone() is None:
            tx.execute(FORGET_NAME_COUNTS, (workspace_id, name_key))
            tx.execute(FORGET_NAME, (workspace_id, name_key))


# ------------------------------------------------------------------- retention

EXPIRY_BATCH = 1000  # rows per deleting transaction: ingest waits for one such at most
# Each table is read in key order (per app where its key begins with the app), a page of
# expired keys at a time; a page is deleted by key, its age checked again.
EXPIRED_SESSIONS = (
    "SELECT session_id FROM sessions WHERE workspace_id = ? AND session_id > ?"
    " AND started_at < ? ORDER BY session_id LIMIT ?"
)
DELETE_SESSIONS = (
    "DELETE FROM sessions WHERE workspace_id = ? AND session_id IN ({keys}) AND started_at < ?"
)
EXPIRED_EVENTS = (
    "SELECT message_id FROM events WHERE workspace_id = ? AND app_key = ? AND message_id > ?"
    " AND occurred_at < ? ORDER BY message_id LIMIT ?"
)
DELETE_EVENTS_BY_KEY = (
    "DELETE FROM events WHERE workspace_id = ? AND app_key = ? AND message_id IN ({keys})"
    " AND occurred_at < ?"
)
EXPIRED_DERIVED = (
    "SELECT person, ended_at FROM derived_sessions WHERE workspace_id = ? AND app_key = ?"
    " AND (person, ended_at) > (?, CAST(? AS BIGINT)) AND ended_at < ?"
    " ORDER BY person, ended_at LIMIT ?"
)
DELETE_DERIVED_BY_KEY = (
    "DELETE FROM derived_sessions WHERE workspace_id = ? AND app_key = ?"
    " AND (person, ended_at) IN (VALUES {keys}) AND ended_at < ?"
)
RETENTION_WORKSPACES = (
    "SELECT workspace_id, retention_days FROM workspaces WHERE retention_days IS NOT NULL"
    " ORDER BY workspace_id"
)
SET_RETENTION = "UPDATE workspaces SET retention_days = ? WHERE workspace_id = ?"
