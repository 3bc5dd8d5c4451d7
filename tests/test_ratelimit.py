"""The file counters of the embedded store's rate limiter (ratelimit.py). Cross-process
exactness and the hourly rollover over real processes are in tests/hostile."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sessiontally.ratelimit import FileRateLimiter, RateLimiterUnavailable, decide, window_of

HOUR = 3600
NOW = 1_750_000_000.5  # some instant inside an hour


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
        second.hit(100_000, 10, NOW)  # slot at 1.6 MB: the file grows, first's map is short
        assert first.hit(100_000, 10, NOW).remaining == 8  # first remaps and sees it
        assert second.hit(1, 10, NOW).remaining == 8
        assert (tmp_path / "c").stat().st_size >= 100_001 * 16
    finally:
        first.close()
        second.close()
