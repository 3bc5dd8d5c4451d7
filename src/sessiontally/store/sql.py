"""The statements both engines share, written once: the reads (``SqlReads``), every
write statement whose text is the same on SQLite and PostgreSQL, and the writes whose
steps are the same too (``SqlWrites``: apps, keys, segment tracking, members).

Statements use ``?`` placeholders, SQLite's style; the PostgreSQL engine turns them into
psycopg's ``%s`` in one function (``postgres._execute``). A boolean column is compared
with ``TRUE`` (SQLite reads it as 1), so that one text serves both engines.

What stays in the engines, and why: their transactions and locking (SQLite's
``BEGIN IMMEDIATE`` locks the whole database; PostgreSQL takes advisory locks on the
workspace and on users); inserting many rows (one ``executemany``
on SQLite, one statement over ``unnest`` arrays on PostgreSQL, a round trip saved per
row); which rows went in (SQLite's change count per row, PostgreSQL's ``RETURNING``);
the series read (each engine's cheapest plan); and the column types of
``schema_migrations``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import orjson

from ..errors import AppGone
from ..keys import generate_write_key
from .base import (
    MAX_TRACKED_SEGMENTS,
    ApiKey,
    App,
    KeyInfo,
    Member,
    NewSession,
    Segment,
    TrackedFilterChange,
    TrackingLimitError,
    Workspace,
)
from .rollup import ALL_APPS, DAY, HOUR, plan_series_read

APP_COLUMNS = (
    "workspace_id, app_key, app_id, name, platform, write_key, session_timeout_s,"
    " allowed_origins, event_limit"
)
SEGMENT_COLUMNS = (
    "workspace_id, segment_key, segment_id, name, description, tags, filter,"
    " analytics_enabled, tracking_since, created_at, updated_at"
)
MEMBER_COLUMNS = "workspace_id, member_id, email, password_hash, created_at, last_sign_in_at"

# ---------------------------------------------------------------------------- writes

MIGRATED_VERSIONS = "SELECT version FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"

# Keys are never reused: a new app's or segment's key is one more than the largest of
# its workspace's live and retired keys (``retired_keys``, written by delete_app and
# delete_segment), so that nothing an old key left behind is taken for the new one's.
NEXT_APP_KEY = (
    "SELECT COALESCE(MAX(k), 0) + 1 FROM (SELECT app_key AS k FROM apps WHERE workspace_id = ?"
    " UNION ALL SELECT retired_key FROM retired_keys WHERE workspace_id = ? AND kind = 'app')"
    " AS keys"
)
RETIRE_KEY = (
    "INSERT INTO retired_keys (workspace_id, kind, retired_key) VALUES (?, ?, ?)"
    " ON CONFLICT (workspace_id, kind, retired_key) DO NOTHING"
)
INSERT_APP = (
    "INSERT INTO apps (workspace_id, app_key, app_id, name, platform, created_at, write_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SET_WRITE_KEY = "UPDATE apps SET write_key = ? WHERE workspace_id = ? AND app_key = ?"
ALL_WORKSPACES = "SELECT workspace_id FROM workspaces ORDER BY workspace_id"
APPS_WITHOUT_WRITE_KEY = "SELECT app_key FROM apps WHERE workspace_id = ? AND write_key IS NULL"
UPDATE_APP = (
    "UPDATE apps SET session_timeout_s = COALESCE(?, session_timeout_s),"
    " allowed_origins = COALESCE(?, allowed_origins), event_limit = COALESCE(?, event_limit)"
    " WHERE workspace_id = ? AND app_key = ?"
)

NEXT_KEY_ID = "SELECT COALESCE(MAX(key_id), 0) + 1 FROM api_keys WHERE workspace_id = ?"
INSERT_KEY = (
    "INSERT INTO api_keys (workspace_id, key_id, name, key_hash, key_prefix,"
    " permissions, allowed_ips, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
REVOKE_KEY = (
    "UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ?"
    " AND (key_hash = ? OR key_id = ?) AND revoked_at IS NULL"
)
TOUCH_KEY = "UPDATE api_keys SET last_seen_at = ? WHERE workspace_id = ? AND key_id = ?"

# The tracked segments a new session or track event counted toward (erasure takes it off
# exactly those): written after it is classified, only when it matched some. Inserted
# rows have '' (none); NULL marks rows recorded before migration 0007.
SET_SESSION_SEGMENTS = "UPDATE sessions SET segment_keys = ? WHERE workspace_id = ? AND session_id = ?"
SET_EVENT_SEGMENTS = (
    "UPDATE events SET segment_keys = ? WHERE workspace_id = ? AND app_key = ? AND message_id = ?"
)

COUNT_TRACKED = "SELECT COUNT(*) FROM segments WHERE workspace_id = ? AND analytics_enabled = TRUE"
# What recording needs of the tracked segments, read inside its transaction.
TRACKED_SEGMENTS = (
    "SELECT segment_key, filter FROM segments WHERE workspace_id = ?"
    " AND analytics_enabled = TRUE ORDER BY segment_key"
)
NEXT_SEGMENT_KEY = (
    "SELECT COALESCE(MAX(k), 0) + 1 FROM (SELECT segment_key AS k FROM segments"
    " WHERE workspace_id = ? UNION ALL SELECT retired_key FROM retired_keys"
    " WHERE workspace_id = ? AND kind = 'segment') AS keys"
)
INSERT_SEGMENT = f"INSERT INTO segments ({SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
SEGMENT_TRACKING = "SELECT analytics_enabled FROM segments WHERE workspace_id = ? AND segment_id = ?"
SET_SEGMENT_TRACKING = (
    "UPDATE segments SET analytics_enabled = ?, updated_at = ?,"
    " tracking_since = CASE WHEN ? THEN ? ELSE tracking_since END"
    " WHERE workspace_id = ? AND segment_id = ?"
)

# Members: ``members`` and ``sign_in_attempts`` are reference tables on Citus (looked up
# by e-mail, or by throttle key, before any workspace is known); ``member_sessions`` is
# distributed by workspace_id.
INSERT_MEMBER = (
    "INSERT INTO members (workspace_id, email, password_hash, created_at, password_changed_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
MEMBER_BY_EMAIL = f"SELECT {MEMBER_COLUMNS} FROM members WHERE email = ?"
DELETE_MEMBER = "DELETE FROM members WHERE workspace_id = ? AND member_id = ?"
SET_MEMBER_PASSWORD = (
    "UPDATE members SET password_hash = ?, password_changed_at = ?"
    " WHERE workspace_id = ? AND member_id = ?"
)
SET_LAST_SIGN_IN = "UPDATE members SET last_sign_in_at = ? WHERE workspace_id = ? AND member_id = ?"
DELETE_MEMBER_SESSIONS = "DELETE FROM member_sessions WHERE workspace_id = ? AND member_id = ?"
DELETE_EXPIRED_MEMBER_SESSIONS = (
    "DELETE FROM member_sessions WHERE workspace_id = ? AND member_id = ? AND expires_at <= ?"
)
INSERT_MEMBER_SESSION = (
    "INSERT INTO member_sessions (workspace_id, token_hash, member_id, created_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
DELETE_MEMBER_SESSION = "DELETE FROM member_sessions WHERE workspace_id = ? AND token_hash = ?"
DELETE_OLD_ATTEMPTS = "DELETE FROM sign_in_attempts WHERE throttle_key = ? AND window_start < ?"
ADD_ATTEMPT = (
    "INSERT INTO sign_in_attempts (throttle_key, window_start, attempts) VALUES (?, ?, 1)"
    " ON CONFLICT (throttle_key, window_start)"
    " DO UPDATE SET attempts = sign_in_attempts.attempts + 1"
)
ATTEMPTS = "SELECT attempts FROM sign_in_attempts WHERE throttle_key = ? AND window_start = ?"
# Every key's older windows at once (the maintenance job; by the index on window_start).
PURGE_ATTEMPTS = "DELETE FROM sign_in_attempts WHERE window_start < ?"


# Operators' changes and deletions (the ``workspace``, ``app``, ``key`` and ``segment``
# commands). Every statement names its workspace, so that on Citus it runs on one shard.
ALL_WORKSPACE_ROWS = (
    "SELECT workspace_id, name, time_zone, rate_limit, retention_days, created_at FROM workspaces"
    " ORDER BY workspace_id"
)
SET_RATE_LIMIT = "UPDATE workspaces SET rate_limit = ? WHERE workspace_id = ?"
LOCK_WORKSPACE_APPS = "SELECT app_key FROM apps WHERE workspace_id = ? ORDER BY app_key"
# Every table with rows of a workspace, children before the tables they reference.
DELETE_WORKSPACE_ROWS = (
    "DELETE FROM member_sessions WHERE workspace_id = ?",
    "DELETE FROM members WHERE workspace_id = ?",
    "DELETE FROM api_keys WHERE workspace_id = ?",
    "DELETE FROM sessions WHERE workspace_id = ?",
    "DELETE FROM derived_sessions WHERE workspace_id = ?",
    "DELETE FROM events WHERE workspace_id = ?",
    "DELETE FROM session_counts WHERE workspace_id = ?",
    "DELETE FROM session_counts_coarse WHERE workspace_id = ?",
    "DELETE FROM event_counts WHERE workspace_id = ?",
    "DELETE FROM event_names WHERE workspace_id = ?",
    "DELETE FROM person_days WHERE workspace_id = ?",
    "DELETE FROM kpi_counts WHERE workspace_id = ?",
    "DELETE FROM app_message_counts WHERE workspace_id = ?",
    "DELETE FROM users WHERE workspace_id = ?",
    "DELETE FROM segments WHERE workspace_id = ?",
    "DELETE FROM apps WHERE workspace_id = ?",
    "DELETE FROM retired_keys WHERE workspace_id = ?",
)
DELETE_WORKSPACE = "DELETE FROM workspaces WHERE workspace_id = ?"

APP_EXISTS = "SELECT app_key FROM apps WHERE workspace_id = ? AND app_key = ?"
APP_QUARTER_COUNTS = (
    "SELECT segment_key, quarter, sessions FROM session_counts WHERE workspace_id = ? AND app_key = ?"
)
APP_COARSE_COUNTS = (
    "SELECT segment_key, grain, first_quarter, sessions FROM session_counts_coarse"
    " WHERE workspace_id = ? AND app_key = ?"
)
APP_EVENT_COUNTS = (
    "SELECT segment_key, name_key, grain, first_quarter, events FROM event_counts"
    " WHERE workspace_id = ? AND app_key = ?"
)
# (The all-apps row of a key exists wherever an app's does: both grow in one transaction.)
SUBTRACT_QUARTERS = (
    "UPDATE session_counts SET sessions = sessions - ? WHERE workspace_id = ? AND app_key = ?"
    " AND segment_key = ? AND quarter = ?"
)
SUBTRACT_COARSE = (
    "UPDATE session_counts_coarse SET sessions = sessions - ? WHERE workspace_id = ?"
    " AND app_key = ? AND segment_key = ? AND grain = ? AND first_quarter = ?"
)
SUBTRACT_EVENTS = (
    "UPDATE event_counts SET events = events - ? WHERE workspace_id = ? AND app_key = ?"
    " AND segment_key = ? AND name_key = ? AND grain = ? AND first_quarter = ?"
)
DELETE_APP_ROWS = (
    "DELETE FROM sessions WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM derived_sessions WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM events WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM session_counts WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM session_counts_coarse WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM event_counts WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM app_message_counts WHERE workspace_id = ? AND app_key = ?",
    "DELETE FROM apps WHERE workspace_id = ? AND app_key = ?",
)
# An event name no app counts any more (all its events came from a deleted app).
NAME_STILL_COUNTED = (
    "SELECT EXISTS (SELECT 1 FROM event_counts WHERE workspace_id = ? AND app_key <> ?"
    " AND name_key = ?)"
)
DELETE_NAME_COUNTS = "DELETE FROM event_counts WHERE workspace_id = ? AND name_key = ?"
DELETE_NAME = "DELETE FROM event_names WHERE workspace_id = ? AND name_key = ?"

KEY_LISTING = (
    "SELECT key_id, name, key_prefix, permissions, allowed_ips, created_at, last_seen_at,"
    " revoked_at FROM api_keys WHERE workspace_id = ? ORDER BY key_id"
)

SEGMENT_STATE = (
    "SELECT segment_key, analytics_enabled, filter FROM segments WHERE workspace_id = ?"
    " AND segment_id = ?"
)
UPDATE_SEGMENT = (
    "UPDATE segments SET name = COALESCE(?, name), description = COALESCE(?, description),"
    " tags = COALESCE(?, tags), filter = COALESCE(?, filter), updated_at = ?"
    " WHERE workspace_id = ? AND segment_id = ?"
)
DELETE_SEGMENT_ROWS = (
    "DELETE FROM session_counts WHERE workspace_id = ? AND segment_key = ?",
    "DELETE FROM session_counts_coarse WHERE workspace_id = ? AND segment_key = ?",
    "DELETE FROM event_counts WHERE workspace_id = ? AND segment_key = ?",
    "DELETE FROM segments WHERE workspace_id = ? AND segment_key = ?",
)
# Derived sessions that count toward a segment (its key among their space-separated keys).
SESSIONS_WITH_SEGMENT = (
    "SELECT app_key, person, ended_at, segment_keys FROM derived_sessions WHERE workspace_id = ?"
    " AND ' ' || segment_keys || ' ' LIKE ?"
)
SET_SEGMENT_KEYS = (
    "UPDATE derived_sessions SET segment_keys = ? WHERE workspace_id = ? AND app_key = ?"
    " AND person = ? AND ended_at = ?"
)
# The key taken off the recorded sessions and track events that counted toward the
# segment (their segment_keys, which erasure reads): parameters ' <key> ', workspace,
# '% <key> %'. (A key is in a row's list once; NULL, before migration 0007, stays NULL.)
STRIP_SEGMENT_KEY = tuple(
    f"UPDATE {table} SET segment_keys = TRIM(REPLACE(' ' || segment_keys || ' ', ?, ' '))"
    " WHERE workspace_id = ? AND ' ' || segment_keys || ' ' LIKE ?"
    for table in ("sessions", "events")
)


def require_apps(
    tx: SharedStatements, workspace_id: int, app_keys: Sequence[int], lock: str = APP_EXISTS
) -> None:
    """Inside a recording transaction, before it writes: every app the batch writes to
    still exists, each read with ``lock`` (PostgreSQL's row locks) in key order, or
    AppGone (WorkspaceGone when the whole workspace went), so that nothing is recorded
    for an app deleted after the request resolved it."""
    from . import kpis  # (kpis builds on this module's statements)

    for app_key in sorted(set(app_keys)):
        if tx.execute(lock, (workspace_id, app_key)).fetchone() is None:
            kpis.workspace_zone(tx, workspace_id)  # WorkspaceGone when the workspace went
            raise AppGone


def segment_tags(tags: Sequence[str]) -> str:
    """The ``tags`` column of a segment: a JSON array."""
    return orjson.dumps(list(tags)).decode()


def fill_write_keys(tx: SharedStatements) -> None:
    """Give every app without a write key (made before migration 0004) a new one: per
    workspace, so that on Citus each statement is routed to one shard."""
    for (workspace_id,) in tx.execute(ALL_WORKSPACES, ()).fetchall():
        for (app_key,) in tx.execute(APPS_WITHOUT_WRITE_KEY, (workspace_id,)).fetchall():
            tx.execute(SET_WRITE_KEY, (generate_write_key(int(workspace_id)), workspace_id, app_key))


def session_segment_rows(
    workspace_id: int, fresh: Sequence[NewSession], segments: Sequence[Sequence[int]] | None
) -> list[tuple[str, int, str]]:
    """SET_SESSION_SEGMENTS's rows for the new sessions that count toward some segment."""
    if not segments:
        return []
    return [(" ".join(map(str, keys)), workspace_id, s.session_id)
            for s, keys in zip(fresh, segments, strict=True) if keys]


def check_tracking_room(tracked: int) -> None:
    """Refuse to turn tracking on when ``tracked`` segments of the workspace have it."""
    if tracked >= MAX_TRACKED_SEGMENTS:
        raise TrackingLimitError(
            f"at most {MAX_TRACKED_SEGMENTS} segments per workspace may have analytics"
            " tracking on; turn one off first"
        )


def app_from_row(row: Sequence[Any]) -> App:
    ws, key, app_id, name, platform, write_key, timeout, origins, limit = row
    return App(int(ws), int(key), str(app_id), str(name), platform, str(write_key),
               int(timeout), tuple(str(origins).split()), int(limit))


def segment_from_row(row: Sequence[Any]) -> Segment:
    ws, key, sid, name, description, tags, filter_json, enabled, since, created, updated = row
    return Segment(int(ws), int(key), str(sid), str(name), str(description),
                   tuple(orjson.loads(str(tags))), str(filter_json), bool(enabled),
                   since, int(created), int(updated))


def member_from_row(row: Sequence[Any]) -> Member:
    ws, member_id, email, password_hash, created, last_sign_in = row
    return Member(int(ws), int(member_id), str(email), str(password_hash), int(created),
                  None if last_sign_in is None else int(last_sign_in))


class Cursor(Protocol):
    """What the shared writes read from a statement they ran."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class SharedStatements(Protocol):
    """A write transaction that runs the statements of this module (``?`` placeholders)."""

    def execute(self, statement: str, params: Sequence[Any], /) -> Cursor: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]], /) -> object: ...


def _run_many(tx: SharedStatements, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        tx.executemany(statement, rows)


def one_row(cursor: Cursor) -> tuple[Any, ...]:
    """The row of a statement that always returns one (an aggregate)."""
    row = cursor.fetchone()
    assert row is not None
    return row


class SqlWrites:
    """Mixin: the Store's writes whose statements and steps are the same on both engines,
    over ``_shared_transaction``, which each engine provides, and ``_lock_workspace``,
    which serialises allocations within a workspace where the transaction alone does not
    (SQLite's ``BEGIN IMMEDIATE`` already locks the whole database)."""

    def _shared_transaction(self) -> AbstractContextManager[SharedStatements]:
        raise NotImplementedError

    def _lock_workspace(self, tx: SharedStatements, workspace_id: int) -> None:
        pass

    get_segment: Callable[[int, str], Segment | None]  # SqlReads's

    def create_app(
        self, workspace_id: int, app_id: str, name: str, platform: str | None,
        write_key: str | None = None,
    ) -> App:
        write_key = write_key or generate_write_key(workspace_id)
        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)
            (app_key,) = one_row(tx.execute(NEXT_APP_KEY, (workspace_id, workspace_id)))
            tx.execute(INSERT_APP, (workspace_id, app_key, app_id, name, platform, int(time.time()),
                                    write_key))
        return App(workspace_id, int(app_key), app_id, name, platform, write_key)

    def set_write_key(self, workspace_id: int, app_key: int, write_key: str) -> bool:
        with self._shared_transaction() as tx:
            return tx.execute(SET_WRITE_KEY, (write_key, workspace_id, app_key)).rowcount > 0

    def update_app(
        self,
        workspace_id: int,
        app_key: int,
        session_timeout_s: int | None = None,
        allowed_origins: Sequence[str] | None = None,
        event_limit: int | None = None,
    ) -> bool:
        origins = None if allowed_origins is None else " ".join(allowed_origins)
        with self._shared_transaction() as tx:
            return tx.execute(UPDATE_APP, (session_timeout_s, origins, event_limit,
                                           workspace_id, app_key)).rowcount > 0

    def create_key(
        self,
        workspace_id: int,
        name: str,
        key_hash: bytes,
        key_prefix: str,
        permissions: Sequence[str],
        allowed_ips: Sequence[str],
    ) -> int:
        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)
            (key_id,) = one_row(tx.execute(NEXT_KEY_ID, (workspace_id,)))
            tx.execute(INSERT_KEY, (workspace_id, key_id, name, key_hash, key_prefix,
                                    " ".join(permissions), " ".join(allowed_ips), int(time.time())))
        return int(key_id)

    def revoke_key(self, workspace_id: int, key_hash: bytes | None, key_id: int | None) -> bool:
        with self._shared_transaction() as tx:
            return tx.execute(REVOKE_KEY, (int(time.time()), workspace_id, key_hash, key_id)).rowcount > 0

    def touch_key(self, workspace_id: int, key_id: int, seen_at: int) -> None:
        with self._shared_transaction() as tx:
            tx.execute(TOUCH_KEY, (seen_at, workspace_id, key_id))

    def change_time_zone(self, workspace_id: int, time_zone: str) -> None:
        from . import kpis  # (kpis builds on this module's statements)

        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)  # recording transactions wait (they share it)
            kpis.rebuild(tx, workspace_id, time_zone)

    # ------------------------------------------------------------- retention

    _fetch_all: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]  # SqlReads's

    def set_retention(self, workspace_id: int, days: int | None) -> bool:
        from . import erasure  # (erasure builds on this module's statements)

        with self._shared_transaction() as tx:
            return tx.execute(erasure.SET_RETENTION, (days, workspace_id)).rowcount > 0

    def retention_workspaces(self) -> list[tuple[int, int]]:
        from . import erasure

        return [(int(w), int(d)) for w, d in self._fetch_all(erasure.RETENTION_WORKSPACES, ())]

    def expire_raw_rows(self, workspace_id: int, horizon_us: int, batch: int = 1000) -> dict[str, int]:
        """Each table in pages of ``batch`` expired rows in key order: the page is found by
        a read (no write lock held while it scans), then deleted by key in a short
        transaction that checks the age again. Several processes may run it at once:
        each row is deleted once, the others find it gone."""
        from ..sessionize import MAX_TIMEOUT_S
        from . import erasure

        deleted = {"sessions": 0, "events": 0, "derived_sessions": 0}
        apps = [int(row[0]) for row in self._fetch_all(erasure.APP_KEYS, (workspace_id,))]
        derived_horizon = horizon_us - MAX_TIMEOUT_S * 1_000_000
        after: tuple[Any, ...] = ("",)
        while True:
            rows = self._fetch_all(erasure.EXPIRED_SESSIONS, (workspace_id, *after, horizon_us, batch))
            deleted["sessions"] += self._delete_keys(
                erasure.DELETE_SESSIONS, (workspace_id,), rows, (horizon_us,))
            if len(rows) < batch:
                break
            after = tuple(rows[-1])
        for app_key in apps:
            after = ("",)
            while True:
                rows = self._fetch_all(erasure.EXPIRED_EVENTS,
                                       (workspace_id, app_key, *after, horizon_us, batch))
                deleted["events"] += self._delete_keys(
                    erasure.DELETE_EVENTS_BY_KEY, (workspace_id, app_key), rows, (horizon_us,))
                if len(rows) < batch:
                    break
                after = tuple(rows[-1])
            after = ("", -1)
            while True:
                rows = self._fetch_all(erasure.EXPIRED_DERIVED,
                                       (workspace_id, app_key, *after, derived_horizon, batch))
                deleted["derived_sessions"] += self._delete_keys(
                    erasure.DELETE_DERIVED_BY_KEY, (workspace_id, app_key), rows, (derived_horizon,))
                if len(rows) < batch:
                    break
                after = tuple(rows[-1])
        return deleted

    def _delete_keys(
        self, statement: str, scope: tuple[Any, ...], rows: Sequence[tuple[Any, ...]],
        tail: tuple[Any, ...],
    ) -> int:
        """Run a ``{keys}`` DELETE for ``rows`` (one key per row) in one short transaction."""
        if not rows:
            return 0
        width = len(rows[0])
        marks = ", ".join(["?"] * len(rows)) if width == 1 else ", ".join(
            ["(?, CAST(? AS BIGINT))"] * len(rows))
        params = [value for row in rows for value in row]
        with self._shared_transaction() as tx:
            return int(tx.execute(statement.format(keys=marks), (*scope, *params, *tail)).rowcount)

    def set_segment_tracking(
        self, workspace_id: int, segment_id: str, enabled: bool, now: int
    ) -> Segment | None:
        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)
            row = tx.execute(SEGMENT_TRACKING, (workspace_id, segment_id)).fetchone()
            if row is None:
                return None
            if bool(row[0]) != enabled:
                if enabled:
                    check_tracking_room(one_row(tx.execute(COUNT_TRACKED, (workspace_id,)))[0])
                tx.execute(SET_SEGMENT_TRACKING, (enabled, now, enabled, now, workspace_id, segment_id))
        return self.get_segment(workspace_id, segment_id)

    # ------------------------------------------------------- operators' changes

    # Engine-specific deletions of a workspace's rows (PostgreSQL's rate windows).
    _workspace_side_statements: tuple[str, ...] = ()

    def _lock_app(self, tx: SharedStatements, workspace_id: int, app_key: int) -> None:
        """Before deleting an app: wait for the batches recording to it. PostgreSQL locks
        the app's row FOR UPDATE, the first lock a recording batch takes too (FOR KEY
        SHARE for sessions, FOR NO KEY UPDATE for events; ``require_apps``): a batch that
        holds it finishes first, one that comes later waits, then finds the row gone and
        records nothing (AppGone). SQLite's one writer needs nothing: a batch after the
        deletion finds the app gone the same way."""

    def set_rate_limit(self, workspace_id: int, rate_limit: int) -> bool:
        with self._shared_transaction() as tx:
            return tx.execute(SET_RATE_LIMIT, (rate_limit, workspace_id)).rowcount > 0

    def delete_workspace(self, workspace_id: int) -> bool:
        with self._shared_transaction() as tx:
            for (app_key,) in tx.execute(LOCK_WORKSPACE_APPS, (workspace_id,)).fetchall():
                self._lock_app(tx, workspace_id, int(app_key))
            self._lock_workspace(tx, workspace_id)
            for statement in (*DELETE_WORKSPACE_ROWS, *self._workspace_side_statements):
                tx.execute(statement, (workspace_id,))
            return tx.execute(DELETE_WORKSPACE, (workspace_id,)).rowcount > 0

    def delete_app(self, workspace_id: int, app_key: int) -> bool:
        from . import kpis  # (kpis builds on this module's statements)

        if app_key == ALL_APPS:
            return False
        with self._shared_transaction() as tx:
            self._lock_app(tx, workspace_id, app_key)
            self._lock_workspace(tx, workspace_id)  # recording transactions wait (they share it)
            if tx.execute(APP_EXISTS, (workspace_id, app_key)).fetchone() is None:
                return False
            mine = (workspace_id, app_key)
            _run_many(tx, SUBTRACT_QUARTERS, [
                (n, workspace_id, ALL_APPS, segment, quarter)
                for segment, quarter, n in tx.execute(APP_QUARTER_COUNTS, mine).fetchall() if n])
            _run_many(tx, SUBTRACT_COARSE, [
                (n, workspace_id, ALL_APPS, segment, grain, first)
                for segment, grain, first, n in tx.execute(APP_COARSE_COUNTS, mine).fetchall() if n])
            event_rows = tx.execute(APP_EVENT_COUNTS, mine).fetchall()
            _run_many(tx, SUBTRACT_EVENTS, [
                (n, workspace_id, ALL_APPS, segment, name, grain, first)
                for segment, name, grain, first, n in event_rows if n])
            kpis.forget_app(tx, workspace_id, app_key)
            for statement in DELETE_APP_ROWS:
                tx.execute(statement, mine)
            tx.execute(RETIRE_KEY, (workspace_id, "app", app_key))
            for name_key in sorted({int(row[1]) for row in event_rows}):
                if not one_row(tx.execute(NAME_STILL_COUNTED, (workspace_id, ALL_APPS, name_key)))[0]:
                    tx.execute(DELETE_NAME_COUNTS, (workspace_id, name_key))
                    tx.execute(DELETE_NAME, (workspace_id, name_key))
        return True

    def update_segment(
        self,
        workspace_id: int,
        segment_id: str,
        now: int,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        filter_json: str | None = None,
    ) -> Segment | None:
        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)
            row = tx.execute(SEGMENT_STATE, (workspace_id, segment_id)).fetchone()
            if row is None:
                return None
            _, tracked, current_filter = row
            if filter_json is not None and filter_json != current_filter and bool(tracked):
                raise TrackedFilterChange(
                    "the segment's analytics tracking is on and its counts were made with its"
                    " filter: turn tracking off, change the filter, then turn it on again"
                    " (counting restarts then)")
            tx.execute(UPDATE_SEGMENT, (name, description, None if tags is None else segment_tags(tags),
                                        filter_json, now, workspace_id, segment_id))
        return self.get_segment(workspace_id, segment_id)

    def delete_segment(self, workspace_id: int, segment_id: str) -> bool:
        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)
            row = tx.execute(SEGMENT_STATE, (workspace_id, segment_id)).fetchone()
            if row is None:
                return False
            segment_key = int(row[0])
            stripped = []
            for app_key, person, ended_at, keys in tx.execute(
                    SESSIONS_WITH_SEGMENT, (workspace_id, f"% {segment_key} %")).fetchall():
                kept = " ".join(k for k in str(keys).split() if int(k) != segment_key)
                stripped.append((kept, workspace_id, app_key, person, ended_at))
            _run_many(tx, SET_SEGMENT_KEYS, stripped)
            for statement in STRIP_SEGMENT_KEY:
                tx.execute(statement, (f" {segment_key} ", workspace_id, f"% {segment_key} %"))
            for statement in DELETE_SEGMENT_ROWS:
                tx.execute(statement, (workspace_id, segment_key))
            tx.execute(RETIRE_KEY, (workspace_id, "segment", segment_key))
        return True

    # ------------------------------------------------------------------ members

    def add_member(self, workspace_id: int, email: str, password_hash: str, now_us: int) -> Member:
        with self._shared_transaction() as tx:  # a taken e-mail: DuplicateName (the engine's)
            tx.execute(INSERT_MEMBER, (workspace_id, email, password_hash, now_us, now_us))
            return member_from_row(one_row(tx.execute(MEMBER_BY_EMAIL, (email,))))

    def remove_member(self, workspace_id: int, member_id: int) -> bool:
        with self._shared_transaction() as tx:
            tx.execute(DELETE_MEMBER_SESSIONS, (workspace_id, member_id))
            return tx.execute(DELETE_MEMBER, (workspace_id, member_id)).rowcount > 0

    def set_member_password(
        self, workspace_id: int, member_id: int, password_hash: str, now_us: int,
        end_sessions: bool = True,
    ) -> bool:
        with self._shared_transaction() as tx:
            changed = tx.execute(SET_MEMBER_PASSWORD, (password_hash, now_us, workspace_id,
                                                       member_id)).rowcount > 0
            if end_sessions:  # signed out everywhere
                tx.execute(DELETE_MEMBER_SESSIONS, (workspace_id, member_id))
        return changed

    def start_member_session(
        self, workspace_id: int, member_id: int, token_hash: bytes, now_s: int, expires_s: int
    ) -> None:
        with self._shared_transaction() as tx:
            if not tx.execute(SET_LAST_SIGN_IN, (now_s * 1_000_000, workspace_id, member_id)).rowcount:
                return  # the member was removed meanwhile: its token must not work
            tx.execute(DELETE_EXPIRED_MEMBER_SESSIONS, (workspace_id, member_id, now_s))
            tx.execute(INSERT_MEMBER_SESSION, (workspace_id, token_hash, member_id, now_s, expires_s))

    def end_member_session(self, workspace_id: int, token_hash: bytes) -> None:
        with self._shared_transaction() as tx:
            tx.execute(DELETE_MEMBER_SESSION, (workspace_id, token_hash))

    def count_sign_in_attempts(self, throttle_keys: Sequence[str], window_start: int) -> list[int]:
        counts: dict[str, int] = {}
        with self._shared_transaction() as tx:
            # Keys in one order in every transaction: concurrent ones lock rows alike and
            # cannot deadlock (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises them anyway).
            for key in sorted(set(throttle_keys)):
                tx.execute(DELETE_OLD_ATTEMPTS, (key, window_start))
                tx.execute(ADD_ATTEMPT, (key, window_start))
                counts[key] = int(one_row(tx.execute(ATTEMPTS, (key, window_start)))[0])
        return [counts[key] for key in throttle_keys]

    def purge_sign_in_attempts(self, before_window: int) -> int:
        with self._shared_transaction() as tx:
            return max(0, tx.execute(PURGE_ATTEMPTS, (before_window,)).rowcount)


# ----------------------------------------------------------------------------- reads


class SqlReads:
    """Mixin: the Store's read methods over ``_fetch_one`` / ``_fetch_all``, which each
    engine provides (a method, or a bound method of its connection machinery)."""

    _fetch_one: Callable[[str, Sequence[Any]], tuple[Any, ...] | None]
    _fetch_all: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

    def ping(self) -> bool:
        return self._fetch_all("SELECT 1", ()) == [(1,)]

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        row = self._fetch_one(
            "SELECT workspace_id, name, time_zone, rate_limit, retention_days FROM workspaces"
            " WHERE workspace_id = ?",
            (workspace_id,),
        )
        return Workspace(*row) if row else None

    def find_workspace(self, name: str) -> Workspace | None:
        row = self._fetch_one(
            "SELECT workspace_id, name, time_zone, rate_limit, retention_days FROM workspaces"
            " WHERE name = ?", (name,)
        )
        return Workspace(*row) if row else None

    def list_workspaces(self) -> list[tuple[Workspace, int]]:
        """Every workspace (a reference table on Citus: no fan-out) and when it was made."""
        return [(Workspace(int(ws), str(name), str(zone), int(limit),
                           None if retention is None else int(retention)), int(created))
                for ws, name, zone, limit, retention, created in self._fetch_all(ALL_WORKSPACE_ROWS, ())]

    def list_keys(self, workspace_id: int) -> list[KeyInfo]:
        return [
            KeyInfo(int(key_id), str(name), str(prefix), tuple(str(permissions).split()),
                    tuple(str(allowed).split()), int(created),
                    None if seen is None else int(seen), None if revoked is None else int(revoked))
            for key_id, name, prefix, permissions, allowed, created, seen, revoked
            in self._fetch_all(KEY_LISTING, (workspace_id,))
        ]

    def find_app(self, workspace_id: int, app_id: str) -> App | None:
        row = self._fetch_one(
            f"SELECT {APP_COLUMNS} FROM apps WHERE workspace_id = ? AND app_id = ?",
            (workspace_id, app_id),
        )
        return app_from_row(row) if row else None

    def find_app_by_write_key(self, workspace_id: int, write_key: str) -> App | None:
        row = self._fetch_one(
            f"SELECT {APP_COLUMNS} FROM apps WHERE workspace_id = ? AND write_key = ?",
            (workspace_id, write_key),
        )
        return app_from_row(row) if row else None

    def list_apps(self, workspace_id: int) -> list[App]:
        rows = self._fetch_all(
            f"SELECT {APP_COLUMNS} FROM apps WHERE workspace_id = ? ORDER BY app_key",
            (workspace_id,),
        )
        return [app_from_row(row) for row in rows]

    def find_key_by_hash(self, workspace_id: int, key_hash: bytes) -> ApiKey | None:
        row = self._fetch_one(
            "SELECT workspace_id, key_id, name, key_hash, permissions, allowed_ips,"
            " revoked_at, last_seen_at FROM api_keys WHERE workspace_id = ? AND key_hash = ?",
            (workspace_id, key_hash),
        )
        if row is None:
            return None
        workspace_id, key_id, name, stored_hash, permissions, allowed, revoked_at, seen = row
        return ApiKey(workspace_id, key_id, name, bytes(stored_hash), frozenset(permissions.split()),
                      tuple(allowed.split()), revoked_at is not None, seen)

    def user_attributes(self, workspace_id: int, external_id: str) -> str | None:
        row = self._fetch_one(
            "SELECT attributes FROM users WHERE workspace_id = ? AND external_id = ?",
            (workspace_id, external_id),
        )
        return row[0] if row else None

    def get_segment(self, workspace_id: int, segment_id: str) -> Segment | None:
        row = self._fetch_one(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE workspace_id = ? AND segment_id = ?",
            (workspace_id, segment_id),
        )
        return segment_from_row(row) if row else None

    def list_segments(
        self, workspace_id: int, offset: int, limit: int, descending: bool
    ) -> list[Segment]:
        order = "DESC" if descending else "ASC"  # one of two constants, never caller text
        rows = self._fetch_all(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE workspace_id = ?"
            f" ORDER BY created_at {order}, segment_key {order} LIMIT ? OFFSET ?",
            (workspace_id, limit, offset),
        )
        return [segment_from_row(row) for row in rows]

    def count_raw_sessions(self, workspace_id: int) -> int:
        """Sessions stored, recorded and derived."""
        row = self._fetch_one(
            "SELECT (SELECT COUNT(*) FROM sessions WHERE workspace_id = ?)"
            " + (SELECT COUNT(*) FROM derived_sessions WHERE workspace_id = ?)",
            (workspace_id, workspace_id),
        )
        return int(row[0]) if row else 0

    def has_sessions(self, workspace_id: int) -> bool:
        """Whether any session is stored, recorded or derived (one index probe each)."""
        row = self._fetch_one(
            "SELECT (EXISTS (SELECT 1 FROM sessions WHERE workspace_id = ?)"
            " OR EXISTS (SELECT 1 FROM derived_sessions WHERE workspace_id = ?))",
            (workspace_id, workspace_id),
        )
        return bool(row and row[0])

    def count_raw_in_range(self, workspace_id: int, app_key: int, start_us: int, end_us: int) -> int:
        """Brute force over raw sessions, recorded and derived (off-grid zone rules,
        integrity checks, tests)."""
        params = (workspace_id, app_key, app_key, start_us, end_us)
        row = self._fetch_one(
            "SELECT (SELECT COUNT(*) FROM sessions WHERE workspace_id = ?"
            " AND (? = 0 OR app_key = ?) AND started_at >= ? AND started_at < ?)"
            " + (SELECT COUNT(*) FROM derived_sessions WHERE workspace_id = ?"
            " AND (? = 0 OR app_key = ?) AND started_at >= ? AND started_at < ?)",
            params + params,
        )
        return int(row[0]) if row else 0

    def derived_sessions(self, workspace_id: int, app_key: int) -> list[tuple[str, int, int]]:
        rows = self._fetch_all(
            "SELECT person, started_at, ended_at FROM derived_sessions WHERE workspace_id = ?"
            " AND app_key = ? ORDER BY person, started_at",
            (workspace_id, app_key),
        )
        return [(str(p), int(s), int(e)) for p, s, e in rows]

    def rollup_total(self, workspace_id: int, app_key: int, segment_key: int) -> int:
        """All sessions in the rollup for one (app, segment) key: an integrity check. Every
        level (quarters, hours, days) must hold the same total; RollupMismatch if not."""
        row = self._fetch_one(
            "SELECT (SELECT COALESCE(SUM(sessions), 0) FROM session_counts WHERE workspace_id = ?"
            " AND app_key = ? AND segment_key = ?),"
            " (SELECT COALESCE(SUM(sessions), 0) FROM session_counts_coarse WHERE workspace_id = ?"
            " AND app_key = ? AND segment_key = ? AND grain = ?),"
            " (SELECT COALESCE(SUM(sessions), 0) FROM session_counts_coarse WHERE workspace_id = ?"
            " AND app_key = ? AND segment_key = ? AND grain = ?)",
            (workspace_id, app_key, segment_key, workspace_id, app_key, segment_key, HOUR,
             workspace_id, app_key, segment_key, DAY),
        )
        quarters, hours, days = (int(v) for v in row) if row else (0, 0, 0)
        if not quarters == hours == days:
            raise RollupMismatch(f"rollup levels disagree: quarters {quarters}, hours {hours}, days {days}")
        return quarters


    # ------------------------------------------------------------- KPIs and events

    def kpi_series(
        self, workspace_id: int, app_key: int, kind: int, first_day: int, last_day: int
    ) -> list[int]:
        """One KPI (``kpi.DAU`` ...) for each local day ``first_day..last_day``."""
        rows = self._fetch_all(
            "SELECT day, value FROM kpi_counts WHERE workspace_id = ? AND app_key = ? AND kind = ?"
            " AND day >= ? AND day <= ?",
            (workspace_id, app_key, kind, first_day, last_day),
        )
        values = [0] * (last_day - first_day + 1)
        for day, value in rows:
            values[int(day) - first_day] = int(value)
        return values

    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        """Names in code-point order, the same on every engine (a database's collation
        would differ between a C and an en_US PostgreSQL and SQLite)."""
        rows = self._fetch_all("SELECT name FROM event_names WHERE workspace_id = ?", (workspace_id,))
        return sorted(str(row[0]) for row in rows)[offset:offset + limit]

    def event_name_key(self, workspace_id: int, name: str) -> int | None:
        row = self._fetch_one(
            "SELECT name_key FROM event_names WHERE workspace_id = ? AND name = ?", (workspace_id, name)
        )
        return int(row[0]) if row else None

    def count_events_by_quarters(
        self, workspace_id: int, app_key: int, segment_key: int, name_key: int, boundaries: Sequence[int]
    ) -> list[int]:
        """Events of one name in each ``[boundaries[i], boundaries[i+1])`` (quarter indexes),
        from the coarsest level that fits each piece (``rollup.plan_series_read``): one
        range read per level."""
        pieces = plan_series_read(tuple(boundaries))
        totals = [0] * (len(boundaries) - 1)
        for grain in sorted({piece[1] for piece in pieces}):
            mine = [piece for piece in pieces if piece[1] == grain]
            rows = self._fetch_all(
                "SELECT first_quarter, events FROM event_counts WHERE workspace_id = ? AND app_key = ?"
                " AND segment_key = ? AND name_key = ? AND grain = ? AND first_quarter >= ?"
                " AND first_quarter < ? ORDER BY first_quarter",
                (workspace_id, app_key, segment_key, name_key, grain,
                 min(p[2] for p in mine), max(p[3] for p in mine)),
            )
            firsts = [int(row[0]) for row in rows]
            for bucket, _, first, end in mine:
                lo, hi = bisect_left(firsts, first), bisect_left(firsts, end)
                totals[bucket] += sum(int(row[1]) for row in rows[lo:hi])
        return totals

    def active_days(self, workspace_id: int, app_key: int) -> dict[str, set[int]]:
        """Every person's active local days in one scope (tests, integrity checks)."""
        found: dict[str, set[int]] = {}
        for person, day in self._fetch_all(
            "SELECT person, day FROM person_days WHERE workspace_id = ? AND app_key = ?",
            (workspace_id, app_key),
        ):
            found.setdefault(str(person), set()).add(int(day))
        return found

    # ------------------------------------------------------------------ members

    def find_member(self, email: str) -> Member | None:
        row = self._fetch_one(MEMBER_BY_EMAIL, (email,))
        return member_from_row(row) if row else None

    def get_member(self, workspace_id: int, member_id: int) -> Member | None:
        row = self._fetch_one(
            f"SELECT {MEMBER_COLUMNS} FROM members WHERE workspace_id = ? AND member_id = ?",
            (workspace_id, member_id),
        )
        return member_from_row(row) if row else None

    def list_members(self, workspace_id: int) -> list[Member]:
        """By e-mail in code-point order, the same on every engine (not the collation's)."""
        rows = self._fetch_all(f"SELECT {MEMBER_COLUMNS} FROM members WHERE workspace_id = ?",
                               (workspace_id,))
        return sorted((member_from_row(row) for row in rows), key=lambda m: m.email)

    def member_session(self, workspace_id: int, token_hash: bytes, now_s: int) -> Member | None:
        found = self.member_session_expiry(workspace_id, token_hash, now_s)
        return found[0] if found else None

    def member_session_expiry(
        self, workspace_id: int, token_hash: bytes, now_s: int
    ) -> tuple[Member, int] | None:
        # The expiry is compared here, not in SQL: the statement's text and parameters stay
        # the same from one second to the next, so SQLite's read cache can answer it.
        row = self._fetch_one(
            "SELECT m.workspace_id, m.member_id, m.email, m.password_hash, m.created_at,"
            " m.last_sign_in_at, s.expires_at FROM member_sessions s JOIN members m"
            " ON m.member_id = s.member_id AND m.workspace_id = s.workspace_id"
            " WHERE s.workspace_id = ? AND s.token_hash = ?",
            (workspace_id, token_hash),
        )
        if row is None or int(row[6]) <= now_s:
            return None
        return member_from_row(row[:6]), int(row[6])


class RollupMismatch(RuntimeError):
    """The rollup's levels do not hold the same counts (an integrity check failed)."""
