"""Stores for the users/segments tests, on SQLite and on PostgreSQL.

``open_test_store(engine, tmp_path)`` opens either engine, for a test module's own
``store`` fixture parametrised over ``ENGINES``: a SQLite file under ``tmp_path``, or a
PostgreSQL database created for the test on the server named by
``SESSIONTALLY_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and dropped afterwards. When that server cannot be reached, the PostgreSQL variant is
skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sessiontally import admin
from sessiontally.ratelimit import RateDecision
from sessiontally.service import Service
from sessiontally.store.base import Store, Workspace
from sessiontally.store.sqlite import SqliteStore

POSTGRES_ADMIN_URL = os.environ.get(
    "SESSIONTALLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ENGINES = ("sqlite", "postgres")


@cache
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


def _database_url(name: str) -> str:
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped on exit."""
    import psycopg

    name = f"sessiontally_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def open_test_store(engine: str, tmp_path: Path) -> Iterator[Store]:
    """A migrated store of the given engine (skips PostgreSQL when unavailable)."""
    if engine == "sqlite":
        sqlite = SqliteStore(tmp_path / f"store-{uuid.uuid4().hex[:8]}.sqlite3")
        sqlite.migrate()
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    from sessiontally.store.postgres import PostgresStore

    with fresh_postgres_database() as url:
        postgres = PostgresStore(url, min_size=1, max_size=8)
        try:
            postgres.migrate()
            yield postgres
        finally:
            postgres.close()


def store_url(store: Store) -> str:
    """The URL the CLI would be given for this store."""
    if isinstance(store, SqliteStore):
        return store.path
    return str(store.url)  # type: ignore[attr-defined]


class UnlimitedLimiter:
    """The service's rate limiter, never limiting (in-process tests do not count requests)."""

    never_blocks = True

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        return RateDecision(limit, limit, 0, True)

    def close(self) -> None:
        pass


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service_for(store: Store, clock: Any = None) -> Service:
    return Service(store, UnlimitedLimiter(), clock) if clock else Service(store, UnlimitedLimiter())


def new_workspace(store: Store, time_zone: str = "UTC") -> Workspace:
    return admin.create_workspace(store, f"ws-{uuid.uuid4().hex[:12]}", time_zone)
