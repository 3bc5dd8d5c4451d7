"""Helpers shared by the hostile-conditions suites (tests/hostile): request helpers, the
exact error-body assertion, an oracle over what the client knows, and the counters that
tests/hostile/conftest.py prints at the end of the run (fuzz cases, bad inputs, crashes)."""

from __future__ import annotations

import collections
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

INVALID_KEY = {"message": "Invalid API key"}
# No key at all is told how to send one (issue 22, item 5).
MISSING_KEY = {"message": "Missing API key: send it in the header 'Authorization: Bearer <key>' "
                          "(or as the api_key parameter)"}
OVER_LIMIT = {"message": "Over rate limit"}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

# What the suites did, printed by tests/hostile/conftest.py's terminal summary.
TALLY: collections.Counter[str] = collections.Counter()
_TALLY_LOCK = threading.Lock()


def tally(name: str, n: int = 1) -> None:
    with _TALLY_LOCK:
        TALLY[name] += n


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def iso(instant: float, offset_minutes: int = 0) -> str:
    zone = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    text = datetime.fromtimestamp(instant, zone).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if offset_minutes == 0 else text


def session_item(app_id: str, started: float, session_id: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "session_id": session_id or uuid.uuid4().hex,
        "external_id": "user-" + uuid.uuid4().hex[:8],
        "app_id": app_id,
        "started_at": iso(started),
    }
    item.update(extra)
    return item


def header(response: Any, name: str) -> str | None:
    """A response header, case-insensitively, from an httpx response or a schemathesis one
    (whose headers map lower-case names to lists of values)."""
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def error_body(response: Any, *, allow_errors: bool = False) -> dict[str, Any]:
    """The body of an error response: JSON, an object, a non-empty string ``message`` and
    nothing else (``errors`` too where the endpoint reports per-item errors)."""
    content_type = header(response, "content-type") or ""
    assert content_type.startswith("application/json"), (
        response.status_code, content_type, response.text[:300])
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"], body
    allowed = {"message", "errors"} if allow_errors else {"message"}
    assert set(body) <= allowed, body
    return body


def assert_error(response: httpx.Response, status: int, message: str | None = None,
                 *, contains: str | None = None, allow_errors: bool = False) -> dict[str, Any]:
    """An error with exactly this status and the ``{"message": ...}`` shape (the message
    itself when given, or a fragment of it)."""
    assert response.status_code == status, (status, response.status_code, response.text[:500])
    body = error_body(response, allow_errors=allow_errors)
    if message is not None:
        assert body["message"] == message, body
    if contains is not None:
        assert contains in body["message"], body
    return body


class Ledger:
    """What an ingesting client knows: the batches acknowledged with 201, and the batches
    sent whose fate it does not know (no answer: the server died, or the connection did)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}  # session_id -> the item as sent
        self.acked: dict[str, list[str]] = {}  # batch -> session ids
        self.pending: dict[str, list[dict[str, Any]]] = {}  # batch -> items
        self.lock = threading.Lock()

    def sending(self, name: str, items: list[dict[str, Any]]) -> None:
        with self.lock:
            self.pending[name] = items
            for item in items:
                self.items[item["session_id"]] = item

    def ack(self, name: str) -> None:
        with self.lock:
            items = self.pending.pop(name)
            self.acked[name] = [i["session_id"] for i in items]

    def acked_ids(self) -> set[str]:
        with self.lock:
            return {sid for ids in self.acked.values() for sid in ids}

    def sent_ids(self) -> set[str]:
        with self.lock:
            return set(self.items)


def random_batch(name: str, apps: list[str], users: list[str], rng: random.Random, now: float,
                 size: int, span_s: float) -> list[dict[str, Any]]:
    return [
        {
            "session_id": f"{name}-{i}",
            "external_id": rng.choice(users),
            "app_id": rng.choice(apps),
            "started_at": iso(now - rng.uniform(60, span_s), offset_minutes=rng.choice([0, 330, -300, 345])),
        }
        for i in range(size)
    ]


def started_us(item: dict[str, Any]) -> int:
    value = datetime.fromisoformat(item["started_at"])
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def limiter_worker(kind: str, url: str, workspace_id: int, limit: int, now: float, hits: int,
                   threads: int) -> list[tuple[bool, int, int]]:
    """In a separate process: ``threads`` threads share one limiter of ``kind`` (sqlite,
    postgres, redis) on ``url`` and make ``hits`` hits in all at the injected time ``now``;
    returns every decision as (allowed, remaining, reset)."""
    from concurrent.futures import ThreadPoolExecutor

    if kind == "sqlite":
        from sessiontally.ratelimit import FileRateLimiter

        limiter: Any = FileRateLimiter(url)
    elif kind == "postgres":
        from sessiontally.ratelimit import PostgresRateLimiter

        limiter = PostgresRateLimiter(url)
    else:
        from sessiontally.ratelimit import RedisRateLimiter

        limiter = RedisRateLimiter(url)
    try:
        with ThreadPoolExecutor(threads) as pool:
            decisions = list(pool.map(lambda _: limiter.hit(workspace_id, limit, now), range(hits)))
    finally:
        limiter.close()
    return [(d.allowed, d.remaining, d.reset) for d in decisions]
