"""Writers of several processes take turns (store/write_turns.py). Open-file-description
locks conflict between two descriptors of one process too, so two WriteTurns in two
threads stand for two processes here; test_hostile_* run real worker processes."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sessiontally.store import write_turns
from sessiontally.store.sqlite import SqliteStore
from sessiontally.store.write_turns import TURNSTILE, TurnTimeout, WriteTurns

pytestmark = pytest.mark.skipif(write_turns._OFD_SETLK is None, reason="needs Linux's OFD locks")


def _held(path: str, byte: int) -> bool:
    """Whether some description holds ``byte`` of the file (asked through a third one)."""
    fd = os.open(path, os.O_RDWR)
    try:
        question = write_turns._FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, question)
    finally:
        os.close(fd)
    return write_turns._FLOCK.unpack(answer)[0] != fcntl.F_UNLCK


def _each_in_a_thread(writer: Callable[..., None], arguments: list[tuple[Any, ...]]) -> None:
    """Run ``writer`` once per argument tuple, all at once; then close their WriteTurns."""
    threads = [threading.Thread(target=writer, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for args in arguments:
        args[-1].close()


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def writer(turns: WriteTurns) -> None:
        for _ in range(200):
            with turns.turn():
                inside.append(1)
                time.sleep(0)  # (let the others run while this one holds the turn)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                inside.pop()

    _each_in_a_thread(writer, [(WriteTurns(str(tmp_path / "db"), timeout=30),) for _ in range(4)])
    assert overlaps == []


def test_a_waiting_writer_goes_before_the_one_that_just_wrote(tmp_path: Path) -> None:
    """Each writer, before it ends its turn, waits until the other is queued (holds the
    turnstile), then asks for its next turn at once. The queued one must come first every
    time: strict alternation. Without the turnstile nobody would ever hold it while
    waiting, and the first wait below would time out."""
    order: list[str] = []
    done: set[str] = set()
    path = str(tmp_path / "db")

    def writer(name: str, turns: WriteTurns) -> None:
        for _ in range(50):
            with turns.turn():
                order.append(name)
                give_up = time.monotonic() + 10
                while not _held(f"{path}-writers", TURNSTILE) and len(done) == 0:
                    assert time.monotonic() < give_up, "the other writer never queued"
                    time.sleep(0.0001)
        done.add(name)

    _each_in_a_thread(writer, [(name, WriteTurns(path, timeout=30)) for name in "ab"])
    assert len(order) == 100
    assert all(order[i] != order[i + 1] for i in range(99)), order


def test_a_turn_that_does_not_come_ends_in_a_timeout(tmp_path: Path) -> None:
    holder, waiter = WriteTurns(str(tmp_path / "db"), 30), WriteTurns(str(tmp_path / "db"), 0.05)
    with holder.turn():
        began = time.monotonic()
        with pytest.raises(TurnTimeout), waiter.turn():
            pass
        assert time.monotonic() - began < 5
    with waiter.turn():  # free again
        pass
    holder.close()
    waiter.close()


def test_no_turns_where_the_file_cannot_be_made(tmp_path: Path) -> None:
    turns = WriteTurns(str(tmp_path / "missing-folder" / "db"), 30)
    with turns.turn():  # SQLite's busy handler alone then orders the writers
        pass
    turns.close()


def test_no_turns_once_the_file_system_refuses_the_locks(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    turns = WriteTurns(str(tmp_path / "db"), 30)

    def refuse(fd: int, byte: int, kind: int) -> bool:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(write_turns, "_try", refuse)
    with turns.turn():  # written without a turn, not failed
        pass
    assert turns._fd is None


def test_the_store_writes_take_turns_and_refuse_a_write_inside_a_write(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.migrate()
    assert Path(f"{tmp_path / 's.sqlite3'}-writers").exists()
    with store.connections.write(), pytest.raises(RuntimeError), store.connections.write():
        pass
    workspace = store.create_workspace("w", "UTC", 100)  # the store still writes afterwards
    assert store.get_workspace(workspace.workspace_id) == workspace
    store.close()


def test_a_store_in_memory_reads_what_it_wrote() -> None:
    store = SqliteStore(":memory:")
    store.migrate()
    workspace = store.create_workspace("w", "UTC", 100)
    assert store.get_workspace(workspace.workspace_id) == workspace
    with store.connections.write() as conn:
        conn.execute("UPDATE workspaces SET name = 'v'")
    assert store.get_workspace(workspace.workspace_id).name == "v"
    store.close()
