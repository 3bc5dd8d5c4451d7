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

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database=database_url(),
            redis_url=os.environ.get("SESSIONTALLY_REDIS_URL") or None,
            log_level=os.environ.get("SESSIONTALLY_LOG_LEVEL", "INFO"),
        )
