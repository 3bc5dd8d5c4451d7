"""What every rate limiter shares: the hourly window, the decision, the interface."""

from __future__ import annotations

from typing import NamedTuple, Protocol

WINDOW_SECONDS = 3600


class RateDecision(NamedTuple):
    """A request's count against its workspace's hourly limit (a named tuple: one is made
    per request, and a frozen dataclass's constructor costs several times more)."""

    limit: int
    remaining: int
    reset: int  # UTC epoch seconds of the next full hour
    allowed: bool

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` as they go on the wire
        (ASGI header names are lower case)."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset),
        ]


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
    """Counts a workspace's requests per hour. ``hit`` raises
    ``errors.RateLimiterUnavailable`` when the counters cannot be reached: the request is
    then refused, never served uncounted."""

    # True when ``hit`` never waits on a network or a long lock, so that it may run on
    # an event loop.
    never_blocks: bool

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision: ...
    def close(self) -> None: ...
