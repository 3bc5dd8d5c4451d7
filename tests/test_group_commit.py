"""store.group_commit: concurrent writers share a transaction, each gets its own result."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from sessiontally.store.group_commit import GroupCommit


def make(path: Path) -> tuple[GroupCommit[sqlite3.Connection], list[int], threading.local]:
    commits: list[int] = []
    local = threading.local()

    def conn() -> sqlite3.Connection:
        if getattr(local, "conn", None) is None:
            local.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                         timeout=30)
            local.conn.execute("PRAGMA journal_mode=WAL")
        return local.conn

    @contextmanager
    def transaction():
        c = conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        commits.append(1)

    conn().execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    return GroupCommit(transaction), commits, local


def test_each_writer_gets_its_own_result_and_everything_commits(tmp_path: Path) -> None:
    group, commits, local = make(tmp_path / "g.db")
    results: dict[int, object] = {}
    start = threading.Barrier(16)

    def writer(n: int) -> None:
        start.wait()
        for i in range(20):
            key = n * 100 + i
            results[key] = group.run(lambda c, key=key: c.execute("INSERT INTO t VALUES (?)", (key,))
                                     and key)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n * 100 + i: n * 100 + i for n in range(16) for i in range(20)}
    check = sqlite3.connect(tmp_path / "g.db")
    assert check.execute("SELECT COUNT(*) FROM t").fetchone() == (320,)
    assert len(commits) <= 320  # shared commits under contention (usually far fewer)


def test_a_failing_piece_of_work_does_not_undo_the_others(tmp_path: Path) -> None:
    group, _, _ = make(tmp_path / "g.db")
    group.run(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    with pytest.raises(sqlite3.IntegrityError):
        group.run(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    group.run(lambda c: c.execute("INSERT INTO t VALUES (2)"))
    check = sqlite3.connect(tmp_path / "g.db")
    assert [r[0] for r in check.execute("SELECT k FROM t ORDER BY k")] == [1, 2]


def test_a_failing_piece_rolls_back_only_its_own_writes(tmp_path: Path) -> None:
    group, _, _ = make(tmp_path / "g.db")

    def half_then_fail(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES (10)")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        group.run(half_then_fail)
    group.run(lambda c: c.execute("INSERT INTO t VALUES (11)"))
    check = sqlite3.connect(tmp_path / "g.db")
    assert [r[0] for r in check.execute("SELECT k FROM t")] == [11]


def test_a_failing_piece_in_a_shared_transaction_fails_alone(tmp_path: Path) -> None:
    """Several pieces queued behind one leader share a transaction; the one that fails is
    rolled back with it, and the others commit in a transaction run without it."""
    group, commits, _ = make(tmp_path / "g.db")
    results: dict[int, object] = {}

    def piece(key: int):  # type: ignore[no-untyped-def]
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (key,))
            if key == 3:
                raise ValueError("boom")
            return key
        return work

    def writer(key: int) -> None:
        try:
            results[key] = group.run(piece(key))
        except ValueError as exc:
            results[key] = exc

    with group._leader:  # hold the leader lock until every piece is queued
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        while len(group._queue) < 6:
            threading.Event().wait(0.001)
    for t in threads:
        t.join()
    assert isinstance(results.pop(3), ValueError)
    assert results == {k: k for k in (0, 1, 2, 4, 5)}
    check = sqlite3.connect(tmp_path / "g.db")
    assert [r[0] for r in check.execute("SELECT k FROM t ORDER BY k")] == [0, 1, 2, 4, 5]
    assert len(commits) == 1  # the group without the failing piece, in one commit
