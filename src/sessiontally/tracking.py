"""Messages of the tracking API (Segment's HTTP Tracking API, CONTRACT section 10):
the request's shape, each message's validation, and ``identify`` traits as user
attributes. Pure.

Messages are independent: each becomes a ``TrackedMessage`` or an ``ItemError`` with its
index in the batch, so that one bad message never fails the others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from . import attributes, limits
from .ingest import ItemError
from .timeparse import TimeParseError, instant_micros

MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_ID_LENGTH = limits.MAX_EXTERNAL_ID_LENGTH
MAX_EVENT_NAME_LENGTH = 200
MAX_MESSAGE_ID_LENGTH = 128
MESSAGE_TYPES = ("track", "page", "screen", "identify", "group", "alias")
ACTIVITY_TYPES = frozenset({"track", "page", "screen"})

# Single-message paths and the type each implies; "batch" for a batch.
PATH_TYPES = {
    "batch": "batch", "b": "batch",
    "track": "track", "t": "track",
    "page": "page", "p": "page",
    "screen": "screen", "s": "screen",
    "identify": "identify", "i": "identify",
    "group": "group", "g": "group",
    "alias": "alias", "a": "alias",
}


class TrackedMessage(NamedTuple):
    """A valid message, ready to record (times in epoch microseconds)."""

    message_id: str
    type: str
    event: str | None  # track's event name, page's or screen's name (None if none)
    person: str  # anonymousId when present, else userId
    user_id: str | None
    occurred_at: int
    traits: dict[str, Any] | None  # identify's traits


class RequestError(ValueError):
    """The request cannot be read at all (a 400 naming why)."""


@dataclass(frozen=True, slots=True)
class Request:
    """What a request holds: its messages (raw), the write key given in the body, if any,
    and the app id the body names, if any."""

    messages: list[Any]
    write_key: str | None
    app_id: str | None


def read_request(body: Any, path_type: str) -> Request:
    """The messages of a parsed body for a path (``batch`` or a message type)."""
    if not isinstance(body, dict):
        raise RequestError("body must be a JSON object")
    write_key = body.get("writeKey")
    if write_key is not None and not isinstance(write_key, str):
        raise RequestError("'writeKey' must be a string")
    if path_type == "batch":
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise RequestError("'batch' must be an array of messages")
        if not messages:
            raise RequestError("'batch' must hold at least one message")
        if any(isinstance(m, dict) and write_key is None and isinstance(m.get("writeKey"), str)
               for m in messages[:1]):
            write_key = messages[0]["writeKey"]
    else:
        messages = [body]
    app_id = body.get("appId", body.get("app_id"))
    return Request(messages, write_key, app_id if isinstance(app_id, str) else None)


def message_size(message: Any) -> int:
    """A message's size as JSON (what the 32 KB limit counts)."""
    try:
        return len(orjson.dumps(message))
    except TypeError:  # nested deeper than orjson writes (255 levels): still valid JSON
        return len(_deep_dumps(message))


def validate_message(message: Any, implied_type: str, received_us: int) -> TrackedMessage:
    """One message, or ValueError with a message naming the field."""
    if not isinstance(message, dict):
        raise ValueError("each message must be a JSON object")
    kind = message.get("type", None if implied_type == "batch" else implied_type)
    if implied_type != "batch" and kind != implied_type:
        raise ValueError(f"'type' must be {implied_type!r} on this path")
    if kind is None:
        raise ValueError("'type' is required")
    if kind not in MESSAGE_TYPES:
        raise ValueError(f"'type' must be one of {', '.join(MESSAGE_TYPES)}")
    user_id = _identity(message, "userId")
    anonymous_id = _identity(message, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise ValueError("'userId' or 'anonymousId' is required")
    event: str | None = None
    if kind == "track":
        event = _name(message, "event", required=True)
    elif kind in ("page", "screen"):
        event = _name(message, "name", required=False)
    occurred_at = _event_time(message, received_us)
    message_id = message.get("messageId")
    if message_id is None:
        message_id = _content_id(message)
    elif not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise ValueError(f"'messageId' must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters")
    elif "\x00" in message_id:
        raise ValueError("'messageId' must not contain NUL (U+0000) characters")
    traits = None
    if kind == "identify":
        traits = message.get("traits") or {}
    for field in ("properties", "context", "traits"):
        if message.get(field) is not None and not isinstance(message[field], dict):
            raise ValueError(f"'{field}' must be an object")
    person = anonymous_id if anonymous_id is not None else user_id
    assert person is not None
    return TrackedMessage(message_id, kind, event, person, user_id, occurred_at, traits)


def _identity(message: dict[str, Any], field: str) -> str | None:
    value = message.get(field)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # Segment's libraries accept numeric ids and send them as given
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be a string")
    if not value:
        return None  # analytics.js may send "" before an id exists
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"'{field}' must be at most {MAX_ID_LENGTH} characters")
    if "\x00" in value:
        raise ValueError(f"'{field}' must not contain NUL (U+0000) characters")
    return value


def _name(message: dict[str, Any], field: str, required: bool) -> str | None:
    value = message.get(field)
    if value is None:
        if required:
            raise ValueError(f"'{field}' is required for this type")
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be a string")
    if not 1 <= len(value) <= MAX_EVENT_NAME_LENGTH:
        raise ValueError(f"'{field}' must be 1 to {MAX_EVENT_NAME_LENGTH} characters")
    if "\x00" in value:
        raise ValueError(f"'{field}' must not contain NUL (U+0000) characters")
    return value


def _event_time(message: dict[str, Any], received_us: int) -> int:
    """``timestamp``, else ``originalTimestamp``, else the time of receipt; after 1970 and
    at most 24 hours after receipt. A time without an offset is read as UTC."""
    for field in ("timestamp", "originalTimestamp"):
        value = message.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"'{field}' must be an ISO-8601 datetime string")
        at = _instant(value, field)
        if at < 0:
            raise ValueError(f"'{field}' must not be before 1970-01-01T00:00:00Z")
        if at > received_us + limits.FUTURE_TOLERANCE_SECONDS * 1_000_000:
            raise ValueError(f"'{field}' must not be more than 24 hours in the future")
        return at
    return received_us


def _instant(text: str, field: str) -> int:
    try:
        return instant_micros(text, naive_is_utc=True)
    except TimeParseError as exc:
        raise ValueError(f"'{field}' {exc}") from None
    except OverflowError:
        raise ValueError(f"'{field}' is out of range") from None


def _content_id(message: dict[str, Any]) -> str:
    """A messageId made from the message's content: the same message sent twice without
    an id is recorded once."""
    try:
        text = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # nested deeper than orjson writes (255 levels): still valid JSON
        text = _deep_dumps(message)
    return "content-" + hashlib.sha256(text).hexdigest()[:40]


class _Text(str):
    """Output already written (as opposed to a value still to write)."""


def _deep_dumps(value: Any) -> bytes:
    """Compact JSON of a parsed JSON value, keys sorted, without recursion: for values
    nested deeper than orjson writes (the parser reads up to 1024 levels). Deterministic,
    which is all the content id needs; the size matches orjson's up to number formats."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, dict):
            parts: list[Any] = [_Text("{")]
            for n, key in enumerate(sorted(item)):
                parts += [_Text(("," if n else "") + json.dumps(key, ensure_ascii=False) + ":"), item[key]]
            stack += reversed([*parts, _Text("}")])
        elif isinstance(item, list):
            parts = [_Text("[")]
            for n, element in enumerate(item):
                parts += [_Text(","), element] if n else [element]
            stack += reversed([*parts, _Text("]")])
        else:
            out.append(json.dumps(item, ensure_ascii=False))
    return "".join(out).encode()


def validate_messages(
    messages: list[Any], implied_type: str, received_us: int, measure: bool = True
) -> tuple[list[tuple[int, TrackedMessage]], list[ItemError]]:
    """Every message of a request: ``(valid, rejected)``, each with its index. With
    ``measure`` False, sizes are not checked (the whole request is within a message's
    limit)."""
    valid: list[tuple[int, TrackedMessage]] = []
    rejected: list[ItemError] = []
    for index, message in enumerate(messages):
        try:
            if measure and message_size(message) > MAX_MESSAGE_BYTES:
                raise ValueError(f"message exceeds {MAX_MESSAGE_BYTES // 1024} KB")
            valid.append((index, validate_message(message, implied_type, received_us)))
        except ValueError as exc:
            rejected.append(ItemError(index, str(exc)))
    return valid, rejected


def identify_update(user_id: str, traits: dict[str, Any]) -> attributes.UserAttributes:
    """An ``identify``'s traits as a user-attributes update (section 5 rules). Traits that
    are not valid attributes (nested objects, say) are left out, not refused: analytics
    libraries send them routinely, and the rest of the message is still good."""
    to_set: dict[str, attributes.Value] = {}
    to_remove: list[str] = []
    for name, raw in list(traits.items())[: attributes.MAX_ATTRIBUTES_PER_OBJECT]:
        if name == "external_id" or attributes.attribute_name_problem(name) is not None:
            continue
        try:
            value = attributes.parse_value(raw)
        except ValueError:
            continue
        if value is None:
            to_remove.append(name)
        else:
            to_set[name] = value
    return attributes.UserAttributes(user_id, to_set, to_remove, False)
