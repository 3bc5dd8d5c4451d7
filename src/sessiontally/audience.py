"""Use cases for users and segments: record attributes, classify sessions into tracked
segments, and the Braze-shaped segment listings. Knows nothing of HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from . import attributes, segments
from .errors import InvalidInput
from .store.base import Segment, Store, TrackedSegment, Workspace

SEGMENTS_PAGE_SIZE = 100
_DECODED_CACHE_SIZE = 50_000
_MAX_PAGE = 10_000_000


class SegmentClassifier:
    """Matches users' stored attributes against the tracked segments' filters.

    Compiled filters are cached by their canonical JSON, so a segment is parsed once per
    process, not once per batch."""

    def __init__(self) -> None:
        self._compiled: dict[str, segments.Matcher] = {}
        # Stored attribute texts seen recently, decoded: active users record many
        # sessions, and decoding dominates classification otherwise.
        self._decoded: dict[str, dict[str, attributes.Value]] = {}

    def _matcher(self, filter_json: str) -> segments.Matcher:
        matcher = self._compiled.get(filter_json)
        if matcher is None:
            if len(self._compiled) > 10_000:
                self._compiled.clear()
            matcher = segments.compile_filter(segments.parse_filter_json(filter_json))
            self._compiled[filter_json] = matcher
        return matcher

    def __call__(
        self, tracked: Sequence[TrackedSegment], users: Sequence[str], stored: Mapping[str, str]
    ) -> dict[str, tuple[int, ...]]:
        rules = [(t.segment_key, self._matcher(t.filter_json)) for t in tracked]
        # A user with no stored attributes has none: only filters that match an empty
        # attribute set (such as not_exists) apply.
        no_attributes = tuple(key for key, match in rules if match({}))
        matches: dict[str, tuple[int, ...]] = {}
        for external_id in users:
            text = stored.get(external_id)
            if text is None:
                matches[external_id] = no_attributes
                continue
            values = self._decoded.get(text)
            if values is None:
                if len(self._decoded) >= _DECODED_CACHE_SIZE:
                    self._decoded.clear()
                values = self._decoded[text] = attributes.decode_values(orjson.loads(text))
            matches[external_id] = tuple(key for key, match in rules if match(values))
        return matches


def track_users(store: Store, workspace: Workspace, body: Any, now_us: int) -> dict[str, Any]:
    """Apply a ``/users/track`` body; the 201 body, or InvalidInput."""
    try:
        valid, errors = attributes.validate_users_batch(body)
    except attributes.UsersBatchError as exc:
        raise InvalidInput(str(exc)) from None
    valid, errors = _refuse_nul_external_ids(valid, errors)
    if not valid:
        raise InvalidInput("no valid attributes objects in the request", errors)
    updates = [update for _, update in valid]

    def apply(current: Mapping[str, str]) -> dict[str, str]:
        state = {ext: attributes.decode_values(orjson.loads(text)) for ext, text in current.items()}
        for update in updates:  # in index order: the last write wins
            if update.update_existing_only and update.external_id not in state:
                continue
            state[update.external_id] = attributes.apply_update(
                state.get(update.external_id, {}), update
            )
        return {
            ext: orjson.dumps(attributes.encode_values(values)).decode()
            for ext, values in state.items()
        }

    store.update_users(workspace.workspace_id, [u.external_id for u in updates], apply, now_us)
    response: dict[str, Any] = {"message": "success", "attributes_processed": len(valid)}
    if errors:
        response["errors"] = errors
    return response


def _storable_id(value: str) -> bool:
    """Could be a stored id: not over 64 characters, no NUL (PostgreSQL text cannot hold one,
    and the query would fail instead of finding nothing)."""
    return len(value) <= 64 and "\x00" not in value


def _refuse_nul_external_ids(
    valid: list[tuple[int, attributes.UserAttributes]], errors: list[dict[str, Any]]
) -> tuple[list[tuple[int, attributes.UserAttributes]], list[dict[str, Any]]]:
    """Refuse, as item errors, objects whose external_id holds a NUL character: PostgreSQL
    text cannot store it (a 500 there), so it is refused on every engine alike."""
    refused = [
        {"index": index, "message": "'external_id' must not contain NUL (U+0000) characters"}
        for index, update in valid
        if "\x00" in update.external_id
    ]
    if not refused:
        return valid, errors
    kept = [(index, update) for index, update in valid if "\x00" not in update.external_id]
    # attributes errors by index first, then those of the unsupported parts
    merged = sorted(errors + refused, key=lambda e: ("part" in e, e.get("part", ""), e["index"]))
    return kept, merged


def _unique_params(pairs: Iterable[tuple[str, str]], known: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in known:
            continue
        if name in values:
            raise InvalidInput(f"'{name}' is given more than once")
        values[name] = value
    return values


def list_segments(store: Store, workspace: Workspace, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    params = _unique_params(pairs, ("page", "sort_direction"))
    raw_page = params.get("page", "0")
    if not raw_page.isascii() or not raw_page.isdigit() or len(raw_page) > 8 or (
        len(raw_page) > 1 and raw_page.startswith("0")
    ):
        raise InvalidInput("'page' must be a non-negative integer")
    page = int(raw_page)
    if page > _MAX_PAGE:
        raise InvalidInput("'page' is too large")
    direction = params.get("sort_direction", "asc").lower()
    if direction not in ("asc", "desc"):
        raise InvalidInput("'sort_direction' must be 'asc' or 'desc'")
    found = store.list_segments(
        workspace.workspace_id, page * SEGMENTS_PAGE_SIZE, SEGMENTS_PAGE_SIZE, direction == "desc"
    )
    return {
        "segments": [
            {
                "id": s.segment_id,
                "name": s.name,
                "analytics_tracking_enabled": s.analytics_enabled,
                "tags": list(s.tags),
            }
            for s in found
        ],
        "message": "success",
    }


def segment_details(store: Store, workspace: Workspace, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    params = _unique_params(pairs, ("segment_id",))
    segment_id = params.get("segment_id")
    if not segment_id:
        raise InvalidInput("'segment_id' is required")
    segment = store.get_segment(workspace.workspace_id, segment_id) if _storable_id(segment_id) else None
    if segment is None:
        raise InvalidInput("'segment_id' is not a segment of this workspace")
    return {
        "created_at": iso_micros(segment.created_at),
        "updated_at": iso_micros(segment.updated_at),
        "name": segment.name,
        "description": segment.description,
        "text_description": describe_segment(segment),
        "tags": list(segment.tags),
        "message": "success",
    }


def tracked_segment_key(store: Store, workspace: Workspace, segment_id: str) -> int:
    """The rollup key of a tracked segment of the workspace, or InvalidInput saying why not."""
    segment = store.get_segment(workspace.workspace_id, segment_id) if _storable_id(segment_id) else None
    if segment is None:
        raise InvalidInput("'segment_id' is not a segment of this workspace")
    if not segment.analytics_enabled:
        raise InvalidInput("'segment_id' names a segment whose analytics tracking is off")
    return segment.segment_key


def describe_segment(segment: Segment) -> str:
    return segments.describe(segments.parse_filter_json(segment.filter_json))


def iso_micros(micros: int) -> str:
    moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
