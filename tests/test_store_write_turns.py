"""Writers of several processes take turns (store/write_turns.py). Open-file-description
locks conflict between two descriptors of one process too, so two WriteTurns in two
threads stand for two processes here; test_hostile_* run real worker processes."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from sessiontally.store import write_turns
from sessiontally.store.write_turns import WriteTurns

pytestmark = pytest.mark.skipif(write_turns._OFD_SETLKW is None, reason="needs Linux's OFD locks")


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def writer(turns: WriteTurns) -> None:
        for _ in range(200):
            with turns.turn():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                inside.pop()

    all_turns = [WriteTurns(str(tmp_path / "db")) for _ in range(4)]
    threads = [threading.Thread(target=writer, args=(t,)) for t in all_turns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for turns in all_turns:
        turns.close()
    assert overlaps == []


def test_two_busy_writers_alternate(tmp_path: Path) -> None:
    """Each writer asks for its next turn as soon as it ends one. Without the turnstile
    the one that has just written often takes the lock straight back (it needs
    microseconds, the waiter must first be woken): here the turn changed hands 292 times
    in 600 without it, with runs of up to 60 turns; with it, 600 times when the machine
    was idle and at least 571 with three busy processes on its two cores."""
    order: list[str] = []

    def writer(name: str, turns: WriteTurns) -> None:
        for _ in range(300):
            with turns.turn():
                order.append(name)
                time.sleep(0.0003)  # (releases the GIL, as SQLite's work does)

    both = [WriteTurns(str(tmp_path / "db")) for _ in range(2)]
    threads = [threading.Thread(target=writer, args=pair) for pair in zip("ab", both, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for turns in both:
        turns.close()
    runs = [len(list(run)) for _, run in itertools.groupby(order)]
    assert len(runs) >= 0.8 * len(order), max(runs)


def test_no_turns_where_the_file_cannot_be_made(tmp_path: Path) -> None:
    turns = WriteTurns(str(tmp_path / "missing-folder" / "db"))
    with turns.turn():  # SQLite's busy handler alone then orders the writers
        pass
    turns.close()
