"""Validation of recorded sessions (docs/api.md), item by item. Pure.

Items are independent: each either becomes a ``ValidSession`` or an ``ItemError`` with
its index, so that valid items are recorded even when others are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from . import limits
from .timeparse import TimeParseError, instant_micros

EPOCH_US = 0


class ValidSession(NamedTuple):  # one per item: a NamedTuple is cheaper to build (NewSession)
    session_id: str
    external_id: str
    app_id: str
    started_at: int  # microseconds since the epoch
    ended_at: int | None


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "message": self.message}


class BatchShapeError(ValueError):
    """The body is not ``{"sessions": [...]}`` with 1..10000 items."""


def batch_items(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise BatchShapeError('body must be a JSON object like {"sessions": [...]}')
    items = body.get("sessions")
    if not isinstance(items, list):
        raise BatchShapeError("'sessions' must be an array of session objects")
    if not items:
        raise BatchShapeError("'sessions' must hold at least one session")
    if len(items) > limits.MAX_SESSIONS_PER_REQUEST:
        raise BatchShapeError(
            f"'sessions' holds {len(items)} sessions; at most "
            f"{limits.MAX_SESSIONS_PER_REQUEST} are allowed per request"
        )
    return items


def _string(item: dict[str, Any], field: str, max_length: int) -> str:
    value = item.get(field)
    if value is None:
        raise ValueError(f"'{field}' is required")
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be a string")
    if not 1 <= len(value) <= max_length:
        raise ValueError(f"'{field}' must be 1 to {max_length} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refused on every engine alike
        raise ValueError(f"'{field}' must not contain NUL (U+0000) characters")
    return value


def _instant(item: dict[str, Any], field: str) -> int:
    value = item.get(field)
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be an ISO-8601 datetime string with an offset")
    try:
        return instant_micros(value)
    except TimeParseError as exc:
        raise ValueError(f"'{field}' {exc}") from None
    except OverflowError:
        raise ValueError(f"'{field}' is out of range") from None


def validate_session(item: Any, now_us: int) -> ValidSession:
    """One item, or ValueError with a message naming the field."""
    if not isinstance(item, dict):
        raise ValueError("each session must be a JSON object")
    session_id = _string(item, "session_id", limits.MAX_SESSION_ID_LENGTH)
    external_id = _string(item, "external_id", limits.MAX_EXTERNAL_ID_LENGTH)
    app_id = _string(item, "app_id", limits.MAX_APP_ID_LENGTH)
    started_at = _instant(item, "started_at")
    if started_at < EPOCH_US:
        raise ValueError("'started_at' must not be before 1970-01-01T00:00:00Z")
    if started_at > now_us + limits.FUTURE_TOLERANCE_SECONDS * 1_000_000:
        raise ValueError("'started_at' must not be more than 24 hours in the future")
    ended_at = None
    if item.get("ended_at") is not None:
        ended_at = _instant(item, "ended_at")
        if ended_at < started_at:
            raise ValueError("'ended_at' must not be before 'started_at'")
    return ValidSession(session_id, external_id, app_id, started_at, ended_at)


def validate_batch(items: list[Any], now_us: int) -> tuple[list[tuple[int, ValidSession]], list[ItemError]]:
    valid: list[tuple[int, ValidSession]] = []
    errors: list[ItemError] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, validate_session(item, now_us)))
        except ValueError as exc:
            errors.append(ItemError(index, str(exc)))
    return valid, errors
