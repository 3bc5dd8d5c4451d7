"""API keys: generation, hashing at rest, and the permission names. Pure.

A key is ``st_<workspace id>_`` followed by 43 URL-safe characters from ``secrets`` (256
bits). The workspace id in the clear routes the lookup to the workspace (one shard on
Citus) and reveals nothing secret. Only the key's SHA-256 is stored: a key has far too
much entropy for a slow password hash to add anything, and a fast hash keeps
authentication cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

PERMISSIONS = (
    "sessions.data_series",
    "sessions.track",
    "users.track",
    "users.delete",
    "segments.list",
    "segments.details",
    "kpi.dau.data_series",
    "kpi.mau.data_series",
    "kpi.new_users.data_series",
    "kpi.uninstalls.data_series",
    "events.list",
    "events.data_series",
)
KEY_PREFIX = "st_"
MAX_KEY_LENGTH = 256


_KEY_FORMAT = re.compile(r"st_([1-9][0-9]{0,17})_[A-Za-z0-9_-]{43}", re.ASCII)


def generate_key(workspace_id: int) -> str:
    return f"{KEY_PREFIX}{workspace_id}_{secrets.token_urlsafe(32)}"


def workspace_of(key: str) -> int | None:
    """The workspace id a well-formed key names, or None for anything else."""
    match = _KEY_FORMAT.fullmatch(key)
    return int(match.group(1)) if match else None


def query_may_hold_key(pairs: Iterable[tuple[str, str]]) -> bool:
    """Whether query parameters may carry a key (the legacy ``api_key`` parameter, or
    anything with a key's prefix): such a query string is never kept in a cache."""
    return any(name == "api_key" or KEY_PREFIX in name or KEY_PREFIX in value for name, value in pairs)


# Write keys (the tracking API's per-app credential) are not secrets: they ship inside
# web pages and apps, can only add events to their own app, and are stored as they are.
WRITE_KEY_PREFIX = "wk_"
_WRITE_KEY_FORMAT = re.compile(r"wk_([1-9][0-9]{0,17})_[A-Za-z0-9]{16,64}", re.ASCII)


def generate_write_key(workspace_id: int) -> str:
    return f"{WRITE_KEY_PREFIX}{workspace_id}_{secrets.token_hex(16)}"


def write_key_workspace(key: str) -> int | None:
    """The workspace id a well-formed write key names, or None for anything else."""
    match = _WRITE_KEY_FORMAT.fullmatch(key)
    return int(match.group(1)) if match else None


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def hashes_match(presented: bytes, stored: bytes) -> bool:
    """Constant-time comparison of two key hashes."""
    return hmac.compare_digest(presented, stored)


def display_prefix(key: str) -> str:
    """``st_<workspace>_`` and 6 secret characters: enough to tell keys apart in listings."""
    workspace_id = workspace_of(key)
    head = f"{KEY_PREFIX}{workspace_id}_" if workspace_id is not None else ""
    return key[: len(head) + 6]
