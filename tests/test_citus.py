"""``sessiontally citus distribute`` and the distribution that migrations do by themselves
on a Citus coordinator (issue 21; docs/operations.md, "Scale-out on Citus"): every table a
reference table or distributed by ``workspace_id`` and co-located, idempotently, tables of
later migrations included; on SQLite and plain PostgreSQL one line and no change.

The Citus tests run on the cluster named by ``SESSIONTALLY_TEST_CITUS``
(tests/citus_cluster.py); they skip without one, or fail with ``SESSIONTALLY_REQUIRE_CITUS=1``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from db_support import engine_database

from sessiontally.cli import main
from sessiontally.store import open_store, postgres
from sessiontally.store.citus import ANCHOR, REFERENCE_TABLES

NOT_CITUS = "not a Citus coordinator; nothing to do\n"


def cli(database: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database", database, *args], catch_exceptions=False)


def placements(url: str) -> dict[str, tuple[str, int | None]]:
    """Every table of the database: ``("reference" | "distributed" | "local", colocation)``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        citus = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").fetchone()
        if not (citus and citus[0]):
            rows = conn.execute(
                "SELECT tablename, NULL, NULL, NULL FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT t.tablename, p.partmethod, p.repmodel, p.colocationid FROM pg_tables t"
                " LEFT JOIN pg_dist_partition p ON p.logicalrelid = t.tablename::regclass"
                " WHERE t.schemaname = 'public'"
            ).fetchall()
    found: dict[str, tuple[str, int | None]] = {}
    for table, method, replication, colocation in rows:
        kind = ("reference" if (method, replication) == ("n", "t")
                else "distributed" if method == "h" else "local")
        found[str(table)] = (kind, colocation)
    return found


def assert_distributed_as_designed(url: str) -> None:
    found = placements(url)
    anchor = found[ANCHOR][1]
    for table, (kind, colocation) in found.items():
        if table in REFERENCE_TABLES:
            assert kind == "reference", (table, kind)
        else:
            assert (kind, colocation) == ("distributed", anchor), (table, kind, colocation)


def _distribution_column(url: str, table: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition"
                           " WHERE logicalrelid = %s::regclass", (table,)).fetchone()
    assert row is not None
    return str(row[0])


# ------------------------------------------------------------------ not on Citus


def test_on_sqlite_it_says_so_and_changes_nothing(tmp_path: Path) -> None:
    url = str(tmp_path / "plain.sqlite3")
    done = cli(url, "citus", "distribute")
    assert (done.exit_code, done.output) == (0, NOT_CITUS)


def test_on_plain_postgres_it_says_so_and_changes_nothing(tmp_path: Path) -> None:
    with engine_database("postgres", tmp_path) as url:
        store = open_store(url)
        store.migrate()
        store.close()
        before = placements(url)
        done = cli(url, "citus", "distribute")
        assert (done.exit_code, done.output) == (0, NOT_CITUS)
        assert placements(url) == before
        assert {kind for kind, _ in before.values()} == {"local"}


# ---------------------------------------------------------------------- on Citus


def test_a_new_install_is_distributed_by_its_migrations(tmp_path: Path) -> None:
    with engine_database("citus", tmp_path) as url:
        store = open_store(url)
        store.migrate()
        store.close()
        assert_distributed_as_designed(url)
        for table, (kind, _) in placements(url).items():
            if kind == "distributed":
                assert _distribution_column(url, table) == "workspace_id"
        done = cli(url, "citus", "distribute", "--json")  # idempotent: nothing left to do
        assert done.exit_code == 0, done.output
        lines = [orjson.loads(line) for line in done.output.splitlines()]
        assert {line["table"] for line in lines} == set(placements(url))
        assert not any(line["changed"] for line in lines)
        assert lines[0]["table"] == ANCHOR


def test_the_command_distributes_what_is_not_and_leaves_the_rest(tmp_path: Path) -> None:
    """A cluster where some tables are local (a database set up before Citus, or a table
    someone undistributed): the command places them and only them, and a second run
    changes nothing."""
    import psycopg

    with engine_database("citus", tmp_path) as url:
        store = open_store(url)
        store.migrate()
        ws = store.create_workspace("acme", "UTC", 10)
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT undistribute_table('events')")
            conn.execute("SELECT undistribute_table('sign_in_attempts')")
        assert placements(url)["events"][0] == "local"
        done = cli(url, "citus", "distribute")
        assert done.exit_code == 0, done.output
        lines = done.output.splitlines()
        assert sorted(line for line in lines if ": made " in line) == [
            "events: made distributed", "sign_in_attempts: made reference"]
        assert_distributed_as_designed(url)
        again = cli(url, "citus", "distribute")
        assert again.exit_code == 0 and ": made " not in again.output, again.output
        reopened = open_store(url)
        assert reopened.get_workspace(ws.workspace_id) == ws
        reopened.close()


def test_an_upgrade_that_adds_tables_distributes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster made before migration 0006 (members): the upgrade's migrate() leaves its
    new tables distributed or reference tables, with no manual step."""
    every = postgres._migrations()
    with engine_database("citus", tmp_path) as url:
        monkeypatch.setattr(postgres, "_migrations", lambda: [m for m in every if m[0] < 6])
        old = open_store(url)
        assert old.migrate() == 5
        ws = old.create_workspace("before", "UTC", 10)
        old.close()
        assert "members" not in placements(url)
        monkeypatch.setattr(postgres, "_migrations", lambda: every)
        new = open_store(url)
        assert new.migrate() == every[-1][0]
        assert_distributed_as_designed(url)
        assert placements(url)["members"][0] == "reference"
        assert placements(url)["member_sessions"][0] == "distributed"
        new.add_member(ws.workspace_id, "a@example.com", "hash", 1)
        assert new.find_member("a@example.com") is not None
        new.close()


def test_a_table_with_no_workspace_and_no_entry_is_refused(tmp_path: Path) -> None:
    import psycopg

    with engine_database("citus", tmp_path) as url:
        store = open_store(url)
        store.migrate()
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE stray (x INTEGER PRIMARY KEY)")
        done = CliRunner().invoke(main, ["--database", url, "citus", "distribute"])
        assert done.exit_code == 1
        assert "stray" in done.output and "REFERENCE_TABLES" in done.output
        assert placements(url)["stray"][0] == "local"
