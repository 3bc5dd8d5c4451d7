"""The embedded store: one SQLite file in WAL mode, shared safely by threads and processes.

Durability: ``synchronous=FULL`` makes every commit fsync the WAL, so what a request
acknowledged survives a crash of the process and a power cut. Writers take the database
lock up front (``BEGIN IMMEDIATE``), so the read-then-insert of a batch cannot race with
another process recording the same session ids.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from importlib import resources
from operator import attrgetter
from pathlib import Path
from typing import Any, ClassVar

import orjson

from .base import (
    MAX_TRACKED_SEGMENTS,
    App,
    Classifier,
    DuplicateNameError,
    NewSession,
    RecordOutcome,
    Segment,
    TrackedSegment,
    TrackingLimitError,
    UserUpdater,
    Workspace,
)
from .group_commit import GroupCommit
from .rollup import DAY, HOUR, QUARTER, coarse_increments, plan_series_read, rollup_increments
from .sql import SEGMENT_COLUMNS, SqlReads
from .write_turns import TurnTimeout, WriteTurns

BUSY_TIMEOUT_S = 30.0
LOOP_BUSY_TIMEOUT_MS = 50  # an event loop's reads: then the request moves to a thread
# Page cache: 8 MiB per reading connection (one per worker thread): the hot pages
# (rollup, keys, the top of the session index) fit; the OS caches the rest. 64 MiB for
# the one writer of a process: a transaction's dirty pages must fit, else SQLite spills
# them to the WAL mid-transaction and reads them back. Random ids dirty about one page per
# session, and group commit and `import` write 10,000 to 50,000 sessions a transaction:
# 64 MiB inserted 1.2x (10,000) and 1.3x (50,000) the rows/s of 8 MiB (bench/RESULTS.md).
READ_CACHE_KIB, WRITER_CACHE_KIB = 8192, 65_536
READ_CACHE_ENTRIES = 512  # answers per connection; emptied whenever the database changes
WAL_CHECKPOINT_PAGES = 100_000  # about 400 MB of WAL between checkpoints (see _conn)
_IN_CHUNK = 500  # values per IN (...) lookup (well under SQLite's 32766 parameters)
# From this many sessions a batch is inserted in session-id order (see _insert_new): at
# 50,000 a transaction that went 1.2x faster; at 10,000 and 1,000 it changed nothing.
SORTED_INSERT_MIN_ROWS = 20_000
_INSERT_NEW_SESSION = (
    "INSERT INTO sessions (workspace_id, session_id, external_id, app_key, started_at, ended_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, session_id) DO NOTHING"
)
_USERS_IN = (
    "SELECT external_id, attributes FROM users WHERE workspace_id = ? AND external_id IN ({marks})"
)


def _rows_in(
    conn: sqlite3.Connection, sql: str, workspace_id: int, values: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` (with an ``IN ({marks})`` for ``values``) in chunks of _IN_CHUNK."""
    for begin in range(0, len(values), _IN_CHUNK):
        chunk = values[begin : begin + _IN_CHUNK]
        yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), (workspace_id, *chunk))


_IN_MEMORY = ("", ":memory:")  # paths of a private database: one connection, one thread
WAL_INDEX_HEADER_BYTES = 48  # the first copy of the WAL-index header


class _WalIndexFiles:
    """Read-only descriptors of ``-shm`` files (WAL indexes), one per file per process,
    shared by every SqliteStore connection to it and closed when the last one closes.

    Closing *any* descriptor of a file drops every POSIX lock the process holds on it,
    SQLite's own included (its shared "in use" lock on the WAL index, its read-mark and
    writer locks). So a descriptor is closed only once no connection of this process to
    the database is left; the process must not hold other SQLite connections to it
    (the service opens databases only through SqliteStore). While one is open, the file
    can be neither deleted nor replaced: that takes an exclusive lock on the database,
    which an open WAL connection's shared lock prevents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, list[int]] = {}  # real path of the -shm: [descriptor, users]

    def acquire(self, conn: sqlite3.Connection, path: str, journal_mode: str) -> int | None:
        """The descriptor for ``conn``'s database (in ``journal_mode``), counted as used by
        ``conn`` until ``release``. None when there is no such file (not WAL, a database
        in memory)."""
        if journal_mode.lower() != "wal" or path in ("", ":memory:"):
            return None
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # a read: conn holds the WAL index
        # Beside the real file: SQLite follows a symbolic link to the database.
        shm = f"{os.path.realpath(path)}-shm"
        with self._lock:
            entry = self._open.get(shm)
            if entry is None:
                try:
                    entry = [os.open(shm, os.O_RDONLY | os.O_CLOEXEC), 0]
                except OSError:
                    return None
                self._open[shm] = entry
            entry[1] += 1
            return entry[0]

    def release(self, descriptor: int) -> None:
        """One connection using ``descriptor`` is closed; close it after the last."""
        with self._lock:
            for shm, entry in self._open.items():
                if entry[0] == descriptor:
                    entry[1] -= 1
                    if entry[1] == 0:
                        os.close(descriptor)
                        del self._open[shm]
                    return


_wal_index_files = _WalIndexFiles()


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("sessiontally.store") / "migrations" / "sqlite"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


class SqliteStore(SqlReads):
    """Store on a SQLite file. One connection per thread; safe across worker processes."""

    reads_never_block: ClassVar[bool] = True  # WAL: a reader never waits for a writer
    # What a read on the event loop raises when the database stays busy past the loop
    # connection's short timeout (rare in WAL: e.g. while another process recovers it).
    busy_errors = (sqlite3.OperationalError,)

    def __init__(self, path: str | Path, read_cache: int = READ_CACHE_ENTRIES) -> None:
        self.path = str(path)
        # (In memory, reads share the writer's connection, whose data_version does not
        # move for its own commits: no read cache.)
        self.read_cache_entries = 0 if self.path in _IN_MEMORY else read_cache
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._wal_indexes: list[int] = []  # descriptors of the -shm file (see _read_cache)
        self._lock = threading.Lock()
        # Every write of this process goes through one connection (see _write).
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()
        self._turns: WriteTurns | None = None  # ... and takes turns with other processes
        # Concurrent batches of this process share one transaction and one commit.
        self._group: GroupCommit[sqlite3.Connection] = GroupCommit(
            self._write, lambda conn, statement: conn.execute(statement)
        )

    # ------------------------------------------------------------------ plumbing

    def _connect(self, cache_kib: int = READ_CACHE_KIB) -> tuple[sqlite3.Connection, str]:
        """A new connection with the store's settings, and its journal mode."""
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
            cached_statements=256,
        )
        (journal_mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{cache_kib}")
        # Checkpoint the WAL every ~400 MB instead of every 4 MB (SQLite's default):
        # batches of random session ids dirty about one page per session, and a page
        # written by many commits between two checkpoints is copied back only once.
        # Measured: 10,000 pages gave ~1.3x the default's sessions/s, 100,000 another
        # 1.2x over HTTP (bench/RESULTS.md); the cost is WAL disk space and a longer
        # recovery after a crash (docs/operations.md).
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        return conn, str(journal_mode)

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.path in _IN_MEMORY:  # one connection is the whole database
                self._local.conn, self._local.wal_index = self.writer(), None
                return self._local.conn
            conn, journal_mode = self._connect()
            with self._lock:
                self._all.append(conn)
            self._local.conn = conn
            self._local.wal_index = None
            if self.read_cache_entries:
                wal_index = _wal_index_files.acquire(conn, self.path, journal_mode)
                if wal_index is not None:
                    with self._lock:
                        self._wal_indexes.append(wal_index)
                    self._local.wal_index = wal_index
        return conn

    def writer(self) -> sqlite3.Connection:
        """The one connection this process writes through (writes: only under _write)."""
        if self._writer is None:
            with self._lock:  # (made once per process: holding the lock meanwhile is fine)
                if self._writer is None:
                    if self._turns is None and self.path not in _IN_MEMORY:  # (kept if connect fails)
                        self._turns = WriteTurns(self.path, BUSY_TIMEOUT_S)
                    self._writer = self._connect(WRITER_CACHE_KIB)[0]
                    self._all.append(self._writer)
        return self._writer

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the writer connection, one thread at a time.

        One writer per process, not one per thread: SQLite empties a connection's page
        cache whenever another connection has committed since its last transaction, so
        writers taking turns (the thread pool hands batches to any thread) each began
        with a cold cache and re-read the session index's pages from the OS
        (bench/RESULTS.md). The writer only ever sees its own commits, unless another
        process writes too. Readers keep their own connections: WAL lets them read
        while the writer writes, and their read caches notice its commits through
        data_version like any other connection's. Processes take turns
        (store/write_turns.py) instead of polling SQLite's lock."""
        if getattr(self._local, "writing", False):  # (it would wait for itself for good)
            raise RuntimeError("a write inside a write transaction of the same store")
        conn = self.writer()
        if not self._writer_lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise sqlite3.OperationalError("database is locked (this process's writer stayed busy)")
        self._local.writing = True
        try:
            with ExitStack() as turn:
                if self._turns is not None:
                    try:
                        turn.enter_context(self._turns.turn())
                    except TurnTimeout:
                        raise sqlite3.OperationalError("database is locked (no write turn in time)") from None
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # (a failed COMMIT may leave it open: the next
                        conn.execute("ROLLBACK")  # writer must not find it so)
                    raise
        finally:
            self._local.writing = False
            self._writer_lock.release()

    def _read_cache(
        self, conn: sqlite3.Connection, at_request_start: bool = False
    ) -> dict[tuple[Any, ...], Any] | None:
        """This connection's cache of read answers (series counts, key and workspace
        lookups), valid while no other connection of any process has committed:
        ``PRAGMA data_version`` says so exactly. None when off, or inside a transaction
        (whose reads may include its own uncommitted writes).

        The PRAGMA costs a read transaction, i.e. two ``fcntl`` locks, which over HTTP was
        a seventh of a cached request. So at the start of an event-loop request
        (``at_request_start``: no statement of this connection is open, so its next read
        sees the latest commit) it runs only when the WAL-index header (the first 48
        bytes of the ``-shm`` file, sqlite.org/walformat.html) differs from the one read
        before the last PRAGMA. Every commit rewrites that header (the frame count grows,
        or the salt changes when the WAL restarts) before COMMIT returns, so an unchanged
        header means no commit since. A header read while a commit is being published may
        be torn; it then differs, and the PRAGMA decides. Elsewhere (worker threads, where
        a caller might hold a statement open) the PRAGMA always decides, as it did."""
        if not self.read_cache_entries or conn.in_transaction:
            return None
        pinned = getattr(self._local, "pinned", None)
        if pinned is not None:
            return pinned
        cached = getattr(self._local, "reads", None)
        header = None
        wal_index = getattr(self._local, "wal_index", None)
        if at_request_start and wal_index is not None:
            header = os.pread(wal_index, WAL_INDEX_HEADER_BYTES, 0)
            if len(header) < WAL_INDEX_HEADER_BYTES:
                header = None  # not a WAL index (yet): never trusted
            elif (cached is not None and header == cached[2]
                  and len(cached[1]) < self.read_cache_entries):
                return cached[1]
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if cached is None or cached[0] != version or len(cached[1]) >= self.read_cache_entries:
            cached = (version, {}, header)
        elif header != cached[2]:
            cached = (version, cached[1], header)  # (a checkpoint restarted the WAL, say)
        self._local.reads = cached
        return cached[1]

    def pinned_reads(self) -> _PinnedReads:
        """Reads in this block (this thread) check ``data_version`` once, at its start:
        one request's lookups cost one PRAGMA, and see the database as of that instant
        (every commit acknowledged before it). Never hold it across an ``await``. For an
        event loop's thread: its connection waits at most LOOP_BUSY_TIMEOUT_MS for a
        lock from then on (busy_errors), and must not be used for writes."""
        return _PinnedReads(self)

    def close(self) -> None:
        # Not while a thread writes (its unlocks would meet a closed descriptor).
        writing = self._writer_lock.acquire(timeout=BUSY_TIMEOUT_S)
        try:
            self._close()
        finally:
            if writing:
                self._writer_lock.release()

    def _close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._writer = None
            if self._turns is not None:
                self._turns.close()
                self._turns = None
            for descriptor in self._wal_indexes:  # after the connections: see _WalIndexFiles
                _wal_index_files.release(descriptor)
            self._wal_indexes.clear()
        self._local = threading.local()

    def migrate(self) -> int:
        """Apply pending migrations (idempotent, safe when several processes start at once)."""
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            version = max(done, default=0)
            for number, sql in _migrations():
                if number in done:
                    continue
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (number, int(time.time())),
                )
                version = number
        return version

    def ping(self) -> bool:
        return self._conn().execute("SELECT 1").fetchone() == (1,)

    def _fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """One row; point lookups (keys, workspaces, apps, segments) repeat on every
        request, so they go through the read cache."""
        conn = self._conn()
        cache = self._read_cache(conn)
        if cache is None:
            return conn.execute(sql, params).fetchone()
        key = (sql, *params)
        row = cache.get(key)
        if row is None:
            row = conn.execute(sql, params).fetchone()
            if row is not None:  # misses (e.g. made-up keys) are not kept: they would flush it
                cache[key] = row  # rows are tuples: nothing a caller can change
        return row

    def _fetch_all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    def change_token(self) -> object | None:
        """This thread's read cache: a new one begins whenever any connection commits, so
        it stands for the data as this thread last saw them."""
        pinned = getattr(self._local, "pinned", None)  # (the common case, checked first)
        return pinned if pinned is not None else self._read_cache(self._conn())

    # ---------------------------------------------------------------- workspaces

    def create_workspace(self, name: str, time_zone: str, rate_limit: int) -> Workspace:
        with self._write() as conn:
            try:
                cursor = conn.execute(
                    "INSERT INTO workspaces (name, time_zone, rate_limit, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, time_zone, rate_limit, int(time.time())),
                )
            except sqlite3.IntegrityError:
                raise DuplicateNameError(f"a workspace named {name!r} already exists") from None
            workspace_id = cursor.lastrowid
        assert workspace_id is not None
        return Workspace(workspace_id, name, time_zone, rate_limit)

    # ---------------------------------------------------------------------- apps

    def create_app(self, workspace_id: int, app_id: str, name: str, platform: str | None) -> App:
        with self._write() as conn:
            (app_key,) = conn.execute(
                "SELECT COALESCE(MAX(app_key), 0) + 1 FROM apps WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO apps (workspace_id, app_key, app_id, name, platform, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (workspace_id, app_key, app_id, name, platform, int(time.time())),
            )
        return App(workspace_id, app_key, app_id, name, platform)

    # ------------------------------------------------------------------ API keys

    def create_key(
        self,
        workspace_id: int,
        name: str,
        key_hash: bytes,
        key_prefix: str,
        permissions: Sequence[str],
        allowed_ips: Sequence[str],
    ) -> int:
        with self._write() as conn:
            (key_id,) = conn.execute(
                "SELECT COALESCE(MAX(key_id), 0) + 1 FROM api_keys WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO api_keys (workspace_id, key_id, name, key_hash, key_prefix,"
                " permissions, allowed_ips, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    workspace_id,
                    key_id,
                    name,
                    key_hash,
                    key_prefix,
                    " ".join(permissions),
                    " ".join(allowed_ips),
                    int(time.time()),
                ),
            )
        return int(key_id)

    def revoke_key(self, workspace_id: int, key_hash: bytes | None, key_id: int | None) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ?"
                " AND (key_hash = ? OR key_id = ?) AND revoked_at IS NULL",
                (int(time.time()), workspace_id, key_hash, key_id),
            )
            return cursor.rowcount > 0

    def touch_key(self, workspace_id: int, key_id: int, seen_at: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE api_keys SET last_seen_at = ? WHERE workspace_id = ? AND key_id = ?",
                (seen_at, workspace_id, key_id),
            )

    # --------------------------------------------------------- users and segments

    def update_users(
        self, workspace_id: int, external_ids: Sequence[str], update: UserUpdater, now: int
    ) -> None:
        ids = sorted(set(external_ids))
        with self._write() as conn:
            current = dict(_rows_in(conn, _USERS_IN, workspace_id, ids))
            conn.executemany(
                "INSERT INTO users (workspace_id, external_id, attributes, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, external_id)"
                " DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at",
                [(workspace_id, ext, text, now) for ext, text in update(current).items()],
            )

    @staticmethod
    def _check_tracking_room(conn: sqlite3.Connection, workspace_id: int) -> None:
        (tracked,) = conn.execute(
            "SELECT COUNT(*) FROM segments WHERE workspace_id = ? AND analytics_enabled = 1",
            (workspace_id,),
        ).fetchone()
        if tracked >= MAX_TRACKED_SEGMENTS:
            raise TrackingLimitError(
                f"at most {MAX_TRACKED_SEGMENTS} segments per workspace may have analytics"
                " tracking on; turn one off first"
            )

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
        with self._write() as conn:
            if analytics:
                self._check_tracking_room(conn, workspace_id)
            (key,) = conn.execute(
                "SELECT COALESCE(MAX(segment_key), 0) + 1 FROM segments WHERE workspace_id = ?",
                (workspace_id,),
            ).fetchone()
            conn.execute(
                f"INSERT INTO segments ({SEGMENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workspace_id, key, segment_id, name, description, orjson.dumps(list(tags)).decode(),
                 filter_json, int(analytics), now if analytics else None, now, now),
            )
        segment = self.get_segment(workspace_id, segment_id)
        assert segment is not None
        return segment

    def set_segment_tracking(
        self, workspace_id: int, segment_id: str, enabled: bool, now: int
    ) -> Segment | None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT analytics_enabled FROM segments WHERE workspace_id = ? AND segment_id = ?",
                (workspace_id, segment_id),
            ).fetchone()
            if row is None:
                return None
            if bool(row[0]) != enabled:
                if enabled:
                    self._check_tracking_room(conn, workspace_id)
                conn.execute(
                    "UPDATE segments SET analytics_enabled = ?, updated_at = ?,"
                    " tracking_since = CASE WHEN ? THEN ? ELSE tracking_since END"
                    " WHERE workspace_id = ? AND segment_id = ?",
                    (int(enabled), now, int(enabled), now, workspace_id, segment_id),
                )
        return self.get_segment(workspace_id, segment_id)

    # ------------------------------------------------------------------ sessions

    def record_sessions(
        self, workspace_id: int, sessions: Sequence[NewSession], classify: Classifier | None = None
    ) -> RecordOutcome:
        """Record a batch in one transaction: new session ids are inserted and counted,
        known ones (earlier, or earlier in this batch) are duplicates. First write wins.
        Each new session also counts toward the tracked segments its user matches now."""
        return self._group.run(lambda conn: self._record(conn, workspace_id, sessions, classify))

    def _record(
        self,
        conn: sqlite3.Connection,
        workspace_id: int,
        sessions: Sequence[NewSession],
        classify: Classifier | None,
    ) -> RecordOutcome:
        fresh = self._insert_new(conn, workspace_id, sessions)  # a repeat in the batch is known
        segments = self._classify(conn, workspace_id, fresh, classify) if classify else None
        quarters = rollup_increments(fresh, segments)
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

    @staticmethod
    def _insert_new(
        conn: sqlite3.Connection, workspace_id: int, candidates: Sequence[NewSession]
    ) -> list[NewSession]:
        """Insert the sessions whose ids are not stored yet, and return them: one statement
        per row, whose change count says whether the row went in. (A lookup first and then
        an insert descends the session B-tree twice per row; an insert of the whole batch
        in a savepoint, undone when it met a known id, made SQLite journal every page it
        changed; a multi-row INSERT … RETURNING cost more in Python than it saved:
        bench/RESULTS.md.)

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

    def _classify(
        self,
        conn: sqlite3.Connection,
        workspace_id: int,
        fresh: Sequence[NewSession],
        classify: Classifier,
    ) -> list[Sequence[int]] | None:
        """Segment keys per fresh session, read inside the recording transaction so that
        membership is the user's at the moment the session is recorded."""
        tracked = [
            TrackedSegment(key, filter_json)
            for key, filter_json in conn.execute(
                "SELECT segment_key, filter FROM segments WHERE workspace_id = ?"
                " AND analytics_enabled = 1 ORDER BY segment_key",
                (workspace_id,),
            )
        ]
        if not tracked or not fresh:
            return None
        users = sorted({s.external_id for s in fresh})
        stored = dict(_rows_in(conn, _USERS_IN, workspace_id, users))
        matches = classify(tracked, users, stored)
        return [matches.get(s.external_id, ()) for s in fresh]

    def count_by_quarters(
        self, workspace_id: int, app_key: int, segment_key: int, boundaries: Sequence[int]
    ) -> list[int]:
        """Sessions in each ``[boundaries[i], boundaries[i+1])`` (quarter indexes), read
        from the coarsest rollup level that fits each piece (rollup.plan_series_read).
        Repeated reads are answered from a cache while the database is unchanged."""
        conn = self._conn()
        edges = tuple(boundaries)
        cache = self._read_cache(conn)
        if cache is None:
            return self._read_series(conn, workspace_id, app_key, segment_key, edges)
        key = ("series", workspace_id, app_key, segment_key, edges)
        totals = cache.get(key)
        if totals is None:
            totals = cache[key] = self._read_series(conn, workspace_id, app_key, segment_key, edges)
        return list(totals)

    @staticmethod
    def _read_series(
        conn: sqlite3.Connection, workspace_id: int, app_key: int, segment_key: int,
        boundaries: tuple[int, ...],
    ) -> list[int]:
        totals = [0] * (len(boundaries) - 1)  # a bucket may be empty (no pieces)
        by_grain: dict[int, list[int]] = {QUARTER: [], HOUR: [], DAY: []}
        for i, grain, first, end in plan_series_read(boundaries):
            by_grain[grain] += (i, first, end)
        shape = tuple(len(by_grain[grain]) // 3 for grain in (QUARTER, HOUR, DAY))
        if not any(shape):
            return totals
        params = (workspace_id, app_key, segment_key, *by_grain[QUARTER], *by_grain[HOUR], *by_grain[DAY])
        for i, total in conn.execute(_series_sql(*shape), params):
            totals[i] += int(total)
        return totals


@lru_cache(maxsize=256)
def _series_sql(quarters: int, hours: int, days: int) -> str:
    """One statement summing each piece of a series read: index range scans on the quarter
    rows, the hour rows and the day rows, each level's pieces in their own VALUES list
    (a grain taken from the list instead of a constant, a CASE or a GROUP BY each cost
    SQLite more than the rows: measured). ?1..?3 are the key."""
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


def _split_sql(script: str) -> list[str]:
    """Statements of a migration file (no semicolons inside our statements' literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class _PinnedReads:
    """``SqliteStore.pinned_reads``: a plain context manager (a generator-based one cost
    as much as the PRAGMA it wraps, on every cached request)."""

    __slots__ = ("store",)

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        store = self.store
        conn = store._conn()
        local = store._local
        if not getattr(local, "loop_reader", False):
            # This thread answers requests on an event loop: never wait 30 s there.
            conn.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_TIMEOUT_MS}")
            local.loop_reader = True
        local.pinned = store._read_cache(conn, at_request_start=True)

    def __exit__(self, *exc_info: object) -> None:
        self.store._local.pinned = None
