"""The rate-limit package (src/sessiontally/ratelimit/): decisions and windows (base.py),
the embedded store's counter file (file.py), and ``open_limiter``'s choice of backend.
Cross-process exactness and the hourly rollover over real processes are in tests/hostile;
the Redis backend over HTTP in tests/e2e/test_e2e_redis.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from sessiontally.config import Settings
from sessiontally.errors import RateLimiterUnavailable
from sessiontally.ratelimit import (
    RATE_COUNTERS_SUFFIX,
    FileRateLimiter,
    PostgresRateLimiter,
    RedisRateLimiter,
    decide,
    open_limiter,
    window_of,
)

HOUR = 3600
NOW = 1_750_000_000.5  # some instant inside an hour


# ------------------------------------------------------------------------ base.py


def test_decisions_carry_the_count_against_the_limit() -> None:
    decision = decide(7, 5, 3600)
    assert (decision.allowed, decision.remaining, decision.reset) == (False, 0, 7200)


# ------------------------------------------------------------------------ file.py


def test_counts_per_workspace_and_window(tmp_path: Path) -> None:
    limiter = FileRateLimiter(tmp_path / "counters")
    try:
        decisions = [limiter.hit(7, 3, NOW) for _ in range(4)]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert limiter.hit(8, 3, NOW).remaining == 2  # another workspace, its own slot
        next_hour = window_of(NOW) + HOUR
        assert limiter.hit(7, 3, next_hour).remaining == 2  # a new window starts at 1
        assert limiter.hit(7, 3, next_hour).reset == next_hour + HOUR
    finally:
        limiter.close()


def test_a_second_limiter_on_the_file_sees_the_same_counts(tmp_path: Path) -> None:
    first, second = FileRateLimiter(tmp_path / "c"), FileRateLimiter(tmp_path / "c")
    try:
        first.hit(1, 10, NOW)
        assert second.hit(1, 10, NOW) == decide(2, 10, window_of(NOW))
    finally:
        first.close()
        second.close()


def test_threads_of_one_process_never_lose_a_count(tmp_path: Path) -> None:
    limiter = FileRateLimiter(tmp_path / "c")
    seen: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(500):
            remaining = limiter.hit(3, 100_000, NOW).remaining
            with lock:
                seen.append(remaining)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limiter.close()
    assert sorted(seen) == list(range(100_000 - 4000, 100_000))  # each value handed out once


def test_closed_limiter_refuses_rather_than_serving_unlimited(tmp_path: Path) -> None:
    limiter = FileRateLimiter(tmp_path / "c")
    limiter.close()
    limiter.close()  # idempotent
    with pytest.raises(RateLimiterUnavailable):
        limiter.hit(1, 10, NOW)


def test_the_file_grows_for_large_workspace_ids_and_keeps_other_slots(tmp_path: Path) -> None:
    first, second = FileRateLimiter(tmp_path / "c"), FileRateLimiter(tmp_path / "c")
    try:
        first.hit(1, 10, NOW)
        second.hit(100_000, 10, NOW)  # slot at 3.2 MB: the file grows, first's map is short
        assert first.hit(100_000, 10, NOW).remaining == 8  # first remaps and sees it
        assert second.hit(1, 10, NOW).remaining == 8
        assert (tmp_path / "c").stat().st_size >= 100_001 * FileRateLimiter.SLOT.size
    finally:
        first.close()
        second.close()


def test_a_late_hit_from_the_previous_hour_counts_there(tmp_path: Path) -> None:
    """A request that read the clock at 11:59:59.999 and reaches the file after the 12:00
    window was opened counts in 11:00, and the new hour keeps its count."""
    limiter = FileRateLimiter(tmp_path / "c")
    try:
        eleven = window_of(NOW)
        noon = eleven + HOUR
        for _ in range(3):
            limiter.hit(5, 3, eleven + 10)
        assert limiter.hit(5, 10, noon).remaining == 9
        assert limiter.hit(5, 10, noon).remaining == 8
        late = limiter.hit(5, 3, noon - 0.001)  # the 4th hit of 11:00: over the limit of 3
        assert not late.allowed and late.reset == noon
        assert limiter.hit(5, 10, noon).remaining == 7  # 12:00 kept its 2 hits
        assert limiter.hit(5, 10, noon + HOUR).remaining == 9  # 13:00 replaces 11:00
        assert limiter.hit(5, 10, noon).remaining == 6
    finally:
        limiter.close()


def test_a_lock_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """While another process holds a slot's lock, a hit waits, then counts after it."""
    import multiprocessing

    path = tmp_path / "c"
    limiter = FileRateLimiter(path)
    try:
        limiter.hit(2, 100, NOW)  # slot mapped
        ready, release = multiprocessing.Event(), multiprocessing.Event()
        holder = multiprocessing.Process(target=_hold_slot, args=(str(path), 2, ready, release))
        holder.start()
        assert ready.wait(10)
        done = threading.Event()
        results: list[int] = []
        thread = threading.Thread(target=lambda: (results.append(limiter.hit(2, 100, NOW).remaining),
                                                  done.set()))
        thread.start()
        assert not done.wait(0.3)  # blocked on the other process's lock
        release.set()
        thread.join(10)
        holder.join(10)
        assert results == [97]  # the holder's own hit, then this one
    finally:
        limiter.close()


def _hold_slot(path: str, workspace_id: int, ready, release) -> None:  # type: ignore[no-untyped-def]
    import fcntl
    import os

    limiter = FileRateLimiter(path)
    limiter.hit(workspace_id, 100, NOW)
    size = FileRateLimiter.SLOT.size
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, size, workspace_id * size, os.SEEK_SET)
    ready.set()
    release.wait(10)
    os.close(fd)
    limiter.close()


def test_a_huge_workspace_id_uses_one_block_not_gigabytes(tmp_path: Path) -> None:
    limiter = FileRateLimiter(tmp_path / "c")
    try:
        assert limiter.hit(987_654_321, 10, NOW).remaining == 9  # slot at about 31.6 GB
        assert limiter.hit(987_654_321, 10, NOW).remaining == 8
        assert (tmp_path / "c").stat().st_blocks * 512 < 1 << 20  # sparse: a few blocks
    finally:
        limiter.close()



# ------------------------------------------------------------------- open_limiter


def test_open_limiter_picks_the_backend_of_the_store(db: Any) -> None:
    limiter = open_limiter(Settings(database=db.url))
    try:
        if db.engine == "sqlite":
            assert isinstance(limiter, FileRateLimiter)
            assert limiter.path == db.url + RATE_COUNTERS_SUFFIX
            assert limiter.never_blocks
        else:
            assert isinstance(limiter, PostgresRateLimiter)
            assert not limiter.never_blocks
        assert limiter.hit(4, 3, NOW) == decide(1, 3, window_of(NOW))
        assert limiter.hit(4, 3, NOW) == decide(2, 3, window_of(NOW))
    finally:
        limiter.close()


def test_open_limiter_uses_redis_when_named(tmp_path: Path, redis_url: str) -> None:
    limiter = open_limiter(Settings(database=str(tmp_path / "s.sqlite3"), redis_url=redis_url))
    try:
        assert isinstance(limiter, RedisRateLimiter)
        assert not limiter.never_blocks
        assert limiter.hit(4, 3, NOW) == decide(1, 3, window_of(NOW))
    finally:
        limiter.close()
