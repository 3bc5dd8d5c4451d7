"""Erasure of a user and retention in the store (issue 20 items 2 and 3), on both engines:
``Store.erase_user`` removes a person's rows and every count it contributed, in one
transaction; ``Store.expire_raw_rows`` deletes raw rows past the horizon in bounded
batches without changing a series. The brute-force comparison with a world without the
person is tests/test_erasure_oracle.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sessiontally import admin, audience, kpi
from sessiontally.store import erasure
from sessiontally.store.base import NewEvent, NewSession, Store

S = 1_000_000
DAY = 86_400 * S
T0 = 1_750_000_000 * S  # 2025-06-15T15:06:40Z
PRO = '{"attribute": "plan", "op": "eq", "value": "pro"}'


def tenant(store: Store, apps: int = 2) -> tuple[Any, list[Any]]:
    ws = admin.create_workspace(store, f"ws-{uuid.uuid4().hex[:12]}", "America/New_York")
    return ws, [admin.create_app(store, ws, f"app{i}") for i in range(apps)]


def pros(store: Store, ws: Any, *users: str) -> None:
    audience.track_users(store, ws, {"attributes": [{"external_id": u, "plan": "pro"} for u in users]}, T0)


def snapshot(store: Store, w: int, apps: list[Any]) -> dict[str, Any]:
    """Every count a workspace's series read, over a month around T0."""
    lo, hi = (T0 - 10 * DAY) // (900 * S), (T0 + 20 * DAY) // (900 * S)
    edges = list(range(lo, hi, 4))  # hours
    days = (T0 - 10 * DAY) // DAY, (T0 + 50 * DAY) // DAY
    found: dict[str, Any] = {"names": store.event_names(w, 0, 100)}
    for app_key in (0, *(a.app_key for a in apps)):
        for segment_key in (0, 1):
            found[f"sessions {app_key}/{segment_key}"] = store.count_by_quarters(
                w, app_key, segment_key, edges)
            for name in found["names"]:
                key = store.event_name_key(w, name)
                assert key is not None
                found[f"{name} {app_key}/{segment_key}"] = store.count_events_by_quarters(
                    w, app_key, segment_key, key, edges)
        for kind in (kpi.DAU, kpi.MAU, kpi.NEW_USERS, kpi.UNINSTALLS):
            found[f"kpi {kind} {app_key}"] = store.kpi_series(w, app_key, kind, *days)
    return found


def history(store: Store, w: int, apps: list[Any], who: str, anon: str, offset: int = 0) -> None:
    """Sessions and events of one user ``who`` (recorded sessions; events as itself and as
    an anonymous id linked by userId), with a tracked segment matching it."""
    classify = audience.SegmentClassifier()
    store.record_sessions(w, [NewSession(f"{who}-s{i}", who, apps[i % 2].app_key,
                                         T0 + i * DAY + offset, None) for i in range(3)], classify)
    events = [NewEvent(f"{who}-m{i}", "track", "Opened" if i % 3 else kpi.UNINSTALL_EVENT,
                       anon if i < 3 else who, who if i != 1 else None, T0 + i * 600 * S + offset,
                       T0) for i in range(6)]
    store.record_events(w, apps[0], events, T0, classify)
    store.record_events(w, apps[1], [e._replace(event=f"Only {who}") for e in events[:2]], T0, classify)


def test_erasing_a_user_leaves_the_counts_of_a_world_without_it(store: Store):
    ws, apps = tenant(store)
    w = ws.workspace_id
    admin.create_segment(store, ws, "pros", PRO, "", (), True)
    pros(store, ws, "amy", "bob")
    history(store, w, apps, "bob", "anon-bob", offset=7 * S)
    before_amy = snapshot(store, w, apps)
    history(store, w, apps, "amy", "anon-amy")
    assert snapshot(store, w, apps) != before_amy
    assert store.erase_user(w, "amy", audience.SegmentClassifier())
    assert snapshot(store, w, apps) == before_amy
    assert store.user_attributes(w, "amy") is None and store.user_attributes(w, "bob") is not None
    assert "Only amy" not in store.event_names(w, 0, 100)
    for app in apps:
        assert {p for p, _, _ in store.derived_sessions(w, app.app_key)} <= {"bob", "anon-bob"}
    assert not store.erase_user(w, "amy")  # nothing left: idempotent
    assert snapshot(store, w, apps) == before_amy
    for app_key in (0, apps[0].app_key, 1):
        store.rollup_total(w, app_key, 0)  # the levels still agree


def test_erasure_touches_no_other_workspace(store: Store):
    ws, apps = tenant(store)
    other, other_apps = tenant(store)
    history(store, ws.workspace_id, apps, "amy", "anon")
    history(store, other.workspace_id, other_apps, "amy", "anon")
    kept = snapshot(store, other.workspace_id, other_apps)
    assert store.erase_user(ws.workspace_id, "amy")
    assert snapshot(store, other.workspace_id, other_apps) == kept
    assert store.count_raw_sessions(ws.workspace_id) == 0
    assert store.count_raw_sessions(other.workspace_id) > 0


def test_rows_recorded_before_their_segments_were_stored_are_matched_at_erasure(store: Store, db_rows):
    """Rows of before migration 0007 (segment_keys NULL) are taken off the segments the
    user's attributes match at erasure: the one approximation."""
    ws, apps = tenant(store)
    w = ws.workspace_id
    admin.create_segment(store, ws, "pros", PRO, "", (), True)
    pros(store, ws, "amy")
    empty = snapshot(store, w, apps)
    history(store, w, apps, "amy", "anon-amy")
    db_rows(store, "UPDATE sessions SET segment_keys = NULL WHERE workspace_id = ?", (w,))
    db_rows(store, "UPDATE events SET segment_keys = NULL WHERE workspace_id = ?", (w,))
    assert store.erase_user(w, "amy", audience.SegmentClassifier())
    assert snapshot(store, w, apps) == empty


def test_retention_deletes_old_raw_rows_in_bounded_batches_and_no_count(store: Store, monkeypatch):
    ws, apps = tenant(store)
    w = ws.workspace_id
    old, young = T0 - 60 * DAY, T0
    for at, tag in ((old, "old"), (young, "young")):
        store.record_sessions(w, [NewSession(f"{tag}{i}", f"u{i % 4}", apps[0].app_key, at + i * S, None)
                                  for i in range(25)])
        store.record_events(w, apps[1], [NewEvent(f"{tag}m{i}", "track", "Opened", f"p{i % 3}", None,
                                                  at + i * 3600 * S, at) for i in range(12)], at)
    lo, hi = (old - DAY) // (900 * S), (young + DAY) // (900 * S)
    days = (old - DAY) // DAY, (young + 40 * DAY) // DAY

    def counts() -> list[Any]:
        key = store.event_name_key(w, "Opened")
        assert key is not None
        return [store.count_by_quarters(w, 0, 0, list(range(lo, hi, 96))),
                store.count_events_by_quarters(w, 0, 0, key, list(range(lo, hi, 96))),
                [store.kpi_series(w, 0, kind, *days) for kind in (1, 2, 3)]]

    before = counts()
    raw_before = store.count_raw_sessions(w)
    transactions: list[int] = []
    original = type(store)._delete_keys  # type: ignore[attr-defined]

    def counted(self, statement, scope, rows, tail):  # type: ignore[no-untyped-def]
        transactions.append(len(rows))
        return original(self, statement, scope, rows, tail)

    monkeypatch.setattr(type(store), "_delete_keys", counted)
    assert store.set_retention(w, 30)
    assert (w, 30) in store.retention_workspaces()
    horizon = young - 30 * DAY
    deleted = store.expire_raw_rows(w, horizon, batch=4)
    assert deleted == {"sessions": 25, "events": 12, "derived_sessions": 12}
    assert transactions and max(transactions) <= 4
    assert counts() == before
    assert store.count_raw_sessions(w) == raw_before - 25 - 12
    assert store.expire_raw_rows(w, horizon) == {"sessions": 0, "events": 0, "derived_sessions": 0}
    assert store.get_workspace(w).retention_days == 30  # type: ignore[union-attr]
    assert store.set_retention(w, None) and (w, 30) not in store.retention_workspaces()


def test_derived_sessions_are_kept_a_longest_timeout_past_the_horizon(store: Store):
    """An event just inside the horizon can still merge with the session before it."""
    ws, apps = tenant(store, apps=1)
    w = ws.workspace_id
    horizon = T0
    store.record_events(w, apps[0], [NewEvent("a", "page", None, "p", None, horizon - DAY, T0)], T0)
    assert store.expire_raw_rows(w, horizon)["derived_sessions"] == 0
    assert store.derived_sessions(w, apps[0].app_key)
    assert store.expire_raw_rows(w, horizon + 8 * DAY)["derived_sessions"] == 1


def test_the_batch_is_small():
    assert erasure.EXPIRY_BATCH <= 1000


@pytest.fixture
def db_rows(engine: str):
    """Run one statement on a store's database directly (what a store of before 0007 left)."""

    def run(store: Store, statement: str, params: tuple[Any, ...]) -> None:
        if engine == "sqlite":
            import sqlite3

            with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
                conn.execute(statement, params)
        else:
            import psycopg

            with psycopg.connect(store.url) as conn:  # type: ignore[attr-defined]
                conn.execute(statement.replace("?", "%s"), params)

    return run


def test_items_older_than_the_retention_are_refused(store: Store):
    """Sessions and tracking messages past the horizon are refused item by item: their
    ids, and the sessions they would merge with, may be deleted already."""
    from segment_support import FakeClock, service_for

    from sessiontally import tracking

    ws, apps = tenant(store, apps=1)
    store.set_retention(ws.workspace_id, 30)
    ws = store.get_workspace(ws.workspace_id)
    service = service_for(store, FakeClock(T0 / S))
    old, young = "2025-05-01T00:00:00Z", "2025-06-10T00:00:00Z"  # T0 is 2025-06-15
    result = service.record_items(ws, [
        {"session_id": "a", "external_id": "amy", "app_id": apps[0].app_id, "started_at": old},
        {"session_id": "b", "external_id": "amy", "app_id": apps[0].app_id, "started_at": young}])
    assert result.recorded == 1
    assert [e["index"] for e in result.errors] == [0] and "retention" in result.errors[0]["message"]
    request = tracking.read_request({"batch": [
        {"type": "track", "event": "Opened", "userId": "amy", "messageId": "m1", "timestamp": old},
        {"type": "track", "event": "Opened", "userId": "amy", "messageId": "m2", "timestamp": young}]},
        "batch")
    answer = service.track_messages(apps[0], request, "batch", 100)
    assert answer["rejected"] == [
        {"index": 0, "message": "older than the workspace's retention: no longer accepted"}]
    assert len(store.derived_sessions(ws.workspace_id, apps[0].app_key)) == 1


@pytest.mark.parametrize("keys", ["never reused", "reused"])
def test_erasing_a_user_of_a_deleted_segment_leaves_a_new_segment_alone(
    store: Store, keys: str, monkeypatch
):
    """A user recorded under a tracked segment that was deleted since: erasing the user
    takes nothing off a segment created after (its key is new; and should a key come
    back, the deleted segment's key is no longer in the raw rows' segment_keys)."""
    from sessiontally.store import sql

    if keys == "reused":  # a store that hands out a freed key again (as before 0008)
        monkeypatch.setattr(sql, "NEXT_SEGMENT_KEY", "SELECT COALESCE(MAX(segment_key), 0) + 1"
                            " FROM segments WHERE workspace_id = ? AND ? IS NOT NULL")
    ws, apps = tenant(store, apps=1)
    w = ws.workspace_id
    old = admin.create_segment(store, ws, "pros", PRO, "", (), True)
    pros(store, ws, "u1")
    classify = audience.SegmentClassifier()
    store.record_sessions(w, [NewSession("s1", "u1", apps[0].app_key, T0, None)], classify)
    store.record_events(w, apps[0], [NewEvent("m1", "track", "Opened", "u1", "u1", T0, T0)],
                        T0, classify)
    assert store.rollup_total(w, 0, old.segment_key) == 2  # recorded, and derived from m1
    assert store.delete_segment(w, old.segment_id)
    new = admin.create_segment(store, ws, "pros again", PRO, "", (), True)
    assert (new.segment_key == old.segment_key) == (keys == "reused")
    edges = [T0 // (900 * S) - 4, T0 // (900 * S) + 100]
    assert store.erase_user(w, "u1", classify)
    assert store.count_by_quarters(w, 0, new.segment_key, edges) == [0]
    assert store.rollup_total(w, 0, new.segment_key) == 0
    name_key = store.event_name_key(w, "Opened")
    if name_key is not None:
        assert store.count_events_by_quarters(w, 0, new.segment_key, name_key, edges) == [0]
