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

from ..keys import generate_write_key
from .base import MAX_TRACKED_SEGMENTS, ApiKey, App, Member, Segment, TrackingLimitError, Workspace
from .rollup import DAY, HOUR, plan_series_read

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

NEXT_APP_KEY = "SELECT COALESCE(MAX(app_key), 0) + 1 FROM apps WHERE workspace_id = ?"
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

COUNT_TRACKED = "SELECT COUNT(*) FROM segments WHERE workspace_id = ? AND analytics_enabled = TRUE"
# What recording needs of the tracked segments, read inside its transaction.
TRACKED_SEGMENTS = (
    "SELECT segment_key, filter FROM segments WHERE workspace_id = ?"
    " AND analytics_enabled = TRUE ORDER BY segment_key"
)
NEXT_SEGMENT_KEY = "SELECT COALESCE(MAX(segment_key), 0) + 1 FROM segments WHERE workspace_id = ?"
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


def segment_tags(tags: Sequence[str]) -> str:
    """The ``tags`` column of a segment: a JSON array."""
    return orjson.dumps(list(tags)).decode()


def fill_write_keys(tx: SharedStatements) -> None:
    """Give every app without a write key (made before migration 0004) a new one: per
    workspace, so that on Citus each statement is routed to one shard."""
    for (workspace_id,) in tx.execute(ALL_WORKSPACES, ()).fetchall():
        for (app_key,) in tx.execute(APPS_WITHOUT_WRITE_KEY, (workspace_id,)).fetchall():
            tx.execute(SET_WRITE_KEY, (generate_write_key(int(workspace_id)), workspace_id, app_key))


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
            (app_key,) = one_row(tx.execute(NEXT_APP_KEY, (workspace_id,)))
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
            "SELECT workspace_id, name, time_zone, rate_limit FROM workspaces WHERE workspace_id = ?",
            (workspace_id,),
        )
        return Workspace(*row) if row else None

    def find_workspace(self, name: str) -> Workspace | None:
        row = self._fetch_one(
            "SELECT workspace_id, name, time_zone, rate_limit FROM workspaces WHERE name = ?", (name,)
        )
        return Workspace(*row) if row else None

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
