"""The tracking API's use case (CONTRACT section 10): admit a write key, check the
browser's origin, validate the messages, record them, set ``identify`` traits.

Knows nothing of HTTP: ``api/tracking.py`` reads the request (size limits, gzip, JSON,
CORS) and turns the outcome and ``sessiontally.errors`` into responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from . import attributes, keys, tracking
from .errors import Forbidden, InvalidInput, Unauthenticated
from .ingest import ItemError
from .store.base import App, Classifier, EventUserUpdates, NewEvent, Store, UserUpdater

INVALID_WRITE_KEY = "Invalid write key"
ORIGIN_REFUSED = "This app does not accept events from this origin"
PAST_RETENTION = "older than the workspace's retention: no longer accepted"


def admit(store: Store, write_key: str | None) -> App:
    """The app whose write key this is, or Unauthenticated (one message for every
    reason: missing, malformed, unknown or rotated)."""
    if not write_key or len(write_key) > keys.MAX_KEY_LENGTH:
        raise Unauthenticated(INVALID_WRITE_KEY)
    workspace_id = keys.write_key_workspace(write_key)
    if workspace_id is None:
        raise Unauthenticated(INVALID_WRITE_KEY)
    app = store.find_app_by_write_key(workspace_id, write_key)
    if app is None or not keys.hashes_match(app.write_key.encode(), write_key.encode()):
        raise Unauthenticated(INVALID_WRITE_KEY)
    return app


def check_app_id(app: App, app_id: str | None) -> None:
    """A body that names an app must name the write key's own: a key used with another
    app's id gets the same 401 as an unknown key."""
    if app_id is not None and app_id != app.app_id:
        raise Unauthenticated(INVALID_WRITE_KEY)


def check_origin(app: App, origin: str | None) -> None:
    """Browsers name the page's origin; an app that lists its origins accepts only those.
    (A request without an Origin header does not come from a page's script.)"""
    if origin is None or not app.allowed_origins or "*" in app.allowed_origins:
        return
    if origin.rstrip("/").lower() not in {o.rstrip("/").lower() for o in app.allowed_origins}:
        raise Forbidden(ORIGIN_REFUSED)


def parse_body(raw: bytes) -> Any:
    """The request's JSON, whatever its Content-Type; InvalidInput when it is not JSON
    (orjson refuses nesting deeper than 1024, so a nesting bomb is not JSON here)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc.msg})") from None


def read_request(body: Any, path_type: str, raw_size: int) -> tracking.Request:
    """The request's messages; InvalidInput when it has none or is not the right shape."""
    if path_type != "batch" and raw_size > tracking.MAX_MESSAGE_BYTES:
        raise InvalidInput(f"message exceeds {tracking.MAX_MESSAGE_BYTES // 1024} KB")
    try:
        return tracking.read_request(body, path_type)
    except tracking.RequestError as exc:
        raise InvalidInput(str(exc)) from None


def record(
    store: Store,
    app: App,
    request: tracking.Request,
    path_type: str,
    now_us: int,
    classify: Classifier | None,
    measure: bool = True,
    oldest_us: int | None = None,
) -> dict[str, Any]:
    """Record the valid messages durably; the 200 body, with ``rejected`` if any were not.
    RateLimited (nothing recorded) when the app's hourly message limit would be passed.
    With ``oldest_us`` (the workspace's retention horizon), older messages are rejected:
    the sessions and message ids they would merge with may be deleted already."""
    valid, rejected = tracking.validate_messages(request.messages, path_type, now_us, measure)
    if oldest_us is not None and any(m.occurred_at < oldest_us for _, m in valid):
        rejected += [ItemError(i, PAST_RETENTION) for i, m in valid if m.occurred_at < oldest_us]
        rejected.sort(key=lambda e: e.index)
        valid = [(i, m) for i, m in valid if m.occurred_at >= oldest_us]
    if valid:
        events = [NewEvent(m.message_id, m.type, m.event, m.person, m.user_id, m.occurred_at, now_us)
                  for _, m in valid]
        store.record_events(app.workspace_id, app, events, now_us, classify,
                            _traits([m for _, m in valid]))
    body: dict[str, Any] = {"success": True}
    if rejected:
        body["rejected"] = [e.as_json() for e in rejected]
    return body


def _traits(messages: Sequence[tracking.TrackedMessage]) -> EventUserUpdates:
    """``identify`` traits as the users' attributes (section 5 rules), in message order,
    for the messages the store newly records: a repeated messageId is ignored, so a late
    retry of an old ``identify`` cannot undo a newer one."""

    def updates_for(recorded: Sequence[str]) -> tuple[list[str], UserUpdater] | None:
        new_ids, seen = set(recorded), set()
        updates = []
        for m in messages:
            if m.message_id in new_ids and m.message_id not in seen:
                seen.add(m.message_id)  # (a batch repeating an id: its first message)
                if m.type == "identify" and m.user_id is not None and m.traits:
                    update = tracking.identify_update(m.user_id, m.traits)
                    if update.set or update.remove:
                        updates.append(update)
        if not updates:
            return None

        def apply(current: Mapping[str, str]) -> dict[str, str]:
            state = {ext: attributes.decode_values(orjson.loads(text)) for ext, text in current.items()}
            for update in updates:
                state[update.external_id] = attributes.apply_update(state.get(update.external_id, {}), update)
            return {ext: orjson.dumps(attributes.encode_values(values)).decode()
                    for ext, values in state.items()}

        return [u.external_id for u in updates], apply

    return updates_for
