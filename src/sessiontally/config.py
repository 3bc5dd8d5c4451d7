"""Settings of a running service, read from the environment (docs/operations.md lists them)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .store import database_url


@dataclass(frozen=True, slots=True)
class Settings:
    database: str
    redis_url: str | None
    log_level: str
    read_cache: int = 512  # read answers kept per connection of the embedded store; 0 = off

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database=database_url(),
            redis_url=os.environ.get("SESSIONTALLY_REDIS_URL") or None,
            log_level=os.environ.get("SESSIONTALLY_LOG_LEVEL", "INFO"),
            read_cache=_count("SESSIONTALLY_READ_CACHE", 512),
        )


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"{name} must be a whole number (got {raw!r})")
    return int(raw)
