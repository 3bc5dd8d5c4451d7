"""Stores: one interface (base.Store), one engine per database. ``open_store`` picks one
from a URL: ``sqlite:///path``, a plain file path, or ``postgresql://...``. Which URL is in
force (flag, environment, default) is the business of ``sessiontally.config``."""

from __future__ import annotations

from pathlib import Path

from ..config import POSTGRES_SCHEMES, SQLITE_SCHEME, sqlite_file
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
        from .postgres import PostgresStore  # optional dependency

        return PostgresStore(url)
    if path == url and url.startswith("sqlite://"):
        raise ValueError("use sqlite:///PATH (three slashes) or a plain file path")
    from .sqlite import SqliteStore

    if read_cache is None:
        return SqliteStore(Path(path))
    return SqliteStore(Path(path), read_cache=read_cache)

