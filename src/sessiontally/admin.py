"""Operator use cases behind the CLI: workspaces, apps and keys (validated here, stored below)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from . import buckets, ipallow, keys, limits, segments
from .errors import DuplicateName, InvalidInput, NotFound
from .store.base import App, Segment, Store, Workspace


@dataclass(frozen=True, slots=True)
class CreatedKey:
    workspace_id: int
    key_id: int
    name: str
    key: str  # the secret, shown once
    permissions: tuple[str, ...]
    allowed_ips: tuple[str, ...]


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= limits.MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} must be 1 to {limits.MAX_NAME_LENGTH} characters")
    return value


def create_workspace(
    store: Store, name: str, time_zone: str = "UTC", rate_limit: int = limits.DEFAULT_RATE_LIMIT
) -> Workspace:
    name = _name(name, "workspace name")
    if name.isdigit():
        raise InvalidInput("workspace name must not be all digits (digits name a workspace id)")
    try:
        buckets.load_zone(time_zone)
    except buckets.UnknownZoneError:
        raise InvalidInput(f"unknown IANA time zone: {time_zone!r}") from None
    if rate_limit < 1:
        raise InvalidInput("rate limit must be a positive number of requests per hour")
    try:
        return store.create_workspace(name, time_zone, rate_limit)
    except DuplicateName:  # the engine cannot name it: its driver's error does not
        raise DuplicateName(f"a workspace named {name!r} already exists") from None


def resolve_workspace(store: Store, ref: str) -> Workspace:
    """A workspace by id (all digits) or by name."""
    workspace = store.get_workspace(int(ref)) if ref.isdigit() else store.find_workspace(ref)
    if workspace is None:
        raise NotFound(f"no workspace {ref!r}")
    return workspace


def create_app(store: Store, workspace: Workspace, name: str, platform: str | None = None) -> App:
    name = _name(name, "app name")
    if platform is not None:
        platform = _name(platform, "platform").lower()
    return store.create_app(workspace.workspace_id, str(uuid.uuid4()), name, platform)


def create_key(
    store: Store,
    workspace: Workspace,
    name: str,
    permissions: Sequence[str],
    allowed_ips: Sequence[str] = (),
) -> CreatedKey:
    name = _name(name, "key name")
    if not permissions:
        raise InvalidInput("give at least one --permission")
    unknown = [p for p in permissions if p not in keys.PERMISSIONS]
    if unknown:
        raise InvalidInput(
            f"unknown permission {unknown[0]!r}; choose from: {', '.join(keys.PERMISSIONS)}"
        )
    networks = []
    for entry in allowed_ips:
        try:
            networks.append(str(ipallow.parse_entry(entry)))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    secret = keys.generate_key(workspace.workspace_id)
    ordered = tuple(dict.fromkeys(permissions))
    key_id = store.create_key(
        workspace.workspace_id,
        name,
        keys.hash_key(secret),
        keys.display_prefix(secret),
        ordered,
        networks,
    )
    return CreatedKey(workspace.workspace_id, key_id, name, secret, ordered, tuple(networks))


def revoke_key(store: Store, workspace: Workspace, ref: str) -> None:
    """Revoke by the key itself or by its numeric id within the workspace."""
    key_id = int(ref) if ref.isdigit() else None
    key_hash = None if key_id is not None else keys.hash_key(ref)
    if not store.revoke_key(workspace.workspace_id, key_hash, key_id):
        raise NotFound("no such active key in this workspace")


# ---------------------------------------------------------------------- segments

MAX_TAGS = 20
MAX_TAG_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 4000


def create_segment(
    store: Store,
    workspace: Workspace,
    name: str,
    filter_text: str,
    description: str = "",
    tags: Sequence[str] = (),
    analytics: bool = False,
) -> Segment:
    """A segment from a filter given as JSON text (validated; stored in canonical form)."""
    name = _name(name, "segment name")
    try:
        parsed = segments.parse_filter_json(filter_text)
    except segments.FilterError as exc:
        raise InvalidInput(f"invalid filter: {exc}") from None
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
    clean_tags = list(dict.fromkeys(t.strip() for t in tags))
    if len(clean_tags) > MAX_TAGS or any(not 1 <= len(t) <= MAX_TAG_LENGTH for t in clean_tags):
        raise InvalidInput(f"at most {MAX_TAGS} tags of 1 to {MAX_TAG_LENGTH} characters")
    canonical = orjson.dumps(segments.filter_to_json(parsed)).decode()
    return store.create_segment(  # too many tracked: TrackingLimitError, a Conflict
        workspace.workspace_id, str(uuid.uuid4()), name, description, clean_tags, canonical,
        analytics, _now_us(),
    )


def set_segment_analytics(store: Store, workspace: Workspace, segment_id: str, enabled: bool) -> Segment:
    """Turn analytics tracking on or off (not retroactive: counting starts now)."""
    # too many tracked: TrackingLimitError, a Conflict
    segment = store.set_segment_tracking(workspace.workspace_id, segment_id, enabled, _now_us())
    if segment is None:
        raise NotFound(f"no segment {segment_id!r} in this workspace")
    return segment


def _now_us() -> int:
    return int(time.time() * 1_000_000)
