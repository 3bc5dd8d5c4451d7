"""The embedded store: the data model's SQL on one SQLite file.

Connections, transactions, the read cache and error translation are the machinery's
(``store/sqlite_connections.py``); the statements both engines share are in
``store/sql.py``. Writers take the database lock up front (``BEGIN IMMEDIATE``), so a
batch's inserts and its rollup increments cannot interleave with another process
recording the same session ids.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from importlib import resources
from operator import attrgetter
from pathlib import Path
from typing import Any, ClassVar

from . import derived, erasure, kpis, sql
from .base import (
    App,
    Classifier,
    EventUserUpdates,
    NewEvent,
    NewSession,
    RecordOutcome,
    Segment,
    TrackedSegment,
    UserUpdater,
    Workspace,
)
from .rollup import DAY, HOUR, QUARTER, coarse_increments, plan_series_read, rollup_increments
from .sql import SharedStatements, SqlReads, SqlWrites
from .sqlite_connections import READ_CACHE_ENTRIES, SqliteConnections

_IN_CHUNK = 500  # values per IN (...) lookup (well under SQLite's 32766 parameters)
# From this many sessions a batch is inserted in session-id order (see _insert_new): an
# import-sized transaction touches more leaves of the session index than the writer's page
# cache holds; a request-sized one does not, and gains nothing from the sort.
SORTED_INSERT_MIN_ROWS = 20_000
_INSERT_NEW_SESSION = (
    "INSERT INTO sessions (workspace_id, session_id, external_id, app_key, started_at, ended_at,"
    " segment_keys) VALUES (?, ?, ?, ?, ?, ?, '') ON CONFLICT (workspace_id, session_id) DO NOTHING"
)
_INSERT_NEW_EVENT = (
    "INSERT INTO events (workspace_id, app_key, message_id, type, event, person, user_id,"
    " occurred_at, received_at, segment_keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')"
    " ON CONFLICT (workspace_id, app_key, message_id) DO NOTHING"
)
_USERS_IN = (
    "SELECT external_id, attributes FROM users WHERE workspace_id = ? AND external_id IN ({marks})"
)


def _rows_in(
    conn: sqlite3.Connection, statement: str, workspace_id: int, values: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``statement`` (with an ``IN ({marks})`` for ``values``) in chunks of _IN_CHUNK."""
    for begin in range(0, len(values), _IN_CHUNK):
        chunk = values[begin : begin + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(statement.format(marks=marks), (workspace_id, *chunk))


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("sessiontally.store") / "migrations" / "sqlite"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


class SqliteStore(SqlWrites, SqlReads):
    """Store on a SQLite file. One connection per thread; safe across worker processes."""

    reads_never_block: ClassVar[bool] = True  # WAL: a reader never waits for a writer
    # Bound in __init__ to the machinery's own methods: an event loop's cached request
    # (pinned_reads, change_token, point lookups) makes no forwarding call through here.
    pinned_reads: Callable[[], AbstractContextManager[None]]
    change_token: Callable[[], object | None]

    def __init__(self, path: str | Path, read_cache: int = READ_CACHE_ENTRIES) -> None:
        self.connections = connections = SqliteConnections(path, read_cache)
        self.path = connections.path
        self.pinned_reads = connections.pinned_reads
        self.change_token = connections.change_token
        self._fetch_one = connections.fetch_one
        self._fetch_all = connections.fetch_all

    def close(self) -> None:
        self.connections.close()

    def _shared_transaction(self) -> AbstractContextManager[SharedStatements]:
        return self.connections.write()  # (BEGIN IMMEDIATE: no other writer meanwhile)

    def migrate(self) -> int:
        """Apply pending migrations (idempotent, safe when several processes start at once)."""
        with self.connections.write() as conn:
            conn.execute(  # (SQLite's column types: INTEGER PRIMARY KEY is the rowid)
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in conn.execute(sql.MIGRATED_VERSIONS)}
            version = max(done, default=0)
            for number, script in _migrations():
                if number in done:
                    continue
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute(sql.RECORD_MIGRATION, (number, int(time.time())))
                version = number
            sql.fill_write_keys(conn)
        return version

    # ---------------------------------------------------------------- workspaces

    def create_workspace(self, name: str, time_zone: str, rate_limit: int) -> Workspace:
        with self.connections.write() as conn:  # a taken name: DuplicateName (map_sqlite_errors)
            # (Per engine: SQLite gives the new id as the cursor's lastrowid.)
            cursor = conn.execute(
                "INSERT INTO workspaces (name, time_zone, rate_limit, created_at)"
                " VALUES (?, ?, ?, ?)",
                (name, time_zone, rate_limit, int(time.time())),
            )
            workspace_id = cursor.lastrowid
        assert workspace_id is not None
        return Workspace(workspace_id, name, time_zone, rate_limit)

    # ---------------------------------------------------------------------- apps

    # ------------------------------------------------------------------ API keys

    # --------------------------------------------------------- users and segments

    def update_users(
        self, workspace_id: int, external_ids: Sequence[str], update: UserUpdater, now: int
    ) -> None:
        with self.connections.write() as conn:  # (the database lock: no per-user locks needed)
            _update_users(conn, workspace_id, external_ids, update, now)

    def create_segment(
        self,
        workspace_id: int,
        segment_id: str,
        name: str,
        description: str,
        tags: Sequence[str],
        filter_json: str,
        analytics: bool,
        now: int,
    ) -> Segment:
        with self.connections.write() as conn:
            if analytics:
                sql.check_tracking_room(conn.execute(sql.COUNT_TRACKED, (workspace_id,)).fetchone()[0])
            (key,) = conn.execute(sql.NEXT_SEGMENT_KEY, (workspace_id, workspace_id)).fetchone()
            conn.execute(sql.INSERT_SEGMENT, (
                workspace_id, key, segment_id, name, description, sql.segment_tags(tags),
                filter_json, int(analytics), now if analytics else None, now, now))
        segment = self.get_segment(workspace_id, segment_id)
        assert segment is not None
        return segment

    # ------------------------------------------------------------------ sessions

    def record_sessions(
        self, workspace_id: int, sessions: Sequence[NewSession], classify: Classifier | None = None
    ) -> RecordOutcome:
        """Record a batch in one transaction: new session ids are inserted and counted,
        known ones (stored before, or earlier in this batch) are duplicates. First write
        wins. Each new session also counts toward the tracked segments its user matches
        now."""
        return self.connections.write_grouped(
            lambda conn: self._record(conn, workspace_id, sessions, classify)
        )

    def _record(
        self,
        conn: sqlite3.Connection,
        workspace_id: int,
        sessions: Sequence[NewSession],
        classify: Classifier | None,
    ) -> RecordOutcome:
        sql.require_apps(conn, workspace_id, [s.app_key for s in sessions])  # or AppGone
        fresh = self._insert_new(conn, workspace_id, sessions)  # a repeat in the batch is known
        segments = self._classify(conn, workspace_id, fresh, classify) if classify else None
        if segments:
            conn.executemany(sql.SET_SESSION_SEGMENTS,
                             sql.session_segment_rows(workspace_id, fresh, segments))
        if fresh:
            kpis.upkeep(conn, workspace_id, kpis.workspace_zone(conn, workspace_id),
                        [(s.app_key, s.external_id, s.started_at, 1) for s in fresh])
        quarters = rollup_increments(fresh, segments)
        # (Per engine: executemany here, one statement over unnest arrays on PostgreSQL.)
        conn.executemany(
            "INSERT INTO session_counts (workspace_id, app_key, segment_key, quarter, sessions)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, app_key, segment_key, quarter)"
            " DO UPDATE SET sessions = sessions + excluded.sessions",
            [(workspace_id, *row) for row in quarters],
        )
        conn.executemany(
            "INSERT INTO session_counts_coarse (workspace_id, app_key, segment_key, grain,"
            " first_quarter, sessions) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (workspace_id, app_key, segment_key, grain, first_quarter)"
            " DO UPDATE SET sessions = sessions + excluded.sessions",
            [(workspace_id, *row) for row in coarse_increments(quarters)],
        )
        return RecordOutcome(recorded=len(fresh), duplicates=len(sessions) - len(fresh))

    def record_events(
        self,
        workspace_id: int,
        app: App,
        events: Sequence[NewEvent],
        now_us: int,
        classify: Classifier | None = None,
        user_updates: EventUserUpdates | None = None,
    ) -> RecordOutcome:
        return self.connections.write_grouped(
            lambda conn: self._record_events(conn, workspace_id, app, events, now_us, classify,
                                             user_updates)
        )

    @staticmethod
    def _record_events(
        conn: sqlite3.Connection,
        workspace_id: int,
        app: App,
        events: Sequence[NewEvent],
        now_us: int,
        classify: Classifier | None,
        user_updates: EventUserUpdates | None,
    ) -> RecordOutcome:
        sql.require_apps(conn, workspace_id, [app.app_key])  # deleted meanwhile: AppGone
        derived.take_messages(conn, workspace_id, app, len(events), now_us)
        insert = conn.execute
        fresh = [
            e for e in events
            if insert(_INSERT_NEW_EVENT, (workspace_id, app.app_key, e.message_id, e.type, e.event,
                                          e.person, e.user_id, e.occurred_at, e.received_at)).rowcount
        ]
        derived.derive(conn, workspace_id, app, fresh, classify, kpis.zone_without_locks)
        changes = user_updates([e.message_id for e in fresh]) if user_updates else None
        if changes is not None:
            _update_users(conn, workspace_id, *changes, now_us)
        return RecordOutcome(recorded=len(fresh), duplicates=len(events) - len(fresh))

    @staticmethod
    def _insert_new(
        conn: sqlite3.Connection, workspace_id: int, candidates: Sequence[NewSession]
    ) -> list[NewSession]:
        """Insert the sessions whose ids are not stored yet, and return them: one statement
        per row, whose change count says whether the row went in. (A lookup first and then
        an insert would descend the session B-tree twice per row; an insert of the whole
        batch in a savepoint, undone when it met a known id, makes SQLite journal every
        page it changes; a multi-row INSERT … RETURNING costs more in Python than it
        saves.)

        A large batch (``import``'s) goes in, and comes back, in session-id order: random
        ids touch more leaves than the writer's page cache holds, and in id order each leaf
        is visited once per transaction instead of being spilled and read back. The sort
        is stable, so of two rows with one id the earlier is still the one inserted."""
        if len(candidates) >= SORTED_INSERT_MIN_ROWS:
            candidates = sorted(candidates, key=attrgetter("session_id"))
        insert = conn.execute
        return [
            s for s in candidates
            if insert(_INSERT_NEW_SESSION, (workspace_id, s.session_id, s.external_id, s.app_key,
                                            s.started_at, s.ended_at)).rowcount
        ]

    @staticmethod
    def _classify(
        conn: sqlite3.Connection,
        workspace_id: int,
        fresh: Sequence[NewSession],
        classify: Classifier,
    ) -> list[Sequence[int]] | None:
        """Segment keys per fresh session, read inside the recording transaction so that
        membership is the user's at the moment the session is recorded."""
        tracked = [
            TrackedSegment(key, filter_json)
            for key, filter_json in conn.execute(sql.TRACKED_SEGMENTS, (workspace_id,))
        ]
        if not tracked or not fresh:
            return None
        users = sorted({s.external_id for s in fresh})
        stored = dict(_rows_in(conn, _USERS_IN, workspace_id, users))
        matches = classify(tracked, users, stored)
        return [matches.get(s.external_id, ()) for s in fresh]

    def erase_user(
        self, workspace_id: int, external_id: str, classify: Classifier | None = None
    ) -> bool:
        with self.connections.write() as conn:  # (BEGIN IMMEDIATE: no other writer meanwhile)
            return erasure.erase(conn, workspace_id, external_id, classify, _no_locks,
                                 kpis.zone_without_locks)

    def count_by_quarters(
        self, workspace_id: int, app_key: int, segment_key: int, boundaries: Sequence[int]
    ) -> list[int]:
        """Sessions in each ``[boundaries[i], boundaries[i+1])`` (quarter indexes), read
        from the coarsest rollup level that fits each piece (rollup.plan_series_read).
        Repeated reads are answered from a cache while the database is unchanged."""
        connections = self.connections
        edges = tuple(boundaries)
        cache = connections.read_cache(connections.reader())
        if cache is None:
            return self._read_series(workspace_id, app_key, segment_key, edges)
        key = ("series", workspace_id, app_key, segment_key, edges)
        totals = cache.get(key)
        if totals is None:
            totals = cache[key] = self._read_series(workspace_id, app_key, segment_key, edges)
        return list(totals)

    def _read_series(
        self, workspace_id: int, app_key: int, segment_key: int, boundaries: tuple[int, ...]
    ) -> list[int]:
        totals = [0] * (len(boundaries) - 1)  # a bucket may be empty (no pieces)
        by_grain: dict[int, list[int]] = {QUARTER: [], HOUR: [], DAY: []}
        for i, grain, first, end in plan_series_read(boundaries):
            by_grain[grain] += (i, first, end)
        shape = tuple(len(by_grain[grain]) // 3 for grain in (QUARTER, HOUR, DAY))
        if not any(shape):
            return totals
        params = (workspace_id, app_key, segment_key, *by_grain[QUARTER], *by_grain[HOUR], *by_grain[DAY])
        for i, total in self._fetch_all(_series_sql(*shape), params):
            totals[i] += int(total)
        return totals


@lru_cache(maxsize=256)
def _series_sql(quarters: int, hours: int, days: int) -> str:
    """One statement summing each piece of a series read: index range scans on the quarter
    rows, the hour rows and the day rows, each level's pieces in their own VALUES list
    (a grain taken from the list instead of a constant, a CASE or a GROUP BY each cost
    SQLite more than the rows). ?1..?3 are the key."""
    n = 4
    ctes, selects = [], []
    levels = (("quarter_pieces", quarters, "session_counts", "quarter", ""),
              ("hour_pieces", hours, "session_counts_coarse", "first_quarter", f" AND grain = {HOUR}"),
              ("day_pieces", days, "session_counts_coarse", "first_quarter", f" AND grain = {DAY}"))
    for name, count, table, column, grain in levels:
        if not count:
            continue
        rows = []
        for _ in range(count):
            rows.append(f"(?{n}, ?{n + 1}, ?{n + 2})")
            n += 3
        ctes.append(f"{name}(i, lo, hi) AS (VALUES {','.join(rows)})")
        selects.append(
            f"SELECT {name}.i, (SELECT TOTAL(sessions) FROM {table} WHERE workspace_id = ?1"
            f" AND app_key = ?2 AND segment_key = ?3{grain} AND {column} >= {name}.lo"
            f" AND {column} < {name}.hi) FROM {name}"
        )
    return "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(selects)


def _no_locks(tx: SharedStatements, workspace_id: int, apps: Sequence[int], external_id: str) -> None:
    """``erasure.LockApps`` where the transaction already excludes every other writer."""


def _split_sql(script: str) -> list[str]:
    """Statements of a migration file (no semicolons inside our statements' literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _update_users(
    conn: sqlite3.Connection, workspace_id: int, external_ids: Sequence[str], update: UserUpdater,
    now: int,
) -> None:
    """Write ``update``'s attributes for ``external_ids`` inside the caller's transaction."""
    ids = sorted(set(external_ids))
    current = dict(_rows_in(conn, _USERS_IN, workspace_id, ids))
    # (Per engine: many rows are one executemany here, one unnest statement on PostgreSQL.)
    conn.executemany(
        "INSERT INTO users (workspace_id, external_id, attributes, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, external_id)"
        " DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at",
        [(workspace_id, ext, text, now) for ext, text in update(current).items()],
    )
