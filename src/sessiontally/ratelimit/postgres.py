"""Rate-limit counters in the PostgreSQL store's database (the ``rate_windows`` table its
migrations create): exact across every instance using that database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import StoreUnavailable, needs_extra
from .base import RateDecision, decide, window_of

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

# The waits of the PostgreSQL store's own pool: a pooled connection within 5 s or the
# request fails; a broken connection is retried for 10 s before the pool gives up.
POOL_TIMEOUT_S = 5.0
RECONNECT_TIMEOUT_S = 10.0


class PostgresRateLimiter:
    """One upsert per request; the first hit of a window deletes the workspace's older ones.

    The counters share the store's database, so when it cannot be reached (psycopg's
    ``OperationalError``, the pool's ``PoolTimeout``) the limiter raises what the store
    raises then: ``StoreUnavailable``."""

    never_blocks = False  # a network round trip
    dependency = "store"

    def __init__(self, url: str) -> None:
        with needs_extra("postgres"):
            import psycopg  # optional dependency, imported when used
            from psycopg_pool import ConnectionPool, PoolTimeout

        self._unavailable = (psycopg.OperationalError, PoolTimeout)

        self.pool: ConnectionPool = ConnectionPool(
            url,
            min_size=1,
            max_size=10,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            open=True,
            name="sessiontally-ratelimit",
        )

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        try:
            return self._hit(workspace_id, limit, now)
        except self._unavailable as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    def _hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        window = window_of(now)
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO rate_windows (workspace_id, window_start, hits) VALUES (%s, %s, 1)"
                " ON CONFLICT (workspace_id, window_start)"
                " DO UPDATE SET hits = rate_windows.hits + 1 RETURNING hits",
                (workspace_id, window),
            ).fetchone()
            assert row is not None  # an upsert with RETURNING returns its row
            (hits,) = row
            if hits == 1:
                conn.execute(
                    "DELETE FROM rate_windows WHERE workspace_id = %s AND window_start < %s",
                    (workspace_id, window),
                )
        return decide(int(hits), limit, window)

    def ping(self) -> bool:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
        except self._unavailable:
            return False
        return True

    def close(self) -> None:
        self.pool.close()
