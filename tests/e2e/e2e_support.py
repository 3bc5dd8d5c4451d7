"""Small helpers shared by the end-to-end tests (imported by the test modules)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from db_support import HOUR, next_hour

INVALID_KEY = {"message": "Invalid API key"}
# No key at all is told how to send one (issue 22, item 5).
MISSING_KEY = {"message": "Missing API key: send it in the header 'Authorization: Bearer <key>' "
                          "(or as the api_key parameter)"}
OVER_LIMIT = {"message": "Over rate limit"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def iso(instant: float, offset_minutes: int = 0, fraction: bool = False) -> str:
    """An instant (UTC epoch seconds) as ISO-8601 with the given fixed offset."""
    zone = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    value = datetime.fromtimestamp(instant, zone)
    text = value.isoformat(timespec="microseconds" if fraction else "seconds")
    return text.replace("+00:00", "Z") if offset_minutes == 0 else text


def session(app_id: str, started: float, session_id: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "session_id": uuid.uuid4().hex if session_id is None else session_id,
        "external_id": "user-" + uuid.uuid4().hex[:8],
        "app_id": app_id,
        "started_at": iso(started),
    }
    item.update(extra)
    return item


def track(client: httpx.Client, key: str, items: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/sessions/track", json={"sessions": items}, headers=bearer(key))


def series(client: httpx.Client, key: str, query: str) -> httpx.Response:
    """GET /sessions/data_series with a raw (caller-encoded) query string."""
    return client.get("/sessions/data_series?" + query, headers=bearer(key))


def assert_rate_headers(response: httpx.Response, limit: int | None = None) -> int:
    """The three rate-limit headers are present and sane; returns Remaining."""
    before = time.time()
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name in response.headers, (name, response.status_code, dict(response.headers))
        assert response.headers[name].isdigit(), (name, response.headers[name])
    if limit is not None:
        assert int(response.headers["X-RateLimit-Limit"]) == limit
    reset = int(response.headers["X-RateLimit-Reset"])
    assert reset % HOUR == 0
    # The next full hour of the moment the request was counted (a few seconds ago at most).
    assert next_hour(before - 5) <= reset <= next_hour(before + 1)
    return int(response.headers["X-RateLimit-Remaining"])


def assert_no_rate_headers(response: httpx.Response) -> None:
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name not in response.headers


def json_message(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"message"}, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]
