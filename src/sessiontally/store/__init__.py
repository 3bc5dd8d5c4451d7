"""Stores: one interface (base.Store), one engine per database. ``open_store`` picks one
from a URL: ``sqlite:///path``, a plain file path, or ``postgresql://...``. Which URL is in
force (flag, environment, default) is the business of ``sessiontally.config``."""

from __future__ import annotations

from pathlib import Path

from ..config import sqlite_file
from .base import Store


def open_store(url: str, read_cache: int | None = None) -> Store:
    """The store for ``url``. ``read_cache``: read answers (series counts and point
    lookups of keys, workspaces, apps and segments) the embedded store keeps per
    connection while the database is unchanged (None = its default, 0 = none)."""
    path = sqlite_file(url)
    if path is None:
        from .postgres import PostgresStore  # optional dependency

        return PostgresStore(url)
    if path == url and url.startswith("sqlite://"):
        raise ValueError("use sqlite:///PATH (three slashes) or a plain file path")
    from .sqlite import SqliteStore

    if read_cache is None:
        return SqliteStore(Path(path))
    return SqliteStore(Path(path), read_cache=read_cache)



def distribute_on_citus(store: Store) -> list[tuple[str, str, bool]] | None:
    """``sessiontally citus distribute``: apply the migrations and, on a Citus coordinator,
    make every table a reference table or a table distributed by ``workspace_id``
    (store/citus.py; idempotent). Each table's ``(name, "reference" | "distributed",
    changed now)``, or None when the store is not on a Citus coordinator (SQLite, plain
    PostgreSQL), where nothing is changed but the migrations."""
    distribute = getattr(store, "distribute", None)
    if distribute is None:  # SQLite
        store.migrate()
        return None
    placements: list[tuple[str, str, bool]] | None = distribute()
    return placements
