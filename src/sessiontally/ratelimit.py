"""Fixed-window rate limits: one window per workspace per UTC clock hour.

Every authenticated request counts, whatever its answer. Counters live outside the
request's process so that the count is exact across worker processes: in a small SQLite
file beside the embedded store (one atomic UPSERT per request; kept apart from the main
file so that a long ingest transaction never delays a rate-limit check), in PostgreSQL
for a PostgreSQL store, or in Redis (``INCR`` + expiry) when several machines share it.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

WINDOW_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class RateDecision:
    limit: int
    remaining: int
    reset: int  # UTC epoch seconds of the next full hour
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiterUnavailable(RuntimeError):
    """The counter store (e.g. Redis) cannot be reached; the request must not be served."""


def decide(hits: int, limit: int, window_start: int) -> RateDecision:
    return RateDecision(
        limit=limit,
        remaining=max(0, limit - hits),
        reset=window_start + WINDOW_SECONDS,
        allowed=hits <= limit,
    )


def window_of(now: float) -> int:
    return int(now) - int(now) % WINDOW_SECONDS


class RateLimiter(Protocol):
    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision: ...
    def close(self) -> None: ...


class SqliteRateLimiter:
    """Counters in their own SQLite file (WAL), shared by all processes on one machine."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        conn = self._conn()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rate_windows (workspace_id INTEGER NOT NULL,"
            " window_start INTEGER NOT NULL, hits INTEGER NOT NULL,"
            " PRIMARY KEY (workspace_id, window_start)) WITHOUT ROWID"
        )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a lost count after a crash is harmless
            self._local.conn = conn
        return conn

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        window = window_of(now)
        conn = self._conn()
        (hits,) = conn.execute(
            "INSERT INTO rate_windows (workspace_id, window_start, hits) VALUES (?, ?, 1)"
            " ON CONFLICT (workspace_id, window_start) DO UPDATE SET hits = hits + 1"
            " RETURNING hits",
            (workspace_id, window),
        ).fetchone()
        if hits == 1:  # first request of a window: forget old windows of this workspace
            conn.execute(
                "DELETE FROM rate_windows WHERE workspace_id = ? AND window_start < ?",
                (workspace_id, window),
            )
        return decide(hits, limit, window)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisRateLimiter:
    """Counters in Redis: exact across every process and machine that shares the server."""

    def __init__(self, url: str) -> None:
        import redis  # optional dependency
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Any Redis failure (down, timing out, loading, read-only replica after a
        # failover, ...) means the request cannot be counted: RateLimiterUnavailable (503).
        self._errors = (redis.exceptions.RedisError,)
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            health_check_interval=10,
            # One immediate retry on a connection error only: it replaces a pooled
            # connection that died with a restarted Redis (so recovery costs no request),
            # while a request is never retried after a timeout, when the INCR may have
            # been applied (the count stays exact). No backoff: a 503 must come quickly.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        window = window_of(now)
        key = f"sessiontally:rate:{workspace_id}:{window}"
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 60)
            hits, _ = pipe.execute()
        except self._errors as exc:
            raise RateLimiterUnavailable(type(exc).__name__) from None
        return decide(int(hits), limit, window)

    def close(self) -> None:
        self._client.close()
