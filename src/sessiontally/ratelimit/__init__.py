"""Fixed-window rate limits: one window per workspace per UTC clock hour.

Every authenticated request counts, whatever its answer. Counters live outside the
request's process so that the count is exact across worker processes, in one of three
backends: a counter file beside the embedded store (``file``), the PostgreSQL store's
database (``postgres``), or Redis when several machines share it (``redis``).
``open_limiter`` picks the one the settings call for.

This package knows nothing of HTTP (``api.http`` turns a decision into headers) and
nothing of the stores: it reads the store's URL from the settings only.
"""

from __future__ import annotations

import os

from ..config import Settings, redacted_url, sqlite_file
from ..errors import needs_extra
from .base import WINDOW_SECONDS, RateDecision, RateLimiter, decide, window_of
from .file import RATE_COUNTERS_SUFFIX, FileRateLimiter
from .postgres import PostgresRateLimiter
from .redis import RedisRateLimiter

__all__ = [
    "RATE_COUNTERS_SUFFIX",
    "WINDOW_SECONDS",
    "FileRateLimiter",
    "check_installed",
    "PostgresRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RedisRateLimiter",
    "decide",
    "describe_limiter",
    "open_limiter",
    "window_of",
]


def open_limiter(settings: Settings) -> RateLimiter:
    """The limiter for ``settings``: Redis when ``redis_url`` is set; else the counter file
    beside an embedded store; else the PostgreSQL store's database."""
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.redis_prefix)
    path = sqlite_file(settings.database)
    if path is not None:
        return FileRateLimiter(path + RATE_COUNTERS_SUFFIX)
    return PostgresRateLimiter(settings.database)


def check_installed(settings: Settings) -> None:
    """MissingExtra when the limiter ``settings`` call for needs a client that is not
    installed (Redis): said once, before a server starts its workers."""
    if settings.redis_url:
        with needs_extra("redis"):
            import redis  # noqa: F401  # optional dependency


def describe_limiter(settings: Settings) -> str:
    """Where ``open_limiter`` keeps the counters, for the startup banner (no password)."""
    if settings.redis_url:
        return f"Redis {redacted_url(settings.redis_url)} (key prefix {settings.redis_prefix!r})"
    path = sqlite_file(settings.database)
    if path is not None:
        return f"counter file {os.path.abspath(path + RATE_COUNTERS_SUFFIX)}"
    return "PostgreSQL (the store's database, table rate_windows)"
