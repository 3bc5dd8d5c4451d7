"""Operator use cases behind the CLI: workspaces, apps and keys (validated here, stored below)."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from . import buckets, ipallow, keys, limits, segments, sessionize
from .errors import Conflict, DuplicateName, InvalidInput, NotFound
from .store.base import App, KeyInfo, Segment, Store, Workspace


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
        raise InvalidInput(buckets.unknown_zone_message(
            f"unknown IANA time zone: {time_zone!r}", time_zone)) from None
    if rate_limit < 1:
        raise InvalidInput("rate limit must be a positive number of requests per hour")
    try:
        return store.create_workspace(name, time_zone, rate_limit)
    except DuplicateName:  # the engine cannot name it: its driver's error does not
        raise DuplicateName(f"a workspace named {name!r} already exists") from None


@dataclass(frozen=True, slots=True)
class WorkspaceSummary:
    workspace: Workspace
    created_at: int  # seconds since the epoch
    apps: int


def list_workspaces(store: Store) -> list[WorkspaceSummary]:
    """Every workspace, by id, with its creation time and number of apps."""
    return [WorkspaceSummary(ws, created, len(store.list_apps(ws.workspace_id)))
            for ws, created in store.list_workspaces()]


def summarise_workspace(store: Store, workspace: Workspace) -> WorkspaceSummary:
    for summary in list_workspaces(store):
        if summary.workspace.workspace_id == workspace.workspace_id:
            return summary
    raise NotFound(f"no workspace {workspace.name!r}")


def update_workspace(
    store: Store, workspace: Workspace, time_zone: str | None = None, rate_limit: int | None = None
) -> Workspace:
    """Change the zone (the KPI days are rebuilt in it) and/or the hourly request limit
    (it applies from the next request: the service reads it with the key); what is not
    given stays as it is. Everything is checked before anything changes."""
    if time_zone is None and rate_limit is None:
        raise InvalidInput("nothing to change: give a time zone or a rate limit")
    if rate_limit is not None:
        _check_range(rate_limit, 1, MAX_RATE_LIMIT, "rate limit", "requests per hour")
    if time_zone is not None:
        _check_zone(time_zone)
        _check_zone_change_allowed(workspace, time_zone)
    if rate_limit is not None and not store.set_rate_limit(workspace.workspace_id, rate_limit):
        raise NotFound(f"no workspace {workspace.name!r}")
    if time_zone is not None:
        return change_time_zone(store, workspace, time_zone)
    changed = store.get_workspace(workspace.workspace_id)
    if changed is None:
        raise NotFound(f"no workspace {workspace.name!r}")
    return changed


def delete_workspace(store: Store, workspace: Workspace) -> None:
    """Delete the workspace and all of its data in one transaction; its keys, write keys
    and members' sessions stop working at once."""
    if not store.delete_workspace(workspace.workspace_id):
        raise NotFound(f"no workspace {workspace.name!r}")


def _check_zone(time_zone: str) -> None:
    try:
        buckets.load_zone(time_zone)
    except buckets.UnknownZoneError:
        raise InvalidInput(f"unknown IANA time zone: {time_zone!r}") from None


def _check_zone_change_allowed(workspace: Workspace, time_zone: str) -> None:
    """A workspace with a retention keeps its zone: the KPI days are rebuilt from the raw
    rows, and past the horizon those are gone, so the rebuild would drop the old days'
    counts and count long-standing users as new on their first day kept."""
    if workspace.retention_days is not None and time_zone != workspace.time_zone:
        raise Conflict(
            f"workspace {workspace.name!r} keeps raw rows {workspace.retention_days} days, so its "
            "daily KPIs cannot be rebuilt in another zone (the rows past the horizon are gone); "
            "its zone stays as it is")


def change_time_zone(store: Store, workspace: Workspace, time_zone: str) -> Workspace:
    """Set the workspace's zone: KPI days are rebuilt in it from the raw sessions and
    events (docs/architecture.md, "Zone changes"); the session series need nothing."""
    try:
        buckets.load_zone(time_zone)
    except buckets.UnknownZoneError:
        raise InvalidInput(buckets.unknown_zone_message(
            f"unknown IANA time zone: {time_zone!r}", time_zone)) from None
    _check_zone_change_allowed(workspace, time_zone)
    store.change_time_zone(workspace.workspace_id, time_zone)
    changed = store.get_workspace(workspace.workspace_id)
    assert changed is not None
    return changed


def resolve_workspace(store: Store, ref: str) -> Workspace:
    """A workspace by id (all digits) or by name."""
    workspace = store.get_workspace(int(ref)) if ref.isdigit() else store.find_workspace(ref)
    if workspace is None:
        raise NotFound(f"no workspace {ref!r}")
    return workspace


# The platforms an app may be created with (Braze's app platforms, "server" for a back end
# sending through Segment's server-side libraries, and "other"). Apps
# stored before the list existed keep whatever they have: only a new app is checked.
PLATFORMS = ("ios", "android", "web", "tvos", "macos", "windows", "roku", "kindle", "server", "other")


def check_platform(platform: str) -> str:
    """``platform`` in lower case, or InvalidInput naming the platforms there are."""
    chosen = platform.strip().lower()
    if chosen not in PLATFORMS:
        raise InvalidInput(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    return chosen


def create_app(store: Store, workspace: Workspace, name: str, platform: str | None = None) -> App:
    name = _name(name, "app name")
    if platform is not None:
        platform = check_platform(platform)
    return store.create_app(workspace.workspace_id, str(uuid.uuid4()), name, platform)


def resolve_app(store: Store, workspace: Workspace, ref: str) -> App:
    """An app of the workspace by its app id or by its name (which must be unique)."""
    ref = ref.strip()
    found = store.find_app(workspace.workspace_id, ref) if ref else None
    if found is not None:
        return found
    apps = store.list_apps(workspace.workspace_id)
    named = [a for a in apps if a.name == ref] or [a for a in apps if a.name.casefold() == ref.casefold()]
    if not named:
        raise NotFound(f"no app {ref!r} in workspace {workspace.name!r}")
    if len(named) > 1:
        raise InvalidInput(f"{len(named)} apps of workspace {workspace.name!r} are named {ref!r}: "
                           "give the app id instead")
    return named[0]


def delete_app(store: Store, workspace: Workspace, app: App) -> None:
    """Delete the app, its write key, its sessions and events and every count it made
    (its share of the all-apps series and KPIs included), in one transaction."""
    if not store.delete_app(workspace.workspace_id, app.app_key):
        raise NotFound(f"no app {app.app_id!r} in workspace {workspace.name!r}")


def rotate_write_key(store: Store, workspace: Workspace, app: App) -> App:
    """Give the app a new write key; the old one stops working as soon as this returns."""
    new_key = keys.generate_write_key(workspace.workspace_id)
    if not store.set_write_key(workspace.workspace_id, app.app_key, new_key):
        raise NotFound(f"no app {app.app_id!r} in workspace {workspace.name!r}")
    return _reread(store, workspace, app)


MAX_EVENT_LIMIT = 10**12
MAX_RATE_LIMIT = 10**12
MAX_ORIGINS = 100
ANY_ORIGIN = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name in the form browsers send it (IDNA names arrive as punycode), or an IPv4 address;
# IPv6 addresses come in brackets and are checked by ``ipaddress`` instead.
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
                        re.ASCII)


def update_app(
    store: Store,
    workspace: Workspace,
    app: App,
    session_timeout_s: int | None = None,
    allowed_origins: Sequence[str] | None = None,
    event_limit: int | None = None,
) -> App:
    """Change an app's session timeout, allowed browser origins (empty: any) or hourly
    message limit; what is not given stays as it is."""
    if session_timeout_s is None and allowed_origins is None and event_limit is None:
        raise InvalidInput("nothing to change: give a session timeout, allowed origins or an event limit")
    if session_timeout_s is not None:
        _check_range(session_timeout_s, sessionize.MIN_TIMEOUT_S, sessionize.MAX_TIMEOUT_S,
                     "session timeout", "seconds")
    if event_limit is not None:
        _check_range(event_limit, 1, MAX_EVENT_LIMIT, "event limit", "messages per hour")
    origins = None if allowed_origins is None else normalise_origins(allowed_origins)
    if not store.update_app(workspace.workspace_id, app.app_key, session_timeout_s, origins, event_limit):
        raise NotFound(f"no app {app.app_id!r} in workspace {workspace.name!r}")
    return _reread(store, workspace, app)


def _check_range(value: int, low: int, high: int, what: str, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what} must be a whole number from {low:,} to {high:,} {unit} "
                           f"(got {value!r})")


def normalise_origins(given: Sequence[str]) -> tuple[str, ...]:
    """Browser origins as the ``Origin`` header spells them, each once; ``*`` alone (or no
    origin at all) allows any origin and is stored as the empty tuple."""
    cleaned = [o.strip() for o in given]
    if ANY_ORIGIN in cleaned:
        if len(set(cleaned)) > 1:
            raise InvalidInput(f"{ANY_ORIGIN!r} allows any origin: give it alone, not with others")
        return ()
    origins = tuple(dict.fromkeys(normalise_origin(o) for o in cleaned))
    if len(origins) > MAX_ORIGINS:
        raise InvalidInput(f"at most {MAX_ORIGINS} allowed origins")
    return origins


def normalise_origin(text: str) -> str:
    """``scheme://host[:port]`` (http or https, no path), in lower case and without the
    scheme's default port, as browsers send it; a lone trailing ``/`` is dropped."""
    shape = f"origin {text!r} must be scheme://host[:port] with http or https and no path"
    candidate = text[:-1] if text.endswith("/") and text.count("/") == 3 else text
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        raise InvalidInput(shape) from None
    scheme = parts.scheme.lower()
    if (scheme not in _DEFAULT_PORTS or parts.path or parts.query or parts.fragment
            or "?" in candidate or "#" in candidate or parts.username is not None
            or parts.password is not None or not parts.hostname):
        raise InvalidInput(shape)
    host = _origin_host(parts.hostname, text, shape)
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    if port == 0:
        raise InvalidInput(shape)
    return f"{scheme}://{host}:{port}"


def _origin_host(hostname: str, text: str, shape: str) -> str:
    """The host part of an origin, checked: a DNS name, an IPv4 address or a bracketed IPv6 one."""
    if ":" in hostname:  # urlsplit drops the brackets of an IPv6 literal
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            raise InvalidInput(shape) from None
    if not hostname.isascii():
        raise InvalidInput(f"origin {text!r}: give the host name in its ASCII (punycode) form")
    if len(hostname) > 253 or not _HOST_NAME.fullmatch(hostname):
        raise InvalidInput(shape)
    return hostname


def _reread(store: Store, workspace: Workspace, app: App) -> App:
    current = store.find_app(workspace.workspace_id, app.app_id)
    if current is None:
        raise NotFound(f"no app {app.app_id!r} in workspace {workspace.name!r}")
    return current


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


def list_keys(store: Store, workspace: Workspace) -> list[KeyInfo]:
    """The workspace's keys (never a key or its hash), revoked ones included."""
    return store.list_keys(workspace.workspace_id)


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
    canonical = _canonical_filter(filter_text)
    _check_description(description)
    clean_tags = _clean_tags(tags)
    return store.create_segment(  # too many tracked: TrackingLimitError, a Conflict
        workspace.workspace_id, str(uuid.uuid4()), name, description, clean_tags, canonical,
        analytics, _now_us(),
    )


def _canonical_filter(filter_text: str) -> str:
    try:
        parsed = segments.parse_filter_json(filter_text)
    except segments.FilterError as exc:
        raise InvalidInput(f"invalid filter: {exc}") from None
    return orjson.dumps(segments.filter_to_json(parsed)).decode()


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")


def _clean_tags(tags: Sequence[str]) -> list[str]:
    clean_tags = list(dict.fromkeys(t.strip() for t in tags))
    if len(clean_tags) > MAX_TAGS or any(not 1 <= len(t) <= MAX_TAG_LENGTH for t in clean_tags):
        raise InvalidInput(f"at most {MAX_TAGS} tags of 1 to {MAX_TAG_LENGTH} characters")
    return clean_tags


def list_segments(store: Store, workspace: Workspace) -> list[Segment]:
    """Every segment of the workspace, oldest first."""
    found: list[Segment] = []
    while True:
        page = store.list_segments(workspace.workspace_id, len(found), 1000, False)
        found += page
        if len(page) < 1000:
            return found


def resolve_segment(store: Store, workspace: Workspace, ref: str) -> Segment:
    """A segment of the workspace by its id or by its name (which must be unique)."""
    ref = ref.strip()
    found = store.get_segment(workspace.workspace_id, ref) if ref else None
    if found is not None:
        return found
    every = list_segments(store, workspace)
    named = [s for s in every if s.name == ref] or [s for s in every if s.name.casefold() == ref.casefold()]
    if not named:
        raise NotFound(f"no segment {ref!r} in workspace {workspace.name!r}")
    if len(named) > 1:
        raise InvalidInput(f"{len(named)} segments of workspace {workspace.name!r} are named {ref!r}: "
                           "give the segment id instead")
    return named[0]


def update_segment(
    store: Store,
    workspace: Workspace,
    segment: Segment,
    name: str | None = None,
    description: str | None = None,
    tags: Sequence[str] | None = None,
    filter_text: str | None = None,
) -> Segment:
    """Change what is given. A new filter is refused while analytics tracking is on (its
    counts were made with the filter it has): turn tracking off, change it, turn it on."""
    if name is None and description is None and tags is None and filter_text is None:
        raise InvalidInput("nothing to change: give a name, a description, tags or a filter")
    if name is not None:
        name = _name(name, "segment name")
    if description is not None:
        _check_description(description)
    clean_tags = None if tags is None else _clean_tags(tags)
    canonical = None if filter_text is None else _canonical_filter(filter_text)
    updated = store.update_segment(workspace.workspace_id, segment.segment_id, _now_us(), name,
                                   description, clean_tags, canonical)
    if updated is None:
        raise NotFound(f"no segment {segment.segment_id!r} in workspace {workspace.name!r}")
    return updated


def delete_segment(store: Store, workspace: Workspace, segment: Segment) -> None:
    """Delete the segment and its counts."""
    if not store.delete_segment(workspace.workspace_id, segment.segment_id):
        raise NotFound(f"no segment {segment.segment_id!r} in workspace {workspace.name!r}")


def set_segment_analytics(store: Store, workspace: Workspace, segment_id: str, enabled: bool) -> Segment:
    """Turn analytics tracking on or off (not retroactive: counting starts now)."""
    # too many tracked: TrackingLimitError, a Conflict
    segment = store.set_segment_tracking(workspace.workspace_id, segment_id, enabled, _now_us())
    if segment is None:
        raise NotFound(f"no segment {segment_id!r} in this workspace")
    return segment


def _now_us() -> int:
    return int(time.time() * 1_000_000)
