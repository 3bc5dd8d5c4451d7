"""The embedded store's read cache (store/sqlite_connections.py): series answers and point lookups
(keys, workspaces), valid exactly while no connection has committed, whichever
connection, thread or process wrote."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sessiontally.store.base import NewSession
from sessiontally.store.rollup import QUARTER_US
from sessiontally.store.sqlite import SqliteStore

APP_ID = "00000000-0000-4000-8000-000000000001"
Q0 = 1_900_000  # a quarter index in 2024
EDGES = [Q0 + 96 * k for k in range(4)]  # three UTC days


@pytest.fixture
def opened(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "cache.sqlite3"
    store = SqliteStore(path)
    store.migrate()
    ws = store.create_workspace("w", "UTC", 1000)
    app = store.create_app(ws.workspace_id, APP_ID, "a", None)
    yield store, ws.workspace_id, app.app_key, path
    store.close()


def _add(store: SqliteStore, ws: int, app: int, sid: str, quarter: int = Q0 + 100) -> None:
    store.record_sessions(ws, [NewSession(sid, "u", app, quarter * QUARTER_US, None)])


def _read(store: SqliteStore, ws: int) -> list[int]:
    return store.count_by_quarters(ws, 0, 0, EDGES)


def test_repeated_reads_are_served_from_the_cache(opened) -> None:  # type: ignore[no-untyped-def]
    store, ws, app, _ = opened
    _add(store, ws, app, "a")
    assert _read(store, ws) == [0, 1, 0]
    calls = []
    original = store._read_series
    store._read_series = lambda *args: calls.append(args) or original(*args)  # type: ignore[method-assign]
    assert _read(store, ws) == [0, 1, 0]
    assert calls == []  # answered from the cache
    answer = _read(store, ws)
    answer[0] = 99  # a caller changing its list does not change the cache
    assert _read(store, ws) == [0, 1, 0]


def test_a_write_through_the_same_connection_empties_it(opened) -> None:  # type: ignore[no-untyped-def]
    store, ws, app, _ = opened
    assert _read(store, ws) == [0, 0, 0]
    _add(store, ws, app, "a")  # same thread, same connection: data_version does not move
    assert _read(store, ws) == [0, 1, 0]


def test_writes_by_another_thread_and_another_store_are_seen(opened) -> None:  # type: ignore[no-untyped-def]
    store, ws, app, path = opened
    assert _read(store, ws) == [0, 0, 0]
    thread = threading.Thread(target=_add, args=(store, ws, app, "t"))
    thread.start()
    thread.join()
    assert _read(store, ws) == [0, 1, 0]
    other = SqliteStore(path)  # another connection, as another process would have
    try:
        _add(other, ws, app, "o", Q0 + 5)
    finally:
        other.close()
    assert _read(store, ws) == [1, 1, 0]


def test_the_cache_can_be_turned_off_and_is_bounded(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "off.sqlite3", read_cache=0)
    store.migrate()
    ws = store.create_workspace("w", "UTC", 1000).workspace_id
    calls = []
    original = store._read_series
    store._read_series = lambda *args: calls.append(args) or original(*args)  # type: ignore[method-assign]
    _read(store, ws)
    _read(store, ws)
    assert len(calls) == 2
    store.close()
    small = SqliteStore(tmp_path / "small.sqlite3", read_cache=3)
    small.migrate()
    ws = small.create_workspace("w", "UTC", 1000).workspace_id
    for k in range(10):
        small.count_by_quarters(ws, 0, 0, [Q0, Q0 + k + 1])
        assert len(small.connections._local.reads[1]) <= 3
    small.close()


def test_a_revoked_key_is_refused_at_once_by_a_store_that_cached_it(opened) -> None:  # type: ignore[no-untyped-def]
    store, ws, _, path = opened
    from sessiontally import admin
    from sessiontally.errors import Unauthenticated
    from sessiontally.keys import hash_key
    from sessiontally.service import Service

    workspace = store.get_workspace(ws)
    key = admin.create_key(store, workspace, "k", ["sessions.data_series"]).key
    service = Service(store, _NoLimit())
    for _ in range(3):  # cached after the first
        assert service.authenticate(key, "127.0.0.1").key.name == "k"
    operator = SqliteStore(path)  # `sessiontally key revoke` in another process
    try:
        record = operator.find_key_by_hash(ws, hash_key(key))
        assert record is not None
        admin.revoke_key(operator, workspace, key)
    finally:
        operator.close()
    with pytest.raises(Unauthenticated):
        service.authenticate(key, "127.0.0.1")


def test_reads_never_see_or_keep_an_uncommitted_write(opened) -> None:  # type: ignore[no-untyped-def]
    """Writes go through the writer connection, reads through the thread's own: a read
    during a write transaction sees the last commit, and nothing of a rolled-back
    transaction is ever cached."""
    store, ws, _, _ = opened
    with pytest.raises(RuntimeError), store.connections.write() as conn:
        conn.execute("UPDATE workspaces SET name = 'renamed' WHERE workspace_id = ?", (ws,))
        seen = conn.execute("SELECT name FROM workspaces WHERE workspace_id = ?", (ws,)).fetchone()
        assert seen == ("renamed",)
        assert store.get_workspace(ws).name == "w"
        raise RuntimeError("roll back")
    assert store.get_workspace(ws).name == "w"
    with store.connections.write() as conn:
        conn.execute("UPDATE workspaces SET name = 'renamed' WHERE workspace_id = ?", (ws,))
    assert store.get_workspace(ws).name == "renamed"  # the reader's cache saw the commit


def test_every_thread_writes_through_one_connection(opened) -> None:  # type: ignore[no-untyped-def]
    """One writer connection per store, whichever thread writes: its page cache is not
    emptied by the commits of other connections of the same process."""
    store, ws, _, _ = opened
    used: list[object] = []

    def write() -> None:
        with store.connections.write() as conn:
            used.append(conn)
            conn.execute("UPDATE workspaces SET rate_limit = rate_limit + 1 WHERE workspace_id = ?", (ws,))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(used) == 8 and all(conn is store.connections.writer() for conn in used)
    assert store.connections.reader() is not store.connections.writer()


class _NoLimit:
    never_blocks = True

    def hit(self, workspace_id: int, limit: int, now: float):  # type: ignore[no-untyped-def]
        from sessiontally.ratelimit import decide, window_of

        return decide(1, limit, window_of(now))

    def close(self) -> None:
        pass


def _statements(store: SqliteStore) -> list[str]:
    """The SQL this thread's connection runs from now on."""
    seen: list[str] = []
    store.connections.reader().set_trace_callback(seen.append)
    return seen


def _request(store: SqliteStore, ws: int) -> list[int]:
    """A read as an event-loop request makes it: in a pinned block."""
    with store.pinned_reads():
        return _read(store, ws)


def test_an_unchanged_wal_index_skips_the_pragma(opened) -> None:  # type: ignore[no-untyped-def]
    store, ws, app, path = opened
    _add(store, ws, app, "a")
    assert _request(store, ws) == [0, 1, 0]
    seen = _statements(store)
    for _ in range(3):
        assert _request(store, ws) == [0, 1, 0]
    assert seen == []  # not even PRAGMA data_version: the WAL index header is unchanged
    other = SqliteStore(path)
    try:
        _add(other, ws, app, "b")
    finally:
        other.close()
    assert _request(store, ws) == [0, 2, 0]
    assert "PRAGMA data_version" in seen
    seen.clear()
    assert _read(store, ws) == [0, 2, 0]  # outside a request's start: the PRAGMA decides
    assert seen == ["PRAGMA data_version"]


def test_reads_match_a_fresh_store_across_writes_and_wal_restarts(opened) -> None:  # type: ignore[no-untyped-def]
    """Against a brute-force oracle: a store that reads without any cache. Another
    connection writes, sometimes checkpoints (the WAL restarts from its first frame, with
    a new salt) and sometimes writes nothing; the cached store must always agree."""
    import random

    store, ws, app, path = opened
    writer = SqliteStore(path)
    oracle = SqliteStore(path, read_cache=0)
    rng = random.Random(20261129)
    try:
        for step in range(300):
            action = rng.random()
            if action < 0.45:
                _add(writer, ws, app, f"s{step}", Q0 + rng.randrange(3 * 96))
            elif action < 0.55:
                mode = rng.choice(["PASSIVE", "RESTART", "TRUNCATE"])
                writer.connections.reader().execute(f"PRAGMA wal_checkpoint({mode})")
            elif action < 0.6:
                _add(store, ws, app, f"own{step}", Q0 + rng.randrange(3 * 96))
            assert _request(store, ws) == _read(oracle, ws), step
    finally:
        writer.close()
        oracle.close()


def test_the_wal_index_descriptor_is_shared_and_closed_after_the_last_connection(
    tmp_path: Path,
) -> None:
    """Closing a descriptor of a file drops every POSIX lock the process holds on it,
    SQLite's included: one descriptor per file, closed only when no store uses it."""
    import os

    path = tmp_path / "fds.sqlite3"
    first = SqliteStore(path)
    first.migrate()
    second = SqliteStore(path)
    second.connections.reader()
    (descriptor,) = set(first.connections._wal_indexes) | set(second.connections._wal_indexes)  # one for both
    first.close()
    assert first.connections._wal_indexes == []
    os.fstat(descriptor)  # still open: the second store's connection uses the file
    second.close()
    with pytest.raises(OSError):
        os.fstat(descriptor)
    memory = SqliteStore(":memory:")  # no -shm file: the PRAGMA always decides
    assert memory.connections.reader() is not None and memory.connections._local.wal_index is None
    memory.close()


def test_a_database_reached_through_a_symbolic_link_is_checked_beside_its_file(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    store = SqliteStore(real / "db.sqlite3")
    store.migrate()
    ws = store.create_workspace("w", "UTC", 1000).workspace_id
    app = store.create_app(ws, APP_ID, "a", None).app_key
    store.close()
    (tmp_path / "link.sqlite3").symlink_to(real / "db.sqlite3")
    # A stray file where the -shm of the link would be, that no commit ever changes.
    (tmp_path / "link.sqlite3-shm").write_bytes(b"\0" * 32768)
    linked = SqliteStore(tmp_path / "link.sqlite3")
    writer = SqliteStore(real / "db.sqlite3")
    try:
        assert _request(linked, ws) == [0, 0, 0]
        _add(writer, ws, app, "a")
        assert _request(linked, ws) == [0, 1, 0]
    finally:
        linked.close()
        writer.close()
