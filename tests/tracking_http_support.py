"""Helpers for the tests of the tracking API over HTTP (tests/e2e and tests/hostile):
write-key credentials, message builders, and a snapshot of everything a tracking request
can change in a workspace, read straight from the database, so that a test can say
"nothing else changed" by comparing two snapshots.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

INVALID_WRITE_KEY = {"message": "Invalid write key"}
ORIGIN_REFUSED = {"message": "This app does not accept events from this origin"}
OVER_MESSAGE_LIMIT = {"message": "Over the app's hourly message limit"}
SINGLE_PATHS = {
    "track": ("/v1/track", "/v1/t"),
    "page": ("/v1/page", "/v1/p"),
    "screen": ("/v1/screen", "/v1/s"),
    "identify": ("/v1/identify", "/v1/i"),
    "group": ("/v1/group", "/v1/g"),
    "alias": ("/v1/alias", "/v1/a"),
}
BATCH_PATHS = ("/v1/batch", "/v1/b")
ALL_PATHS = BATCH_PATHS + tuple(p for pair in SINGLE_PATHS.values() for p in pair)


def basic(write_key: str) -> dict[str, str]:
    """``Authorization: Basic base64("<writeKey>:")``, as the Segment libraries send it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def message(kind: str, person: str | None = None, at: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid message of ``kind`` about ``person`` (an anonymousId) at ``at``."""
    body: dict[str, Any] = {"type": kind, "anonymousId": person or "anon-" + uuid.uuid4().hex[:8],
                            "messageId": uuid.uuid4().hex}
    if kind == "track":
        body["event"] = "Played"
    if at is not None:
        body["timestamp"] = at
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def post_json(
    client: httpx.Client,
    path: str,
    body: Any,
    write_key: str | None = None,
    *,
    gzipped: bool = False,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``body`` (JSON-encoded unless bytes) to a tracking path, with the write key as
    HTTP Basic when given."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    sent: dict[str, str] = {}
    if write_key is not None:
        sent.update(basic(write_key))
    if content_type is not None:
        sent["Content-Type"] = content_type
    if gzipped:
        raw = gzip.compress(raw)
        sent["Content-Encoding"] = "gzip"
    sent.update(headers or {})
    return client.post(path, content=raw, headers=sent)


def batch(client: httpx.Client, write_key: str, messages: Sequence[Any], **kwargs: Any) -> httpx.Response:
    return post_json(client, "/v1/batch", {"batch": list(messages)}, write_key, **kwargs)


@dataclass(frozen=True)
class Snapshot:
    """What tracking requests can change in a workspace (sorted rows of each table)."""

    events: tuple[tuple[Any, ...], ...]
    derived: tuple[tuple[Any, ...], ...]
    counts: tuple[tuple[Any, ...], ...]
    users: tuple[tuple[Any, ...], ...]
    message_counts: tuple[tuple[Any, ...], ...]

    def event_ids(self, app_key: int | None = None) -> list[str]:
        return [row[1] for row in self.events if app_key is None or row[0] == app_key]


_QUERIES = {
    "events": "SELECT app_key, message_id, type, event, person, user_id, occurred_at FROM events"
              " WHERE workspace_id = {p}",
    "derived": "SELECT app_key, person, started_at, ended_at, segment_keys FROM derived_sessions"
               " WHERE workspace_id = {p}",
    "counts": "SELECT app_key, segment_key, quarter, sessions FROM session_counts"
              " WHERE workspace_id = {p} AND sessions <> 0",
    "users": "SELECT external_id, attributes FROM users WHERE workspace_id = {p}",
    "message_counts": "SELECT app_key, hour, messages FROM app_message_counts WHERE workspace_id = {p}",
}


def snapshot(database_url: str, workspace_id: int) -> Snapshot:
    """Every tracking-related row of the workspace, read with a connection of its own."""
    found: dict[str, tuple[tuple[Any, ...], ...]] = {}
    if database_url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(database_url) as conn:
            for name, query in _QUERIES.items():
                rows = conn.execute(query.format(p="%s"), (workspace_id,)).fetchall()
                found[name] = tuple(sorted(tuple(_plain(v) for v in row) for row in rows))
    else:
        with contextlib.closing(sqlite3.connect(database_url)) as conn:
            for name, query in _QUERIES.items():
                rows = conn.execute(query.format(p="?"), (workspace_id,)).fetchall()
                found[name] = tuple(sorted(tuple(_plain(v) for v in row) for row in rows))
    return Snapshot(**found)


def _plain(value: Any) -> Any:
    """Rows of both engines alike: JSON documents as text, numbers as ints, None as ''."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def series(client: httpx.Client, api_key: str, query: str) -> list[tuple[str, int]]:
    """``GET /sessions/data_series`` as (time, sessions) pairs (asserting a 200)."""
    response = client.get("/sessions/data_series?" + query, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200, response.text
    return [(p["time"], p["sessions"]) for p in response.json()["data"]]


def nonzero(points: list[tuple[str, int]]) -> dict[str, int]:
    return {time: n for time, n in points if n}


def user_attributes(store: Any, workspace_id: int, external_id: str) -> dict[str, Any] | None:
    """A user's stored attributes as a client would send them (None: no such user)."""
    from sessiontally import attributes

    text = store.user_attributes(workspace_id, external_id)
    if text is None:
        return None
    decoded = attributes.decode_values(orjson.loads(text))
    return {name: attributes.value_to_json(value) for name, value in decoded.items()}
