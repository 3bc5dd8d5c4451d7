"""Databases and services for the tests, on both engines (imported by conftest.py and by
test modules at every level, tests/e2e and tests/hostile included; not named conftest, so
that it cannot be confused with another directory's).

PostgreSQL: the server named by ``SESSIONTALLY_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), where each test database is a fresh
``st_test_<random>`` dropped ``WITH (FORCE)`` afterwards. Redis: ``SESSIONTALLY_TEST_REDIS``
(default ``redis://127.0.0.1:6379/0``). When one cannot be reached, ``require_postgres()`` /
``require_redis()`` skip the calling test with the reason, or fail it when
``SESSIONTALLY_REQUIRE_POSTGRES=1`` / ``SESSIONTALLY_REQUIRE_REDIS=1`` (CI).

Also what the tests that drive a service concurrently share: ``in_threads`` (run workers
at once, fail with what they raised) and the hourly rate-limit window (``next_hour``,
``avoid_hour_boundary``, ``within_one_window``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessiontally.store import open_store
from sessiontally.store.base import Store

ENGINES = ("sqlite", "postgres")
POSTGRES_ADMIN_URL = os.environ.get(
    "SESSIONTALLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("SESSIONTALLY_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_POSTGRES = os.environ.get("SESSIONTALLY_REQUIRE_POSTGRES") == "1"
REQUIRE_REDIS = os.environ.get("SESSIONTALLY_REQUIRE_REDIS") == "1"
HOUR = 3600


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any connection failure: say why, then skip
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {str(exc).strip()[:200]}"
    return None


def _skip_or_fail(reason: str | None, required: bool, variable: str) -> None:
    if reason is None:
        return
    if required:
        pytest.fail(f"{variable}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def require_postgres() -> None:
    """Skip (or, when required, fail) the calling test if PostgreSQL is not there."""
    _skip_or_fail(postgres_unavailable(), REQUIRE_POSTGRES, "SESSIONTALLY_REQUIRE_POSTGRES")


def create_postgres_database() -> str:
    """A new, empty PostgreSQL database; returns its URL."""
    import psycopg

    name = f"st_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rpartition("/")[2]
    assert name.startswith("st_test_"), url  # never anything but our own
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def engine_database(engine: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``engine`` (dropped or left in ``folder`` after)."""
    if engine == "sqlite":
        yield str(folder / f"sessiontally-{uuid.uuid4().hex[:8]}.sqlite3")
        return
    assert engine == "postgres", engine
    require_postgres()
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@contextlib.contextmanager
def open_test_store(engine: str, folder: Path) -> Iterator[Store]:
    """A fresh, migrated store of ``engine`` (a new SQLite file in ``folder``, or a new
    PostgreSQL database dropped afterwards), closed on exit."""
    with engine_database(engine, folder) as url:
        opened = open_store(url)
        try:
            opened.migrate()
            yield opened
        finally:
            opened.close()


@functools.cache
def redis_unavailable() -> str | None:
    """Why Redis tests cannot run here, or None when they can."""
    try:
        import redis
    except ImportError as exc:
        return f"redis-py is not installed ({exc})"
    try:
        client = redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any connection failure: say why, then skip
        return f"Redis not reachable at {REDIS_TEST_URL}: {str(exc).strip()[:200]}"
    return None


def require_redis() -> None:
    """Skip (or, when required, fail) the calling test if Redis is not there."""
    _skip_or_fail(redis_unavailable(), REQUIRE_REDIS, "SESSIONTALLY_REQUIRE_REDIS")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------- concurrency


def in_threads(count: int, work: Callable[[int], object]) -> None:
    """Run ``work(0)`` .. ``work(count - 1)``, each in a thread of its own, all started
    before any is waited for; then fail with whatever they raised (assertions included)."""
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


# --------------------------------------------------------- the hourly rate-limit window


def next_hour(now: float) -> int:
    """The next full UTC hour after ``now``: the reset of the window ``now`` is in."""
    return int(now) - int(now) % HOUR + HOUR


def avoid_hour_boundary(margin_s: float) -> None:
    """Sleep past the next full UTC hour if it is less than ``margin_s`` away, so that a
    test that counts requests in one rate-limit window does not straddle two."""
    left = HOUR - time.time() % HOUR
    if left < margin_s:
        time.sleep(left + 1.0)


def within_one_window(attempt: Callable[[], bool], margin_s: float = 30) -> None:
    """Run ``attempt``, a try that counts requests in one rate-limit window and returns
    False when the hour turned under it, at least ``margin_s`` before the next hour; once
    more if the hour turned; fail if it turned both times."""
    for _attempt in range(2):
        avoid_hour_boundary(margin_s)
        if attempt():
            return
    pytest.fail("could not stay within one rate-limit window")
