"""Helpers of the users/segments tests: services over a store (``service_for``, with a
``FakeClock`` and a limiter that never limits), workspaces, random filter trees
(``filter_trees``), and ``reference_match``, an interpreter of the filter language written
from its documentation, independent of ``sessiontally.segments``.

Stores of either engine come from ``db_support.open_test_store`` (re-exported here with
``ENGINES`` for the modules that import them from this one).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from db_support import ENGINES, open_test_store  # noqa: F401 - re-exported
from hypothesis import strategies as st

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


def filter_trees(conditions: st.SearchStrategy[dict[str, Any]], max_leaves: int) -> st.SearchStrategy[Any]:
    """Filters (as JSON) built from ``conditions`` with ``all``, ``any`` and ``not``."""
    return st.recursive(
        conditions,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"all": items}),
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
            children.map(lambda child: {"not": child}),
        ),
        max_leaves=max_leaves,
    )


# Compares an attribute's (type, payload) with a filter's value for one of the typed
# operators (eq ne gt gte lt lte in not_in): compare(op, type, payload, value).
Compare = Callable[[str, str, Any, Any], bool]


def reference_match(node: dict[str, Any], user: Mapping[str, tuple[str, Any]], compare: Compare) -> bool:
    """Whether ``user`` (attribute name: (type, payload)) matches the filter ``node`` (its
    JSON), by the documented rules: combinators, presence, ``contains`` and
    ``starts_with`` here, the typed comparisons by ``compare``."""
    if "all" in node:
        return all(reference_match(child, user, compare) for child in node["all"])
    if "any" in node:
        return any(reference_match(child, user, compare) for child in node["any"])
    if "not" in node:
        return not reference_match(node["not"], user, compare)
    op, current = node["op"], user.get(node["attribute"])
    if op == "exists":
        return current is not None
    if op == "not_exists":
        return current is None
    if current is None:
        return False
    kind, payload = current
    if op == "contains":
        return kind in ("s", "a") and node["value"] in payload
    if op == "starts_with":
        return kind == "s" and payload.startswith(node["value"])
    return compare(op, kind, payload, node["value"])
