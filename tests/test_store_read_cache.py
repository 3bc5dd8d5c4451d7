"""The embedded store's read cache (store/sqlite.py): series answers and point lookups
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
        assert len(small._local.reads[1]) <= 3
    small.close()


def test_a_revoked_key_is_refused_at_once_by_a_store_that_cached_it(opened) -> None:  # type: ignore[no-untyped-def]
    store, ws, _, path = opened
    from sessiontally import admin
    from sessiontally.keys import hash_key
    from sessiontally.service import ClientError, Service

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
    with pytest.raises(ClientError):
        service.authenticate(key, "127.0.0.1")


def test_reads_inside_a_transaction_are_not_cached(opened) -> None:  # type: ignore[no-untyped-def]
    """A read of a transaction's own uncommitted row must not outlive a rollback."""
    store, ws, _, _ = opened
    with pytest.raises(RuntimeError), store._write() as conn:
        conn.execute("UPDATE workspaces SET name = 'renamed' WHERE workspace_id = ?", (ws,))
        assert store.get_workspace(ws).name == "renamed"
        raise RuntimeError("roll back")
    assert store.get_workspace(ws).name == "w"


class _NoLimit:
    def hit(self, workspace_id: int, limit: int, now: float):  # type: ignore[no-untyped-def]
        from sessiontally.ratelimit import decide, window_of

        return decide(1, limit, window_of(now))

    def close(self) -> None:
        pass
