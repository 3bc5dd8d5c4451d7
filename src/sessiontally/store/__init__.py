"""Stores: one interface (base.Store), one engine per database. ``open_store`` picks one
from a URL: ``sqlite:///path``, a plain file path, or ``postgresql://...``. Which URL is in
force (flag, environment, default) is the business of ``sessiontally.config``."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import POSTGRES_SCHEMES, SQLITE_SCHEME, sqlite_file
from ..errors import InvalidInput, needs_extra
from .base import Store

SCHEMES_HELP = "use a SQLite path, sqlite:///PATH or postgresql://..."


def check_scheme(url: str) -> None:
    """ValueError for a URL of a database sessiontally has no engine for (``mysql://``)."""
    scheme, found, _ = url.partition("://")
    if found and not url.startswith((*POSTGRES_SCHEMES, SQLITE_SCHEME, "sqlite://")):
        raise ValueError(f"unsupported store URL scheme {scheme!r}; {SCHEMES_HELP}")


def open_store(url: str, read_cache: int | None = None) -> Store:
    """The store for ``url``. ``read_cache``: read answers (series counts and point
    lookups of keys, workspaces, apps and segments) the embedded store keeps per
    connection while the database is unchanged (None = its default, 0 = none)."""
    check_scheme(url)
    path = sqlite_file(url)
    if path is None:
        with needs_extra("postgres"):
            from .postgres import PostgresStore  # optional dependency

        return PostgresStore(url)
    if path == url and url.startswith("sqlite://"):
        raise ValueError("use sqlite:///PATH (three slashes) or a plain file path")
    check_sqlite_location(path)
    from .sqlite import SqliteStore

    if read_cache is None:
        return SqliteStore(Path(path))
    return SqliteStore(Path(path), read_cache=read_cache)



def check_sqlite_location(path: str) -> None:
    """InvalidInput, in one line with the cause, when ``path`` cannot be a SQLite database
    file: its directory is missing or not writable, or it is a directory itself. Said
    before SQLite (and the write turns beside the file) fail on it less clearly."""
    if path == ":memory:" or path.startswith("file:"):
        return
    shown = f"cannot open SQLite database {path}"
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise InvalidInput(f"{shown}: it is a directory")
    if not os.path.exists(folder):
        raise InvalidInput(f"{shown}: directory {folder} does not exist")
    if not os.path.isdir(folder):
        raise InvalidInput(f"{shown}: {folder} is not a directory")
    if not os.path.exists(path) and not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInput(f"{shown}: cannot create files in directory {folder} (permission denied)")
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise InvalidInput(f"{shown}: permission denied (it must be readable and writable)")


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
