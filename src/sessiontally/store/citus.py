"""The schema on Citus (distributed PostgreSQL): which tables are reference tables and
which are distributed by ``workspace_id``, and the step that makes them so
(docs/operations.md, "Scale-out on Citus").

The PostgreSQL engine runs ``distribute`` inside its migration transaction, after each
migration it applies and once more at the end, whenever the database is a Citus
coordinator (the ``citus`` extension is installed and knows of nodes). So a new install,
and an upgrade whose migration adds a table, leave every table distributed with no manual
step; ``sessiontally citus distribute`` runs the same step and says what it did.

The rule, so that a later migration's table needs no entry here: a table with a
``workspace_id`` column is distributed by it, co-located with ``sessions``; a table
without one must be named in ``REFERENCE_TABLES``, or ``distribute`` refuses (a table
that is neither would stay local to the coordinator, unseen by anyone).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg

Connection = psycopg.Connection[tuple[Any, ...]]

DISTRIBUTION_COLUMN = "workspace_id"
ANCHOR = "sessions"  # distributed first; every other distributed table is co-located with it
# Small, read by every node, or looked up without a workspace (docs/operations.md).
REFERENCE_TABLES = frozenset({"workspaces", "schema_migrations", "members", "sign_in_attempts"})


class Placement(NamedTuple):
    """A table's place on the cluster, and whether this call put it there."""

    table: str
    kind: str  # "reference" or "distributed"
    changed: bool


class UndistributableTable(RuntimeError):
    """A table with no ``workspace_id`` that is not declared a reference table."""


def is_coordinator(conn: Connection) -> bool:
    """Whether the database is a Citus coordinator: the extension is installed and it
    knows of nodes (``citus_is_coordinator``; a worker, or a coordinator with no node yet,
    is treated as plain PostgreSQL)."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')").fetchone()
    if not (row and row[0]):
        return False
    row = conn.execute("SELECT citus_is_coordinator()").fetchone()
    return bool(row and row[0])


def prepare_transaction(conn: Connection) -> None:
    """Run the transaction's multi-shard work over one connection per node, so that
    distributing a table after creating or altering others in the same transaction is
    allowed (Citus refuses it after parallel multi-shard statements)."""
    conn.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")


def statements(script: str) -> list[str]:
    """A migration file's statements, one by one: Citus propagates DDL on a distributed
    table to the workers with the text it was given, and a worker refuses a text of
    several commands ("cannot insert multiple commands into a prepared statement"). Our
    migrations have no semicolon inside a literal and no ``--`` but comments."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def distribute(conn: Connection) -> list[Placement]:
    """Make every table of the current schema a reference table or a table distributed by
    ``workspace_id`` (co-located with ``sessions``); tables already so are left as they
    are. Returns every table's placement, anchor first."""
    rows = conn.execute(
        "SELECT c.relname, p.partmethod, p.repmodel, EXISTS (SELECT 1 FROM pg_attribute a"
        " WHERE a.attrelid = c.oid AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " ORDER BY c.relname <> %s, c.relname",
        (DISTRIBUTION_COLUMN, ANCHOR),
    ).fetchall()
    stray = [str(name) for name, _, _, has_column in rows
             if not has_column and str(name) not in REFERENCE_TABLES]
    if stray:
        raise UndistributableTable(
            f"tables without {DISTRIBUTION_COLUMN} that are not reference tables: {', '.join(stray)}"
            " (name them in store/citus.py REFERENCE_TABLES, or give them the column)"
        )
    placements = []
    for name, method, replication, _ in rows:
        table = str(name)
        if table in REFERENCE_TABLES:
            done = method == "n" and replication == "t"
            if not done:
                conn.execute("SELECT create_reference_table(%s)", (table,))
            placements.append(Placement(table, "reference", not done))
            continue
        done = method == "h"
        if not done:
            if table == ANCHOR:
                conn.execute("SELECT create_distributed_table(%s, %s)", (table, DISTRIBUTION_COLUMN))
            else:
                conn.execute(
                    "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                    (table, DISTRIBUTION_COLUMN, ANCHOR),
                )
        placements.append(Placement(table, "distributed", not done))
    return placements
