"""What every rate limiter shares: the hourly window, the decision, the interface."""

from __future__ import annotations

from typing import NamedTuple, Protocol

WINDOW_SECONDS = 3600


class RateDecision(NamedTuple):
    """A request's count against its workspace's hourly limit (a named tuple: one is made
    per request, and a frozen dataclass's constructor costs several times more). The HTTP
    layer turns it into headers (``api.http.rate_limit_headers``)."""

    limit: int
    remaining: int
    reset: int  # UTC epoch seconds of the next full hour
    allowed: bool


def decide(hits: int, limit: int, window_start: int) -> RateDecision:
    """The decision for the ``hits``-th request of the window starting at ``window_start``."""
    return RateDecision(
        limit=limit,
        remaining=max(0, limit - hits),
        reset=window_start + WINDOW_SECONDS,
        allowed=hits <= limit,
    )


def window_of(now: float) -> int:
    """Start (UTC epoch seconds) of the clock hour holding ``now``."""
    return int(now) - int(now) % WINDOW_SECONDS


class RateLimiter(Protocol):
    """Counts a workspace's requests per hour. ``hit`` raises ``errors.Unavailable`` when
    the counters cannot be reached (``RateLimiterUnavailable`` for the file and Redis;
    ``StoreUnavailable`` for PostgreSQL, whose counters share the store's database): the
    request is then refused, never served uncounted."""

    # True when ``hit`` never waits on a network or a long lock, so that it may run on
    # an event loop.
    never_blocks: bool
    # What ``GET /readyz`` calls the counters' dependency: "store" when they share the
    # store's database, else their own ("redis", "counter_file").
    dependency: str

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision: ...
    def ping(self) -> bool: ...  # whether the counters can be reached now (GET /readyz)
    def close(self) -> None: ...
