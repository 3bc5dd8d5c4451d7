"""Driver errors are translated at the engine boundary (store/sqlite_connections.py
``map_sqlite_errors``, store/postgres.py ``map_postgres_errors``): callers see only
``sessiontally.errors`` for what they can act on, and a bug's own error for a bug."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from db_support import free_port

from sessiontally.errors import Conflict, DuplicateName, StoreBusy, StoreUnavailable
from sessiontally.store import sqlite_connections
from sessiontally.store.base import NewSession, Store
from sessiontally.store.sqlite import SqliteStore
from sessiontally.store.sqlite_connections import LOOP_BUSY_TIMEOUT_MS, store_error
from sessiontally.store.write_turns import WriteTurns

_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
needs_ofd_locks = pytest.mark.skipif(_OFD_SETLK is None, reason="needs Linux's OFD locks")


# ------------------------------------------------------------------------ both engines


def test_a_taken_workspace_name_is_a_duplicate_name(store: Store) -> None:
    store.create_workspace("taken", "UTC", 10)
    with pytest.raises(DuplicateName) as refused:
        store.create_workspace("taken", "Europe/Paris", 20)
    assert isinstance(refused.value, Conflict) and "already exists" in refused.value.message
    assert store.create_workspace("free", "UTC", 10).name == "free"  # nothing left half done


# -------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A PostgreSQL store pointed at a port nobody listens on."""
    pytest.importorskip("psycopg_pool")
    from sessiontally.store import postgres

    monkeypatch.setattr(postgres, "POOL_TIMEOUT_S", 0.5)  # (instead of waiting 5 s a call)
    store = postgres.PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    try:
        yield store
    finally:
        store.close()


def test_an_unreachable_postgresql_is_unavailable_to_reads_and_writes(unreachable: Store) -> None:
    import psycopg

    calls = {
        "get_workspace": lambda: unreachable.get_workspace(1),
        "list_apps": lambda: unreachable.list_apps(1),
        "count_by_quarters": lambda: unreachable.count_by_quarters(1, 0, 0, [0, 96]),
        "create_workspace": lambda: unreachable.create_workspace("w", "UTC", 10),
        "record_sessions": lambda: unreachable.record_sessions(1, [NewSession("s", "u", 1, 0, None)]),
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailable) as refused:
            call()
        assert isinstance(refused.value.__cause__, psycopg.OperationalError), name


def test_only_known_postgresql_errors_are_translated() -> None:
    pytest.importorskip("psycopg_pool")
    import psycopg
    from psycopg_pool import PoolTimeout

    from sessiontally.store.postgres import map_postgres_errors

    with pytest.raises(StoreUnavailable), map_postgres_errors():
        raise PoolTimeout("no connection in time")
    with pytest.raises(StoreUnavailable), map_postgres_errors():
        raise psycopg.errors.AdminShutdown("the server is shutting down")
    for bug in (psycopg.errors.SyntaxError("SELEC"), psycopg.errors.UniqueViolation("apps"),
                psycopg.errors.UndefinedTable("no such table")):
        with pytest.raises(type(bug)), map_postgres_errors():  # a bug stays itself (a 500)
            raise bug


# ------------------------------------------------------------------------------ SQLite


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "errors.sqlite3")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _recovering(database: Path) -> Iterator[None]:
    """Another process recovering the WAL index, as after a crash: it holds the index's
    writer and recovery locks, and the index's header is not valid meanwhile. (Open-file-
    description locks conflict with SQLite's own locks even within this process. The
    descriptor stays open until the end: closing it would drop every POSIX lock this
    process holds on the file, SQLite's included.)"""
    fd = os.open(f"{database}-shm", os.O_RDWR)
    flock = struct.Struct("hhqqi4x")  # Linux's struct flock
    write_lock, recover_lock, is_init = 120, 122, 12  # sqlite.org/walformat.html
    original = os.pread(fd, 1, is_init)
    for byte in (write_lock, recover_lock):
        fcntl.fcntl(fd, _OFD_SETLK, flock.pack(fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0))
    os.pwrite(fd, b"\0", is_init)  # the header's two copies now differ
    try:
        yield
    finally:
        os.pwrite(fd, original, is_init)
        for byte in (write_lock, recover_lock):
            fcntl.fcntl(fd, _OFD_SETLK, flock.pack(fcntl.F_UNLCK, os.SEEK_SET, byte, 1, 0))


@needs_ofd_locks
def test_a_locked_database_is_busy_within_the_loop_timeout_in_pinned_reads(tmp_path: Path) -> None:
    database = tmp_path / "locked.sqlite3"
    store = SqliteStore(database)
    store.migrate()
    workspace = store.create_workspace("w", "UTC", 10)
    with store.pinned_reads():  # this thread is now an event loop's reader
        assert store.get_workspace(workspace.workspace_id) == workspace
    try:
        with _recovering(database):
            started = time.monotonic()
            with pytest.raises(StoreBusy) as refused, store.pinned_reads():
                store.count_raw_sessions(workspace.workspace_id)
            waited = time.monotonic() - started
            assert isinstance(refused.value.__cause__, sqlite3.OperationalError)
            assert LOOP_BUSY_TIMEOUT_MS / 1000 <= waited < 2.0  # not the 30 s of a worker thread
        with store.pinned_reads():  # the lock is gone: reads go on
            assert store.count_raw_sessions(workspace.workspace_id) == 0
    finally:
        store.close()


@needs_ofd_locks
def test_no_write_turn_in_time_is_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_connections, "BUSY_TIMEOUT_S", 0.2)
    store = SqliteStore(tmp_path / "turns.sqlite3")
    store.migrate()
    other = WriteTurns(store.path, 30)  # another process, writing for long
    try:
        with other.turn(), pytest.raises(StoreBusy):
            store.create_workspace("w", "UTC", 10)
        assert store.create_workspace("w", "UTC", 10).name == "w"
    finally:
        other.close()
        store.close()


def test_a_database_locked_by_another_writer_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connections, "BUSY_TIMEOUT_S", 0.2)
    store = SqliteStore(tmp_path / "writer.sqlite3")
    store.migrate()
    shell = sqlite3.connect(store.path, isolation_level=None)  # e.g. the sqlite3 shell
    try:
        shell.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy):
            store.record_sessions(1, [NewSession("s", "u", 1, 0, None)])
        with pytest.raises(StoreBusy):
            store.create_workspace("w", "UTC", 10)
        shell.execute("ROLLBACK")
        assert store.create_workspace("w", "UTC", 10).name == "w"
    finally:
        shell.close()
        store.close()


def test_a_database_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "no-such-folder" / "db.sqlite3")
    try:
        with pytest.raises(StoreUnavailable):
            store.get_workspace(1)
        with pytest.raises(StoreUnavailable):
            store.migrate()
    finally:
        store.close()


def test_sqlite_bugs_are_not_translated(sqlite_store: SqliteStore) -> None:
    """A syntax error or a violated constraint is a bug: it must surface as a 500, not
    pass for a database that is down (503)."""
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        sqlite_store.connections.fetch_all("SELEC 1", ())
    with pytest.raises(sqlite3.OperationalError, match="no such table"), \
            sqlite_store.connections.write() as conn:
        conn.execute("UPDATE no_such_table SET x = 1")
    with pytest.raises(sqlite3.IntegrityError), sqlite_store.connections.write() as conn:
        conn.execute("INSERT INTO apps (workspace_id, app_key, app_id, name, created_at)"
                     " VALUES (424242, 1, 'a', 'a', 0)")  # no such workspace


def _sqlite_error(kind: type[sqlite3.Error], message: str, code: int | None) -> sqlite3.Error:
    exc = kind(message)
    if code is not None:
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]  # (as the driver sets it)
    return exc


@pytest.mark.parametrize(("kind", "message", "code", "expected"), [
    (sqlite3.OperationalError, "database is locked", 5, StoreBusy),
    (sqlite3.OperationalError, "database is locked", 261, StoreBusy),  # BUSY_RECOVERY
    (sqlite3.OperationalError, "locking protocol", 15, StoreBusy),
    (sqlite3.OperationalError, "disk I/O error", 10, StoreUnavailable),
    (sqlite3.OperationalError, "disk I/O error", 522, StoreUnavailable),  # IOERR_SHORT_READ
    (sqlite3.OperationalError, "database or disk is full", 13, StoreUnavailable),
    (sqlite3.OperationalError, "unable to open database file", 14, StoreUnavailable),
    (sqlite3.IntegrityError, "UNIQUE constraint failed: workspaces.name", 2067, DuplicateName),
    (sqlite3.OperationalError, 'near "SELEC": syntax error', 1, None),
    (sqlite3.OperationalError, "attempt to write a readonly database", 8, None),
    (sqlite3.OperationalError, "database table is locked", 6, None),  # within one connection
    (sqlite3.OperationalError, "database is locked", None, None),  # not from SQLite itself
    (sqlite3.IntegrityError, "UNIQUE constraint failed: apps.workspace_id, apps.app_id", 2067, None),
    (sqlite3.DatabaseError, "database disk image is malformed", 11, None),
])
def test_the_sqlite_error_table(
    kind: type[sqlite3.Error], message: str, code: int | None, expected: type[Exception] | None
) -> None:
    mapped = store_error(_sqlite_error(kind, message, code))
    if expected is None:
        assert mapped is None
    else:
        assert type(mapped) is expected
