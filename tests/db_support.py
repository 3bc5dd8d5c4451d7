"""Databases and services for the tests, on both engines (imported by conftest.py and by
test modules at every level, tests/e2e and tests/hostile included; not named conftest, so
that it cannot be confused with another directory's).

PostgreSQL: the server named by ``SESSIONTALLY_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), where each test database is a fresh
``st_test_<random>`` dropped ``WITH (FORCE)`` afterwards. Redis: ``SESSIONTALLY_TEST_REDIS``
(default ``redis://127.0.0.1:6379/0``). When one cannot be reached, ``require_postgres()`` /
``require_redis()`` skip the calling test with the reason, or fail it when
``SESSIONTALLY_REQUIRE_POSTGRES=1`` / ``SESSIONTALLY_REQUIRE_REDIS=1`` (CI).

Citus, the third engine: the coordinator named by ``SESSIONTALLY_TEST_CITUS`` (no default;
``tests/citus_cluster.py`` starts one, and ``.ci/run`` does so). Each test database
``st_test_<random>`` is made on every node with the extension, the coordinator is told of
itself and of the workers, and the store's ``migrate()`` distributes the schema (it does so
on any Citus coordinator). ``require_citus()`` skips, or fails with
``SESSIONTALLY_REQUIRE_CITUS=1``.

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
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from sessiontally.store import open_store
from sessiontally.store.base import Store

ENGINES = ("sqlite", "postgres", "citus")
POSTGRES_ADMIN_URL = os.environ.get(
    "SESSIONTALLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("SESSIONTALLY_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_POSTGRES = os.environ.get("SESSIONTALLY_REQUIRE_POSTGRES") == "1"
REQUIRE_REDIS = os.environ.get("SESSIONTALLY_REQUIRE_REDIS") == "1"
CITUS_ADMIN_URL = os.environ.get("SESSIONTALLY_TEST_CITUS", "")
REQUIRE_CITUS = os.environ.get("SESSIONTALLY_REQUIRE_CITUS") == "1"
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


@functools.cache
def citus_unavailable() -> str | None:
    """Why Citus tests cannot run here, or None when they can."""
    if not CITUS_ADMIN_URL:
        return "Citus not configured: SESSIONTALLY_TEST_CITUS is unset (tests/citus_cluster.py)"
    if postgres_unavailable() is not None and "psycopg" in str(postgres_unavailable()):
        return f"Citus not reachable: {postgres_unavailable()}"
    try:
        import psycopg

        with psycopg.connect(CITUS_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            workers = conn.execute("SELECT count(*) FROM citus_get_active_worker_nodes()").fetchone()
    except Exception as exc:  # any failure: say why, then skip
        return f"Citus not reachable at {CITUS_ADMIN_URL}: {str(exc).strip()[:200]}"
    if not workers or workers[0] < 2:
        return f"Citus not reachable: fewer than two active workers at {CITUS_ADMIN_URL}"
    return None


def require_citus() -> None:
    """Skip (or, when required, fail) the calling test if no Citus cluster is there."""
    _skip_or_fail(citus_unavailable(), REQUIRE_CITUS, "SESSIONTALLY_REQUIRE_CITUS")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def citus_workers(url: str = "") -> list[tuple[str, int]]:
    """The (host, port) of the cluster's workers, as the coordinator's ``postgres``
    database knows them."""
    import psycopg

    with psycopg.connect(url or CITUS_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary'"
            " ORDER BY nodeport"
        ).fetchall()
    return [(str(host), int(port)) for host, port in rows]


def _make_citus_database() -> str:
    import psycopg

    name = f"st_test_{uuid.uuid4().hex[:16]}"
    workers = citus_workers()

    def on_worker(node: tuple[str, int]) -> None:
        host, port = node
        with psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(f"postgresql://postgres@{host}:{port}/{name}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")

    with ThreadPoolExecutor(len(workers)) as pool:
        made = [pool.submit(on_worker, node) for node in workers]
        with psycopg.connect(CITUS_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(CITUS_ADMIN_URL, name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
        for future in made:
            future.result()
    coordinator = psycopg.conninfo.conninfo_to_dict(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host(%s, %s)",
                     (coordinator.get("host", "127.0.0.1"), int(coordinator.get("port", 5432))))
        for host, port in workers:
            conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
    return url


# Making a database on three nodes takes a second or two, and dropping it as long: the
# next test's database is made in the background while a test runs, and dropping happens
# in the background too (finish_citus_databases waits for both at the end of the session).
_citus_background = ThreadPoolExecutor(1, thread_name_prefix="citus-databases")
_citus_next: list[Future[str]] = []


def create_citus_database() -> str:
    """A new, empty database on every node of the Citus cluster, the extension in each,
    the workers added; returns the coordinator's URL of it (not yet migrated)."""
    url = None
    if _citus_next:
        with contextlib.suppress(Exception):  # (made while a test had a worker stopped)
            url = _citus_next.pop().result()
    if url is None:
        url = _make_citus_database()
    _citus_next.append(_citus_background.submit(_make_citus_database))
    return url


def drop_citus_database(url: str) -> None:
    name = url.rpartition("/")[2]
    assert name.startswith("st_test_"), url  # never anything but our own
    _citus_background.submit(_drop_citus_database, name)


def _drop_citus_database(name: str) -> None:
    import psycopg

    with contextlib.suppress(Exception), psycopg.connect(CITUS_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for host, port in citus_workers():
        with contextlib.suppress(Exception), psycopg.connect(  # (a worker left stopped)
            f"postgresql://postgres@{host}:{port}/postgres", autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def finish_citus_databases() -> None:
    """Drop the database made ahead, and wait for the drops (conftest, at the session's end)."""
    while _citus_next:
        with contextlib.suppress(Exception):
            drop_citus_database(_citus_next.pop().result())
    _citus_background.shutdown(wait=True)


@contextlib.contextmanager
def engine_database(engine: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``engine`` (dropped or left in ``folder`` after)."""
    if engine == "sqlite":
        yield str(folder / f"sessiontally-{uuid.uuid4().hex[:8]}.sqlite3")
        return
    if engine == "citus":
        require_citus()
        url = create_citus_database()
        try:
            yield url
        finally:
            drop_citus_database(url)
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
