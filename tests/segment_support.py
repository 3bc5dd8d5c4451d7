"""Helpers of the users/segments tests: services over a store (``service_for``, with a
``FakeClock`` and a limiter that never limits) and workspaces.

Stores of either engine come from ``db_support.open_test_store`` (re-exported here with
``ENGINES`` for the modules that import them from this one).
"""

from __future__ import annotations

import uuid
from typing import Any

from db_support import ENGINES, open_test_store  # noqa: F401 - re-exported

from sessiontally import admin
from sessiontally.ratelimit import RateDecision
from sessiontally.service import Service
from sessiontally.store.base import Store, Workspace
from sessiontally.store.sqlite import SqliteStore


def store_url(store: Store) -> str:
    """The URL the CLI would be given for this store."""
    if isinstance(store, SqliteStore):
        return store.path
    return str(store.url)  # type: ignore[attr-defined]  # a PostgresStore's URL


class UnlimitedLimiter:
    """The service's rate limiter, never limiting (in-process tests do not count requests)."""

    never_blocks = True

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        return RateDecision(limit, limit, 0, True)

    def close(self) -> None:
        pass


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service_for(store: Store, clock: Any = None) -> Service:
    return Service(store, UnlimitedLimiter(), clock) if clock else Service(store, UnlimitedLimiter())


def new_workspace(store: Store, time_zone: str = "UTC") -> Workspace:
    return admin.create_workspace(store, f"ws-{uuid.uuid4().hex[:12]}", time_zone)

