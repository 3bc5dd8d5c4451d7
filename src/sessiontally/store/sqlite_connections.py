"""The embedded store's connections: one SQLite file in WAL mode, shared safely by threads
and processes. No SQL of the data model lives here (that is ``store/sqlite.py``).

* One connection per thread for reads, with a cache of read answers that stays valid
  exactly while no connection of any process has committed (``PRAGMA data_version``, or
  an unchanged WAL-index header at the start of an event-loop request).
* One connection per process for writes (``SqliteConnections.write``): transactions take
  the database lock up front (``BEGIN IMMEDIATE``) and take turns with other processes
  (``store/write_turns.py``); concurrent batches share one commit (``store/group_commit.py``).
* Durability: ``synchronous=FULL`` makes every commit fsync the WAL, so what a request
  acknowledged survives a crash of the process and a power cut.
* Driver errors are translated here, at the engine boundary: a busy or locked database
  becomes ``errors.StoreBusy``, a file that cannot be opened or read
  ``errors.StoreUnavailable``, a taken workspace name or member e-mail
  ``errors.DuplicateName`` (``map_sqlite_errors``). Any other ``sqlite3`` error (a syntax
  error, a constraint) is a bug and propagates as it is.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..config import READ_CACHE
from ..errors import DuplicateName, SessiontallyError, StoreBusy, StoreUnavailable
from .group_commit import GroupCommit
from .write_turns import TurnTimeout, WriteTurns

BUSY_TIMEOUT_S = 30.0
LOOP_BUSY_TIMEOUT_MS = 50  # an event loop's reads: then the request moves to a thread
# Page cache: 8 MiB per reading connection (one per worker thread): the hot pages
# (rollup, keys, the top of the session index) fit; the OS caches the rest. 64 MiB for
# the one writer of a process: a transaction's dirty pages must fit, else SQLite spills
# them to the WAL mid-transaction and reads them back. Random ids dirty about one page per
# session, and group commit and `import` write 10,000 to 50,000 sessions a transaction.
READ_CACHE_KIB, WRITER_CACHE_KIB = 8192, 65_536
READ_CACHE_ENTRIES = READ_CACHE.default  # answers per connection; emptied whenever the database changes
WAL_CHECKPOINT_PAGES = 100_000  # about 400 MB of WAL between checkpoints (see _connect)
IN_MEMORY = ("", ":memory:")  # paths of a private database: one connection, one thread
WAL_INDEX_HEADER_BYTES = 48  # the first copy of the WAL-index header

T = TypeVar("T")
Row = tuple[Any, ...]

# ------------------------------------------------------------------- error translation

# Primary result codes (the low byte of sqlite_errorcode), sqlite.org/rescode.html.
# (SQLITE_LOCKED is not among them: without a shared cache, which the store never
# enables, it means a conflict inside one connection, i.e. a bug.)
_BUSY_CODES = frozenset({
    5,  # SQLITE_BUSY: another connection holds the lock (also BUSY_RECOVERY, BUSY_SNAPSHOT)
    15,  # SQLITE_PROTOCOL: WAL lock contention that outlasted SQLite's own retries
})
_UNAVAILABLE_CODES = frozenset({
    10,  # SQLITE_IOERR: the operating system failed a read, write or lock
    13,  # SQLITE_FULL: the disk is full
    14,  # SQLITE_CANTOPEN: the file (or its -wal, -shm, folder) cannot be opened
})
_DUPLICATE_WORKSPACE = "UNIQUE constraint failed: workspaces.name"
_DUPLICATE_MEMBER = "UNIQUE constraint failed: members.email"


def store_error(exc: sqlite3.Error) -> SessiontallyError | None:
    """The ``sessiontally.errors`` exception that ``exc`` stands for, or None when it is
    a bug to surface as it is (a syntax error, a violated constraint, a misuse)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    if isinstance(exc, sqlite3.OperationalError):
        if code & 0xFF in _BUSY_CODES:
            return StoreBusy(f"the database stayed locked ({exc})")
        if code & 0xFF in _UNAVAILABLE_CODES:
            return StoreUnavailable(f"the database cannot be read or written ({exc})")
    elif isinstance(exc, sqlite3.IntegrityError) and str(exc) == _DUPLICATE_WORKSPACE:
        return DuplicateName("a workspace of that name already exists")
    elif isinstance(exc, sqlite3.IntegrityError) and str(exc) == _DUPLICATE_MEMBER:
        return DuplicateName("a member with that e-mail already exists")
    return None


def _raise_store_error(exc: sqlite3.Error) -> NoReturn:
    """Raise what ``exc`` stands for (``store_error``), else ``exc`` itself."""
    mapped = store_error(exc)
    if mapped is None:
        raise exc
    raise mapped from exc


@contextmanager
def map_sqlite_errors() -> Iterator[None]:
    """``sqlite3`` errors raised inside leave as ``store_error`` says (the others as they
    are), like httpx's ``map_httpcore_exceptions``.

    The hot read paths (``read_cache``, ``fetch_one``, ``fetch_all``) use ``try`` and
    ``_raise_store_error`` instead: a ``with`` block costs two calls on every read, a
    ``try`` that raises nothing costs nothing."""
    try:
        yield
    except sqlite3.Error as exc:
        _raise_store_error(exc)


# ------------------------------------------------------------------------ WAL indexes


class _WalIndexFiles:
    """Read-only descriptors of ``-shm`` files (WAL indexes), one per file per process,
    shared by every connection of SqliteConnections to it and closed when the last one
    closes.

    Closing *any* descriptor of a file drops every POSIX lock the process holds on it,
    SQLite's own included (its shared "in use" lock on the WAL index, its read-mark and
    writer locks). So a descriptor is closed only once no connection of this process to
    the database is left; the process must not hold other SQLite connections to it
    (the service opens databases only through SqliteConnections). While one is open, the
    file can be neither deleted nor replaced: that takes an exclusive lock on the
    database, which an open WAL connection's shared lock prevents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, list[int]] = {}  # real path of the -shm: [descriptor, users]

    def acquire(self, conn: sqlite3.Connection, path: str, journal_mode: str) -> int | None:
        """The descriptor for ``conn``'s database (in ``journal_mode``), counted as used by
        ``conn`` until ``release``. None when there is no such file (not WAL, a database
        in memory)."""
        if journal_mode.lower() != "wal" or path in IN_MEMORY:
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


def _savepoint(conn: sqlite3.Connection, statement: str) -> None:
    conn.execute(statement)


# ------------------------------------------------------------------------ connections


class SqliteConnections:
    """The connections of one SQLite database in this process: one per thread for reads,
    one for writes. Safe across threads and worker processes."""

    def __init__(self, path: str | Path, read_cache: int = READ_CACHE_ENTRIES) -> None:
        self.path = str(path)
        # (In memory, reads share the writer's connection, whose data_version does not
        # move for its own commits: no read cache.)
        self.read_cache_entries = 0 if self.path in IN_MEMORY else read_cache
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._wal_indexes: list[int] = []  # descriptors of the -shm file (see read_cache)
        self._lock = threading.Lock()
        # Every write of this process goes through one connection (see write).
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()
        self._turns: WriteTurns | None = None  # ... and takes turns with other processes
        # Concurrent batches of this process share one transaction and one commit.
        self._group: GroupCommit[sqlite3.Connection] = GroupCommit(self.write, _savepoint)

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
        # written by many commits between two checkpoints is copied back only once. The
        # cost is WAL disk space and a longer recovery after a crash (docs/operations.md).
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        return conn, str(journal_mode)

    def reader(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with map_sqlite_errors():
                return self._open_reader()
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        if self.path in IN_MEMORY:  # one connection is the whole database
            writer = self.writer()
            self._local.conn, self._local.wal_index = writer, None
            return writer
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
        """The one connection this process writes through (writes: only under ``write``)."""
        if self._writer is None:
            # (Made once per process: holding the lock meanwhile is fine.)
            with self._lock, map_sqlite_errors():
                if self._writer is None:
                    if self._turns is None and self.path not in IN_MEMORY:  # (kept if connect fails)
                        self._turns = WriteTurns(self.path, BUSY_TIMEOUT_S)
                    self._writer = self._connect(WRITER_CACHE_KIB)[0]
                    self._all.append(self._writer)
        return self._writer

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the writer connection, one thread at a time.

        One writer per process, not one per thread: SQLite empties a connection's page
        cache whenever another connection has committed since its last transaction, so
        writers taking turns (the thread pool hands batches to any thread) would each
        begin with a cold cache and re-read the session index's pages from the OS. The
        writer only ever sees its own commits, unless another process writes too.
        Readers keep their own connections: WAL lets them read while the writer writes,
        and their read caches notice its commits through data_version like any other
        connection's. Processes take turns (store/write_turns.py) instead of polling
        SQLite's lock. StoreBusy when the lock, the turn or SQLite's lock did not come
        within BUSY_TIMEOUT_S."""
        if getattr(self._local, "writing", False):  # (it would wait for itself for good)
            raise RuntimeError("a write inside a write transaction of the same store")
        conn = self.writer()
        if not self._writer_lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise StoreBusy("the database stayed locked (this process's writer stayed busy)")
        self._local.writing = True
        try:
            with ExitStack() as turn:
                if self._turns is not None:
                    try:
                        turn.enter_context(self._turns.turn())
                    except TurnTimeout:
                        raise StoreBusy("the database stayed locked (no write turn in time)") from None
                with map_sqlite_errors():
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

    def write_grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in a write transaction that concurrent callers of this process share,
        committed once for all of them (store/group_commit.py): it may run twice, so it
        must depend only on the database."""
        with map_sqlite_errors():  # (a piece's own error reaches its caller through here)
            result: T = self._group.run(work)
        return result

    def read_cache(
        self, conn: sqlite3.Connection, at_request_start: bool = False
    ) -> dict[tuple[Any, ...], Any] | None:
        """This connection's cache of read answers (series counts, point lookups), valid
        while no other connection of any process has committed: ``PRAGMA data_version``
        says so exactly. None when off, or inside a transaction (whose reads may include
        its own uncommitted writes).

        The PRAGMA costs a read transaction, i.e. two ``fcntl`` locks, a large part of a
        cached request. So at the start of an event-loop request (``at_request_start``:
        no statement of this connection is open, so its next read sees the latest commit)
        it runs only when the WAL-index header (the first 48 bytes of the ``-shm`` file,
        sqlite.org/walformat.html) differs from the one read before the last PRAGMA.
        Every commit rewrites that header (the frame count grows, or the salt changes
        when the WAL restarts) before COMMIT returns, so an unchanged header means no
        commit since. A header read while a commit is being published may be torn; it
        then differs, and the PRAGMA decides. Elsewhere (worker threads, where a caller
        might hold a statement open) the PRAGMA always decides."""
        if not self.read_cache_entries or conn.in_transaction:
            return None
        local = self._local
        pinned: dict[tuple[Any, ...], Any] | None = getattr(local, "pinned", None)
        if pinned is not None:
            return pinned
        # (data_version, the answers, the WAL-index header read before that data_version)
        cached: tuple[int, dict[tuple[Any, ...], Any], bytes | None] | None = getattr(local, "reads", None)
        header = None
        wal_index = getattr(local, "wal_index", None)
        if at_request_start and wal_index is not None:
            header = os.pread(wal_index, WAL_INDEX_HEADER_BYTES, 0)
            if len(header) < WAL_INDEX_HEADER_BYTES:
                header = None  # not a WAL index (yet): never trusted
            elif (cached is not None and header == cached[2]
                  and len(cached[1]) < self.read_cache_entries):
                return cached[1]
        try:
            (version,) = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            _raise_store_error(exc)
        if cached is None or cached[0] != version or len(cached[1]) >= self.read_cache_entries:
            cached = (version, {}, header)
        elif header != cached[2]:
            cached = (version, cached[1], header)  # (a checkpoint restarted the WAL, say)
        local.reads = cached
        return cached[1]

    def fetch_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        """One row of ``sql``; point lookups (keys, workspaces, apps, segments) repeat on
        every request, so they go through the read cache."""
        conn = self.reader()
        cache = self.read_cache(conn)
        try:
            if cache is None:
                found: Row | None = conn.execute(sql, params).fetchone()
                return found
            key = (sql, *params)
            row: Row | None = cache.get(key)
            if row is None:
                row = conn.execute(sql, params).fetchone()
                if row is not None:  # misses (e.g. made-up keys) are not kept: they would flush it
                    cache[key] = row  # rows are tuples: nothing a caller can change
            return row
        except sqlite3.Error as exc:
            _raise_store_error(exc)

    def fetch_all(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Every row of ``sql``, read now (not from the cache)."""
        conn = self.reader()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            _raise_store_error(exc)

    def pinned_reads(self) -> _PinnedReads:
        """Reads in this block (this thread) check ``data_version`` once, at its start:
        one request's lookups cost one PRAGMA, and see the database as of that instant
        (every commit acknowledged before it). Never hold it across an ``await``. For an
        event loop's thread: its connection waits at most LOOP_BUSY_TIMEOUT_MS for a
        lock from then on (then StoreBusy), and must not be used for writes."""
        return _PinnedReads(self)

    def change_token(self) -> object | None:
        """This thread's read cache: a new one begins whenever any connection commits, so
        it stands for the data as this thread last saw them."""
        pinned = getattr(self._local, "pinned", None)  # (the common case, checked first)
        return pinned if pinned is not None else self.read_cache(self.reader())

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


class _PinnedReads:
    """``SqliteConnections.pinned_reads``: a plain context manager (a generator-based one
    costs as much as the PRAGMA it wraps, on every cached request)."""

    __slots__ = ("connections",)

    def __init__(self, connections: SqliteConnections) -> None:
        self.connections = connections

    def __enter__(self) -> None:
        connections = self.connections
        conn = connections.reader()
        local = connections._local
        if not getattr(local, "loop_reader", False):
            # This thread answers requests on an event loop: never wait 30 s there.
            conn.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_TIMEOUT_MS}")
            local.loop_reader = True
        local.pinned = connections.read_cache(conn, at_request_start=True)

    def __exit__(self, *exc_info: object) -> None:
        self.connections._local.pinned = None
