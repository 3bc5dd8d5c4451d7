"""PostgreSQL-only store behaviour: durable commits whatever the database's defaults."""

from __future__ import annotations

import pytest
from db_support import POSTGRES_ADMIN_URL, create_postgres_database, drop_postgres_database, require_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url():
    require_postgres()
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


def _store_setting(store, name: str) -> str:
    with store.pool.connection() as conn:
        return str(conn.execute(f"SHOW {name}").fetchone()[0])


def test_server_default_is_durable_and_the_store_keeps_it(postgres_url):
    import psycopg

    from sessiontally.store.postgres import PostgresStore

    with psycopg.connect(POSTGRES_ADMIN_URL) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        server_default = conn.execute("SHOW synchronous_commit").fetchone()[0]
    store = PostgresStore(postgres_url, min_size=1, max_size=2)
    try:
        store.migrate()
        assert _store_setting(store, "synchronous_commit") == server_default != "off"
    finally:
        store.close()


def test_synchronous_commit_off_by_default_in_the_database_is_turned_back_on(postgres_url):
    """A 201 promises durability (CONTRACT.md section 4): a database (or role) default of
    synchronous_commit = off would lose acknowledged sessions in a crash of the server."""
    import psycopg

    from sessiontally.store.postgres import PostgresStore

    name = postgres_url.rpartition("/")[2]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
    store = PostgresStore(postgres_url, min_size=2, max_size=4)
    try:
        store.migrate()
        with store.pool.connection() as one, store.pool.connection() as two:
            for conn in (one, two):
                assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        store.close()


def test_a_stronger_setting_is_left_alone(postgres_url):
    import psycopg

    from sessiontally.store.postgres import PostgresStore

    name = postgres_url.rpartition("/")[2]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = remote_apply')
    store = PostgresStore(postgres_url, min_size=1, max_size=2)
    try:
        assert _store_setting(store, "synchronous_commit") == "remote_apply"
    finally:
        store.close()
