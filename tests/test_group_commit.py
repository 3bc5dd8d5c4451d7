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
    return GroupCommit(transaction, lambda c, sql: c.execute(sql)), commits, local


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


@pytest.mark.parametrize("failing", [{3}, {0, 3, 5}])
def test_failing_pieces_in_a_shared_transaction_fail_alone(tmp_path: Path, failing: set[int]) -> None:
    """Several pieces queued behind one leader share a transaction. When one fails, it is
    rolled back; the group runs once more, each piece in a savepoint: the failing ones
    fail alone, the others commit together."""
    group, commits, _ = make(tmp_path / "g.db")
    runs: list[int] = []
    results: dict[int, object] = {}

    def piece(key: int):  # type: ignore[no-untyped-def]
        def work(c: sqlite3.Connection) -> int:
            runs.append(key)
            c.execute("INSERT INTO t VALUES (?)", (key,))
            if key in failing:
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
    for key in failing:
        assert isinstance(results.pop(key), ValueError)
    kept = [k for k in range(6) if k not in failing]
    assert results == {k: k for k in kept}
    check = sqlite3.connect(tmp_path / "g.db")
    assert [r[0] for r in check.execute("SELECT k FROM t ORDER BY k")] == kept
    assert len(commits) == 1  # the second run of the group, in one commit
    assert len(runs) <= 6 + 6  # at most two runs of each piece


def test_a_failed_commit_fails_every_piece(tmp_path: Path) -> None:
    group, commits, local = make(tmp_path / "g.db")
    # A deferred foreign key: the violation is reported at COMMIT, not by the piece.
    local.conn.execute("PRAGMA foreign_keys=ON")
    local.conn.execute("CREATE TABLE parent (k INTEGER PRIMARY KEY)")
    local.conn.execute("CREATE TABLE child (k INTEGER REFERENCES parent DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError):
        group.run(lambda c: c.execute("INSERT INTO child VALUES (1)"))
    check = sqlite3.connect(tmp_path / "g.db")
    assert check.execute("SELECT COUNT(*) FROM child").fetchone() == (0,)
