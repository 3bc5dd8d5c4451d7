"""The production store: PostgreSQL through psycopg 3 with a connection pool.

Same schema and semantics as the SQLite engine. A batch is one transaction: the new rows
go in with ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, so exactly the sessions that
were not known before are added to the rollup, even when several service instances
record the same ids at once. Rows are written in sorted key order so that concurrent
batches lock in the same order and cannot deadlock. All times are integers, so the
server's ``TimeZone`` never matters.

Driver errors are translated at the engine boundary (``map_postgres_errors``, around
every use of a pooled connection): a database that cannot be reached becomes
``errors.StoreUnavailable``, a taken workspace name or member e-mail
``errors.DuplicateName``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import DuplicateName, StoreUnavailable
from . import citus, derived, erasure, kpis, sql
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
from .rollup import coarse_increments, plan_series_read, rollup_increments
from .sql import SEGMENT_COLUMNS, SharedStatements, SqlReads, SqlWrites, one_row, segment_from_row

_MIGRATION_LOCK = 0x5E55_1017  # pg_advisory_xact_lock id for migrations
# The app rows a recording transaction locks first (sql.require_apps: in key order, before
# the users'): a session batch FOR KEY SHARE (batches of one app run side by side), an
# event batch FOR NO KEY UPDATE (one at a time per app); delete_app's FOR UPDATE waits for
# either, and a batch that waited for it finds the row gone (AppGone).
LOCK_APP_SHARE = "SELECT 1 FROM apps WHERE workspace_id = ? AND app_key = ? FOR KEY SHARE"
LOCK_APP = "SELECT 1 FROM apps WHERE workspace_id = ? AND app_key = ? FOR NO KEY UPDATE"
LOCK_APP_FOR_DELETE = "SELECT 1 FROM apps WHERE workspace_id = ? AND app_key = ? FOR UPDATE"
POOL_TIMEOUT_S = 5.0  # longest wait for a pooled connection before answering 503
# How long the pool keeps retrying (with backoff) a connection that failed before it gives
# up; the next request then starts a new attempt at once. Short, so that the service is
# back within seconds of the database coming back, not after a long backoff.
RECONNECT_TIMEOUT_S = 10.0

Row = tuple[Any, ...]
Connection = psycopg.Connection[Row]
Cursor = psycopg.Cursor[Row]


@contextmanager
def map_postgres_errors() -> Iterator[None]:
    """Driver errors raised inside leave as ``sessiontally.errors`` where a caller can act
    on them (the others, bugs, as they are), like httpx's ``map_httpcore_exceptions``.

    * The database cannot be reached right now: down, restarting, shutting connections
      down, or no pooled connection within POOL_TIMEOUT_S (``PoolTimeout``): StoreUnavailable
      (the API answers 503 with Retry-After). ``OperationalError`` also covers transient
      transaction conflicts (serialization failures, deadlocks), which a retry resolves.
    * On Citus, a worker node that cannot be reached: StoreUnavailable too, whether the
      coordinator reports it as a connection failure (an ``OperationalError``) or, for a
      connection its transaction had already used, as an internal error.
    * A unique violation on ``workspaces`` (its one unique column is the name) or on
      ``members`` (the e-mail): DuplicateName.
    """
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        table = _table_of(exc)
        if table == "members":
            raise DuplicateName("a member with that e-mail already exists") from exc
        if table != "workspaces":
            raise
        raise DuplicateName("a workspace of that name already exists") from exc
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(f"the database cannot be reached ({type(exc).__name__})") from exc
    except psycopg.errors.InternalError_ as exc:
        # Citus: a node of the cluster cannot be reached, reported as an internal error
        # (SQLSTATE XX000) when the connection was one the transaction needed.
        if not (exc.diag.message_primary or "").startswith(_CITUS_NODE_DOWN):
            raise
        raise StoreUnavailable("a node of the Citus cluster cannot be reached") from exc


_CITUS_NODE_DOWN = ("failure on connection marked as essential",)
# The unique constraints whose violation is a DuplicateName, by the table they are on.
_UNIQUE_NAMES = {"workspaces_name_key": "workspaces", "members_email_key": "members"}


def _without_shard_id(name: str) -> str:
    """A shard's name without its shard id (``workspaces_102008`` -> ``workspaces``)."""
    base, _, suffix = name.rpartition("_")
    return base if base and suffix.isdigit() else name


def _table_of(exc: psycopg.Error) -> str | None:
    """The table a unique violation is on. PostgreSQL names it; on Citus the error a worker
    raised comes with its message only, which names the shard's constraint
    (``"workspaces_name_key_102029"``)."""
    if exc.diag.table_name:
        return _without_shard_id(exc.diag.table_name)
    for quoted in re.findall(r'"([^"]+)"', exc.diag.message_primary or ""):
        table = _UNIQUE_NAMES.get(_without_shard_id(quoted))
        if table:
            return table
    return None


def check_reachable(url: str, timeout_s: int = 5) -> None:
    """Connect once, outside any pool: StoreUnavailable whose message is the cause in one
    line (``PostgreSQL database "x" does not exist``), for the command line; a pool would
    retry and log each attempt."""
    try:
        with psycopg.connect(url, connect_timeout=timeout_s, autocommit=True):
            pass
    except psycopg.Error as exc:
        raise StoreUnavailable(connection_problem(str(exc))) from None


def connection_problem(text: str) -> str:
    """The cause of a failed connection, from psycopg's (often multi-line) message."""
    missing = re.search(r'database "([^"]*)" does not exist', text)
    if missing:
        return f'PostgreSQL database "{missing.group(1)}" does not exist'
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = (lines[0] if lines else text).split("FATAL:", 1)[-1].strip()
    return f"cannot connect to PostgreSQL: {first.removeprefix('connection failed: ')}"


@lru_cache(maxsize=256)
def _psycopg(statement: str) -> str:
    """A shared statement (``?`` placeholders, no ``%`` in our SQL) in psycopg's style."""
    return statement.replace("?", "%s")


def _execute(conn: Connection, statement: str, params: Sequence[Any]) -> Cursor:
    """Run a statement shared with the SQLite engine (store/sql.py): the one place where
    its ``?`` placeholders become psycopg's ``%s``."""
    return conn.execute(_psycopg(statement), params)


class _SharedStatements:
    """A transaction's connection running the statements shared with the SQLite engine."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, statement: str, params: Sequence[Any], /) -> Cursor:
        return _execute(self.conn, statement, params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]], /) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(_psycopg(statement), rows)


@contextmanager
def _shared(transaction: AbstractContextManager[Connection]) -> Iterator[SharedStatements]:
    with transaction as conn:
        yield _SharedStatements(conn)


# The workspace's lock: a transaction-level advisory lock on the database the store talks
# to, taken shared by recording transactions and exclusive by a zone change and by the
# allocations of keys, apps and segments. Not a row lock on ``workspaces``: on Citus that
# is a reference table, and a row lock on it is serialised through the first worker node
# (lock_shard_resources), so that every recording would stop while that one worker is
# down, whatever worker holds the workspace. Advisory locks run on the coordinator alone.
LOCK_WORKSPACE = "SELECT pg_advisory_xact_lock(hashtextextended('workspace/' || ?::text, 0))"
SHARE_WORKSPACE = "SELECT pg_advisory_xact_lock_shared(hashtextextended('workspace/' || ?::text, 0))"


def _lock_days(tx: SharedStatements, workspace_id: int, persons: Sequence[str]) -> str:
    """The workspace's zone, its lock held shared (a zone change, which holds it exclusive
    and rebuilds the days, waits for this transaction, or this one for it: the zone is
    read after the lock is granted), and advisory locks on the persons' KPI days in key
    order (concurrent batches cannot deadlock). Taken after the users' locks and before
    the rollup's rows, the order of every recording transaction."""
    tx.execute(SHARE_WORKSPACE, (workspace_id,))
    zone = kpis.workspace_zone(tx, workspace_id)  # WorkspaceGone when it was deleted meanwhile
    tx.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"
        " hashtextextended('kpi/' || ?::text || '/' || p, 0) AS k FROM unnest(?::text[]) AS p"
        " ORDER BY k OFFSET 0) AS keys",
        (workspace_id, list(persons)),
    )
    return str(zone)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("sessiontally.store") / "migrations" / "postgres"
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def _durable_commits(conn: Connection) -> None:
    """Configure a new pooled connection: its commits are durable. A ``201`` promises that
    the sessions survive a crash, which holds only if ``COMMIT`` waits for the WAL flush.
    ``synchronous_commit`` is on by default, and the store never turns it off; if the
    server, database or role default has it ``off``, this connection turns it back on.
    (``local``, ``remote_write``, ``on`` and ``remote_apply`` all flush locally first.)"""
    (mode,) = one_row(conn.execute("SHOW synchronous_commit"))
    if mode == "off":
        conn.execute("SET synchronous_commit TO on")


class PostgresStore(SqlWrites, SqlReads):
    reads_never_block: ClassVar[bool] = False  # every read may wait for the network

    def __init__(self, url: str, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=_durable_commits,
            # A pooled connection is checked as it is handed out, so that connections a
            # restart of the server broke are replaced instead of failing a request each.
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            open=True,
            name="sessiontally",
        )

    def pinned_reads(self) -> AbstractContextManager[None]:
        return nullcontext()  # each read takes its own snapshot

    def change_token(self) -> object | None:
        return None  # telling that another instance committed would cost a round trip

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection in autocommit mode (each statement its own transaction)."""
        with map_postgres_errors(), self.pool.connection() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A pooled connection inside a transaction, committed when the block ends."""
        with map_postgres_errors(), self.pool.connection() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        self.pool.close()

    def migrate(self) -> int:
        """Apply the migrations not applied yet; on a Citus coordinator, also distribute
        every table (store/citus.py), after each migration, so that the next one runs on
        the distributed schema and an upgrade that adds a table needs no manual step."""
        return self._migrate()[0]

    def distribute(self) -> list[citus.Placement] | None:
        """``sessiontally citus distribute``: migrate, and on a Citus coordinator make
        every table a reference or distributed table (those already so are left); each
        table's placement, or None when the database is not a Citus coordinator."""
        return self._migrate()[1]

    def _migrate(self) -> tuple[int, list[citus.Placement] | None]:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            on_citus = citus.is_coordinator(conn)
            if on_citus:
                citus.prepare_transaction(conn)
            conn.execute(  # (PostgreSQL's column types: applied_at is 64-bit)
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
            done = {row[0] for row in _execute(conn, sql.MIGRATED_VERSIONS, ())}
            version = max(done, default=0)
            for number, script in _migrations():
                if number in done:
                    continue
                if on_citus:
                    for statement in citus.statements(script):
                        conn.execute(statement)
                    citus.distribute(conn)  # before the next migration reads or alters its tables
                else:
                    conn.execute(script)
                _execute(conn, sql.RECORD_MIGRATION, (number, int(time.time())))
                version = number
            placements = citus.distribute(conn) if on_citus else None
            sql.fill_write_keys(_SharedStatements(conn))
        return version, placements

    def _fetch_one(self, statement: str, params: Sequence[Any]) -> Row | None:
        with self._connection() as conn:
            return _execute(conn, statement, params).fetchone()

    def _fetch_all(self, statement: str, params: Sequence[Any]) -> list[Row]:
        with self._connection() as conn:
            return _execute(conn, statement, params).fetchall()

    def _shared_transaction(self) -> AbstractContextManager[SharedStatements]:
        return _shared(self._tx())

    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        """As ``SqlReads.event_names``, in code-point order whatever the database's collation
        (SQLite compares text by its bytes; PostgreSQL's default collation may be a
        language's, which would order ``e1`` before ``Signup``)."""
        rows = self._fetch_all(
            'SELECT name FROM event_names WHERE workspace_id = ? ORDER BY name COLLATE "C"'
            " LIMIT ? OFFSET ?",
            (workspace_id, limit, offset),
        )
        return [str(row[0]) for row in rows]

    # (The rate limiter's windows live in the store's database: a deleted workspace's go too.)
    _workspace_side_statements = ("DELETE FROM rate_windows WHERE workspace_id = ?",)

    def _lock_app(self, tx: SharedStatements, workspace_id: int, app_key: int) -> None:
        """Lock the app's row FOR UPDATE before anything else, as a recording batch locks
        it first (LOCK_APP_SHARE, LOCK_APP): batches holding it finish first; later ones
        wait, then find the row gone and raise AppGone, recording nothing."""
        tx.execute(LOCK_APP_FOR_DELETE, (workspace_id, app_key))

    def _lock_workspace(self, tx: SharedStatements, workspace_id: int) -> None:
        """Serialise per-workspace allocations and limits, and a zone change with the
        recording transactions (the workspace's advisory lock, exclusive; the SQLite
        engine's BEGIN IMMEDIATE locks the whole database instead)."""
        tx.execute(LOCK_WORKSPACE, (workspace_id,))

    # ---------------------------------------------------------------- workspaces

    def create_workspace(self, name: str, time_zone: str, rate_limit: int) -> Workspace:
        with self._tx() as conn:  # a taken name: DuplicateName (map_postgres_errors)
            # (Per engine: PostgreSQL gives the new id through RETURNING.)
            (workspace_id,) = one_row(conn.execute(
                "INSERT INTO workspaces (name, time_zone, rate_limit, created_at)"
                " VALUES (%s, %s, %s, %s) RETURNING workspace_id",
                (name, time_zone, rate_limit, int(time.time())),
            ))
        return Workspace(workspace_id, name, time_zone, rate_limit)

    # ------------------------------------------------------------------ sessions

    def record_sessions(
        self, workspace_id: int, sessions: Sequence[NewSession], classify: Classifier | None = None
    ) -> RecordOutcome:
        unique: dict[str, NewSession] = {}
        for session in sessions:
            unique.setdefault(session.session_id, session)
        ordered = sorted(unique.values(), key=lambda s: s.session_id)
        with self._tx() as conn:
            # The batch's apps first (the lock order: apps, users, the workspace's share
            # lock, KPI days, rollup): deleted since the request resolved them, AppGone.
            sql.require_apps(_SharedStatements(conn), workspace_id,
                             [s.app_key for s in ordered], LOCK_APP_SHARE)
            # (Per engine: one statement over arrays, and RETURNING says which rows went in;
            # SQLite inserts row by row and reads each row's change count.)
            inserted = conn.execute(
                "INSERT INTO sessions (workspace_id, session_id, external_id, app_key,"
                " started_at, ended_at, segment_keys)"
                " SELECT %s, *, '' FROM unnest(%s::text[], %s::text[], %s::int[], %s::bigint[],"
                " %s::bigint[]) ORDER BY 1, 2"
                " ON CONFLICT (workspace_id, session_id) DO NOTHING RETURNING session_id",
                (
                    workspace_id,
                    [s.session_id for s in ordered],
                    [s.external_id for s in ordered],
                    [s.app_key for s in ordered],
                    [s.started_at for s in ordered],
                    [s.ended_at for s in ordered],
                ),
            ).fetchall()
            new_ids = {row[0] for row in inserted}
            fresh = [s for s in ordered if s.session_id in new_ids]
            segments = self._classify(conn, workspace_id, fresh, classify) if classify else None
            tx = _SharedStatements(conn)
            if segments:
                tx.executemany(sql.SET_SESSION_SEGMENTS,
                               sql.session_segment_rows(workspace_id, fresh, segments))
            starts = [(s.app_key, s.external_id, s.started_at, 1) for s in fresh]
            if starts:
                zone = _lock_days(tx, workspace_id, sorted({s.external_id for s in fresh}))
                kpis.upkeep(tx, workspace_id, zone, starts)
            rows = rollup_increments(fresh, segments)
            if rows:
                apps, segs, quarters, counts = (list(column) for column in zip(*rows, strict=True))
                conn.execute(
                    "INSERT INTO session_counts (workspace_id, app_key, segment_key, quarter, sessions)"
                    " SELECT %s, * FROM unnest(%s::int[], %s::int[], %s::bigint[], %s::bigint[])"
                    " ON CONFLICT (workspace_id, app_key, segment_key, quarter)"
                    " DO UPDATE SET sessions = session_counts.sessions + excluded.sessions",
                    (workspace_id, apps, segs, quarters, counts),
                )
                coarse = coarse_increments(rows)
                apps, segs, grains, firsts, counts = (list(c) for c in zip(*coarse, strict=True))
                conn.execute(
                    "INSERT INTO session_counts_coarse (workspace_id, app_key, segment_key, grain,"
                    " first_quarter, sessions)"
                    " SELECT %s, * FROM unnest(%s::int[], %s::int[], %s::int[], %s::bigint[],"
                    " %s::bigint[])"
                    " ON CONFLICT (workspace_id, app_key, segment_key, grain, first_quarter)"
                    " DO UPDATE SET sessions = session_counts_coarse.sessions + excluded.sessions",
                    (workspace_id, apps, segs, grains, firsts, counts),
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
        unique: dict[str, NewEvent] = {}
        for event in events:
            unique.setdefault(event.message_id, event)
        ordered = sorted(unique.values(), key=lambda e: e.message_id)
        with self._tx() as conn:
            tx = _SharedStatements(conn)
            # One batch of an app at a time, so that two never derive the same person's
            # sessions from the same stored ones (the hour's counter row alone would let
            # batches on either side of an hour boundary through together). Deleted since
            # the request resolved it: AppGone, nothing recorded.
            sql.require_apps(tx, workspace_id, [app.app_key], LOCK_APP)
            derived.take_messages(tx, workspace_id, app, len(events), now_us)
            # (Per engine: one statement over arrays, and RETURNING says which rows went in.)
            inserted = conn.execute(
                "INSERT INTO events (workspace_id, app_key, message_id, type, event, person,"
                " user_id, occurred_at, received_at, segment_keys)"
                " SELECT %s, %s, *, '' FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::text[], %s::bigint[], %s::bigint[]) ORDER BY 3"
                " ON CONFLICT (workspace_id, app_key, message_id) DO NOTHING RETURNING message_id",
                (
                    workspace_id,
                    app.app_key,
                    [e.message_id for e in ordered],
                    [e.type for e in ordered],
                    [e.event for e in ordered],
                    [e.person for e in ordered],
                    [e.user_id for e in ordered],
                    [e.occurred_at for e in ordered],
                    [e.received_at for e in ordered],
                ),
            ).fetchall()
            new_ids = {row[0] for row in inserted}
            fresh = [e for e in ordered if e.message_id in new_ids]
            changes = user_updates([e.message_id for e in fresh]) if user_updates else None
            # The users are locked before the rollup rows, as record_sessions locks them
            # (no lock cycle), and written after the sessions are classified: a batch's
            # traits apply to the sessions of later batches.
            current = _lock_users(conn, workspace_id, changes[0]) if changes else {}
            derived.derive(tx, workspace_id, app, fresh, classify, _lock_days)
            if changes:
                _write_users(conn, workspace_id, changes[1](current), now_us)
        return RecordOutcome(recorded=len(fresh), duplicates=len(events) - len(fresh))

    def erase_user(
        self, workspace_id: int, external_id: str, classify: Classifier | None = None
    ) -> bool:
        with self._tx() as conn:

            def lock_apps(tx: SharedStatements, workspace_id: int, apps: Sequence[int],
                          external_id: str) -> None:
                # Every app's row, in key order, as recording an app's events locks its own:
                # no batch derives sessions meanwhile, and no event links another
                # anonymous person to the user. Then the user, as recording locks users.
                for app_key in apps:
                    tx.execute(LOCK_APP, (workspace_id, app_key))
                _lock_users(conn, workspace_id, [external_id])

            return erasure.erase(_SharedStatements(conn), workspace_id, external_id, classify,
                                 lock_apps, _lock_days)

    @staticmethod
    def _classify(
        conn: Connection,
        workspace_id: int,
        fresh: Sequence[NewSession],
        classify: Classifier,
    ) -> list[Sequence[int]] | None:
        """Segment keys per fresh session. The users' rows are read FOR SHARE, so an
        attribute update of the same users waits for this batch (or this batch for it):
        membership is the user's at the moment the session is recorded."""
        tracked = [
            TrackedSegment(key, filter_json)
            for key, filter_json in _execute(conn, sql.TRACKED_SEGMENTS, (workspace_id,))
        ]
        if not tracked or not fresh:
            return None
        users = sorted({s.external_id for s in fresh})
        # (Per engine: one array parameter and row locks; SQLite reads IN (...) chunks
        # under its database lock.)
        stored: dict[str, str] = dict(
            conn.execute(
                "SELECT external_id, attributes FROM users WHERE workspace_id = %s"
                " AND external_id = ANY(%s) ORDER BY external_id FOR SHARE",
                (workspace_id, users),
            ).fetchall()
        )
        matches = classify(tracked, users, stored)
        return [matches.get(s.external_id, ()) for s in fresh]

    # --------------------------------------------------------- users and segments

    def update_users(
        self, workspace_id: int, external_ids: Sequence[str], update: UserUpdater, now: int
    ) -> None:
        with self._tx() as conn:
            current = _lock_users(conn, workspace_id, external_ids)
            _write_users(conn, workspace_id, update(current), now)

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
        with self._shared_transaction() as tx:
            self._lock_workspace(tx, workspace_id)
            if analytics:
                sql.check_tracking_room(one_row(tx.execute(sql.COUNT_TRACKED, (workspace_id,)))[0])
            (key,) = one_row(tx.execute(sql.NEXT_SEGMENT_KEY, (workspace_id, workspace_id)))
            # (The shared INSERT, and the row back through RETURNING: no second read.)
            row = one_row(tx.execute(sql.INSERT_SEGMENT + f" RETURNING {SEGMENT_COLUMNS}", (
                workspace_id, key, segment_id, name, description, sql.segment_tags(tags),
                filter_json, analytics, now if analytics else None, now, now)))
        return segment_from_row(row)

    def count_by_quarters(
        self, workspace_id: int, app_key: int, segment_key: int, boundaries: Sequence[int]
    ) -> list[int]:
        """Sessions per bucket, from the coarsest rollup level that fits each piece (one
        statement over arrays; the SQLite engine's plan differs)."""
        pieces = plan_series_read(tuple(boundaries))
        totals = [0] * (len(boundaries) - 1)
        if not pieces:
            return totals
        buckets, grains, firsts, ends = (list(column) for column in zip(*pieces, strict=True))
        key = (workspace_id, app_key, segment_key)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT pieces.i, SUM(CASE WHEN pieces.g = 1 THEN (SELECT SUM(c.sessions)"
                " FROM session_counts c WHERE c.workspace_id = %s AND c.app_key = %s"
                " AND c.segment_key = %s AND c.quarter >= pieces.lo AND c.quarter < pieces.hi)"
                " ELSE (SELECT SUM(c.sessions) FROM session_counts_coarse c"
                " WHERE c.workspace_id = %s AND c.app_key = %s AND c.segment_key = %s"
                " AND c.grain = pieces.g"
                " AND c.first_quarter >= pieces.lo AND c.first_quarter < pieces.hi) END)"
                " FROM unnest(%s::int[], %s::int[], %s::bigint[], %s::bigint[])"
                " AS pieces(i, g, lo, hi) GROUP BY pieces.i",
                (*key, *key, buckets, grains, firsts, ends),
            ).fetchall()
        for i, total in rows:
            totals[i] = int(total or 0)
        return totals


def _lock_users(conn: Connection, workspace_id: int, external_ids: Sequence[str]) -> dict[str, str]:
    """Lock the users (existing or not) for this transaction; the stored attributes (JSON
    text) of those that exist."""
    ids = sorted(set(external_ids))
    # FOR UPDATE cannot lock a user that does not exist yet: two requests creating the same
    # user would each start from no attributes and the second would overwrite the first. A
    # transaction-level advisory lock per user (taken in key order, so concurrent batches
    # cannot deadlock) serialises them.
    conn.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"
        " hashtextextended(%s::text || '/' || e, 0) AS k FROM unnest(%s::text[]) AS e"
        " ORDER BY k OFFSET 0) AS keys",
        (workspace_id, ids),
    )
    return dict(
        conn.execute(
            "SELECT external_id, attributes FROM users WHERE workspace_id = %s"
            " AND external_id = ANY(%s) ORDER BY external_id FOR UPDATE",
            (workspace_id, ids),
        ).fetchall()
    )


def _write_users(conn: Connection, workspace_id: int, attributes: Mapping[str, str], now: int) -> None:
    """Store each user's new attributes (JSON text); the users are locked (``_lock_users``)."""
    changed = sorted(attributes.items())
    if changed:
        # (Per engine: one statement over arrays; SQLite runs executemany.)
        conn.execute(
            "INSERT INTO users (workspace_id, external_id, attributes, updated_at)"
            " SELECT %s, e, a, %s FROM unnest(%s::text[], %s::text[]) AS u(e, a)"
            " ON CONFLICT (workspace_id, external_id)"
            " DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at",
            (workspace_id, now, [e for e, _ in changed], [t for _, t in changed]),
        )
