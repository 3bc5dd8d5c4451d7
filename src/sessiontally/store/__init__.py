"""Stores: one interface (base.Store), one engine per database. ``open_store`` picks one
from a URL: ``sqlite:///path``, a plain file path, or ``postgresql://...``."""

from __future__ import annotations

import os
from pathlib import Path

from .base import Store

DEFAULT_DATABASE = "sessiontally.sqlite3"
DATABASE_ENV = "SESSIONTALLY_DATABASE"


def database_url(explicit: str | None = None) -> str:
    """The database URL in force: the explicit one, else the environment, else the default
    SQLite file in the working directory."""
    return explicit or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE


def open_store(url: str, read_cache: int | None = None) -> Store:
    """The store for ``url``. ``read_cache``: read answers (series counts and point
    lookups of keys, workspaces, apps and segments) the embedded store keeps per
    connection while the database is unchanged (None = its default, 0 = none)."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # optional dependency

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]
    elif url.startswith("sqlite://"):
        raise ValueError("use sqlite:///PATH (three slashes) or a plain file path")
    from .sqlite import SqliteStore

    if read_cache is None:
        return SqliteStore(Path(url))
    return SqliteStore(Path(url), read_cache=read_cache)


def sqlite_sidecar(url: str, suffix: str) -> Path | None:
    """Path of a companion SQLite file next to a SQLite store (None for other engines)."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]
    return Path(url + suffix)
