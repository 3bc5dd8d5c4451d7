"""Operator use cases behind the CLI: workspaces, apps and keys (validated here, stored below)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from . import buckets, ipallow, keys, limits
from .store.base import App, DuplicateNameError, Store, Workspace


class AdminError(ValueError):
    """A refused operator request; the message is shown as is."""


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
        raise AdminError(f"{what} must be 1 to {limits.MAX_NAME_LENGTH} characters")
    return value


def create_workspace(
    store: Store, name: str, time_zone: str = "UTC", rate_limit: int = limits.DEFAULT_RATE_LIMIT
) -> Workspace:
    name = _name(name, "workspace name")
    if name.isdigit():
        raise AdminError("workspace name must not be all digits (digits name a workspace id)")
    try:
        buckets.load_zone(time_zone)
    except buckets.UnknownZoneError:
        raise AdminError(f"unknown IANA time zone: {time_zone!r}") from None
    if rate_limit < 1:
        raise AdminError("rate limit must be a positive number of requests per hour")
    try:
        return store.create_workspace(name, time_zone, rate_limit)
    except DuplicateNameError as exc:
        raise AdminError(str(exc)) from None


def resolve_workspace(store: Store, ref: str) -> Workspace:
    """A workspace by id (all digits) or by name."""
    workspace = store.get_workspace(int(ref)) if ref.isdigit() else store.find_workspace(ref)
    if workspace is None:
        raise AdminError(f"no workspace {ref!r}")
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
        raise AdminError("give at least one --permission")
    unknown = [p for p in permissions if p not in keys.PERMISSIONS]
    if unknown:
        raise AdminError(
            f"unknown permission {unknown[0]!r}; choose from: {', '.join(keys.PERMISSIONS)}"
        )
    networks = []
    for entry in allowed_ips:
        try:
            networks.append(str(ipallow.parse_entry(entry)))
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    secret = keys.generate_key()
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
        raise AdminError("no such active key in this workspace")
