"""Rate-limit counters in Redis: exact across every process and machine sharing the server."""

from __future__ import annotations

from ..errors import RateLimiterUnavailable, needs_extra
from .base import WINDOW_SECONDS, RateDecision, decide, window_of


class RedisRateLimiter:
    """One ``INCR`` + ``EXPIRE`` per request on ``<prefix>rate:<workspace>:<hour>``; the
    prefix (``SESSIONTALLY_REDIS_PREFIX``, default ``sessiontally:``) lets several
    deployments share one Redis without sharing counters."""

    never_blocks = False  # a network round trip
    dependency = "redis"

    def __init__(self, url: str, prefix: str = "sessiontally:") -> None:
        self.prefix = prefix
        with needs_extra("redis"):
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
        key = f"{self.prefix}rate:{workspace_id}:{window}"
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 60)
            hits, _ = pipe.execute()
        except self._errors as exc:
            raise RateLimiterUnavailable(type(exc).__name__) from None
        return decide(int(hits), limit, window)

    def ping(self) -> bool:
        """Whether Redis answers a PING now."""
        try:
            return bool(self._client.ping())
        except self._errors:
            return False

    def close(self) -> None:
        self._client.close()
