"""API keys: generation, hashing at rest, and the permission names. Pure.

A key is ``st_`` followed by 43 URL-safe characters from ``secrets`` (256 bits). Only its
SHA-256 is stored: a key has far too much entropy for a slow password hash to add
anything, and a fast hash keeps authentication cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PERMISSIONS = (
    "sessions.data_series",
    "sessions.track",
    "users.track",
    "segments.list",
    "segments.details",
)
KEY_PREFIX = "st_"
MAX_KEY_LENGTH = 256


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def hashes_match(presented: bytes, stored: bytes) -> bool:
    """Constant-time comparison of two key hashes."""
    return hmac.compare_digest(presented, stored)


def display_prefix(key: str) -> str:
    return key[:10]
