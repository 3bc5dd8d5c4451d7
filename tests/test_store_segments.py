"""Store level: users, segments, tracking limits, listing and segment counting, on every
engine (the ``store`` fixture runs each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
import uuid

import orjson
import pytest
from db_support import in_threads
from segment_support import ENGINES, new_workspace, open_test_store

from sessiontally import audience
from sessiontally.store.base import MAX_TRACKED_SEGMENTS, NewSession, TrackingLimitError

US = '{"attribute":"country","op":"eq","value":"US"}'
PRO = '{"attribute":"plan","op":"eq","value":"pro"}'
HOUR_US = 3600 * 1_000_000
T0 = 1_750_000_000 * 1_000_000  # 2025-06-15T15:06:40Z


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    with open_test_store(request.param, tmp_path) as opened:
        yield opened


def make_segment(store, ws, name="seg", analytics=False, filter_json=US, now=T0, tags=(), description=""):
    return store.create_segment(
        ws.workspace_id, str(uuid.uuid4()), name, description, list(tags), filter_json, analytics, now
    )


def attrs_text(**values: object) -> str:
    return orjson.dumps({k: {"t": "s", "v": v} for k, v in values.items()}).decode()


# ----------------------------------------------------------------------------- users


def test_update_users_sees_existing_rows_and_writes_what_it_returns(store):
    ws, other = new_workspace(store), new_workspace(store)
    seen: list[dict[str, str]] = []

    def first(current):
        seen.append(dict(current))
        return {"u1": attrs_text(country="US")}

    store.update_users(ws.workspace_id, ["u1"], first, T0)
    assert seen == [{}]
    assert orjson.loads(store.user_attributes(ws.workspace_id, "u1")) == {"country": {"t": "s", "v": "US"}}

    def second(current):
        seen.append(dict(current))
        return {"u1": attrs_text(country="FR"), "u2": attrs_text(plan="pro")}

    store.update_users(ws.workspace_id, ["u2", "u1", "u1"], second, T0 + 1)
    assert seen[1] == {"u1": attrs_text(country="US")}  # only users that exist, once each
    assert store.user_attributes(ws.workspace_id, "u1") == attrs_text(country="FR")
    assert store.user_attributes(ws.workspace_id, "u2") == attrs_text(plan="pro")
    assert store.user_attributes(ws.workspace_id, "nobody") is None
    # Users belong to one workspace.
    assert store.user_attributes(other.workspace_id, "u1") is None
    store.update_users(other.workspace_id, ["u1"], lambda current: {"u1": attrs_text(country="DE")}, T0)
    assert store.user_attributes(ws.workspace_id, "u1") == attrs_text(country="FR")


def test_update_users_many_ids_in_one_call(store):
    ws = new_workspace(store)
    ids = [f"user-{i}" for i in range(1_200)]  # several IN chunks on SQLite
    store.update_users(ws.workspace_id, ids, lambda current: {i: attrs_text(n=i) for i in ids}, T0)
    sizes: list[int] = []

    def count(current):
        sizes.append(len(current))
        return {}

    store.update_users(ws.workspace_id, ids + ["new"], count, T0)
    assert sizes == [1_200]
    assert store.user_attributes(ws.workspace_id, "new") is None  # nothing returned, nothing written


def test_concurrent_updates_of_the_same_new_users_lose_nothing(store):
    """Several requests set different attributes of the same, not yet existing, users at
    once: every attribute must survive (no lost update when two writers create a user)."""
    ws = new_workspace(store)
    users = [f"u{i}" for i in range(5)]
    threads_n = 6
    barrier = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        barrier.wait()
        for round_ in range(4):
            body = {"attributes": [{"external_id": u, f"a{n}_{round_}": n} for u in users]}
            audience.track_users(store, ws, body, T0)

    in_threads(threads_n, worker)
    expected = {f"a{n}_{r}" for n in range(threads_n) for r in range(4)}
    for user in users:
        stored = orjson.loads(store.user_attributes(ws.workspace_id, user))
        assert set(stored) == expected, (user, sorted(expected - set(stored)))


# -------------------------------------------------------------------------- segments


def test_create_segment_round_trips_and_keys_are_per_workspace(store):
    a, b = new_workspace(store), new_workspace(store)
    first = make_segment(store, a, "first", tags=("x", "y"), description="desc", now=T0)
    second = make_segment(store, a, "second", analytics=True, filter_json=PRO, now=T0 + 5)
    in_b = make_segment(store, b, "b")
    assert (first.segment_key, second.segment_key, in_b.segment_key) == (1, 2, 1)
    assert first.workspace_id == a.workspace_id
    assert first.name == "first" and first.description == "desc" and first.tags == ("x", "y")
    assert first.filter_json == US
    assert first.analytics_enabled is False and first.tracking_since is None
    assert first.created_at == first.updated_at == T0
    assert second.analytics_enabled is True and second.tracking_since == T0 + 5
    assert store.get_segment(a.workspace_id, first.segment_id) == first
    assert store.get_segment(a.workspace_id, second.segment_id) == second
    assert store.get_segment(b.workspace_id, first.segment_id) is None
    assert store.get_segment(a.workspace_id, in_b.segment_id) is None
    assert store.get_segment(a.workspace_id, "no-such-id") is None


def test_at_most_25_tracked_segments_per_workspace(store):
    ws, other = new_workspace(store), new_workspace(store)
    tracked = [make_segment(store, ws, f"s{i}", analytics=True) for i in range(MAX_TRACKED_SEGMENTS)]
    with pytest.raises(TrackingLimitError) as refused:
        make_segment(store, ws, "26th", analytics=True)
    message = str(refused.value)
    assert "at most 25" in message and "turn one off" in message
    assert len(store.list_segments(ws.workspace_id, 0, 100, False)) == MAX_TRACKED_SEGMENTS

    untracked = make_segment(store, ws, "26th, untracked")  # creating untracked is fine
    assert untracked.analytics_enabled is False
    with pytest.raises(TrackingLimitError):
        store.set_segment_tracking(ws.workspace_id, untracked.segment_id, True, T0 + 1)
    assert store.get_segment(ws.workspace_id, untracked.segment_id).analytics_enabled is False
    # Turning tracking on for one already on is not a 26th.
    assert store.set_segment_tracking(ws.workspace_id, tracked[0].segment_id, True, T0 + 1).analytics_enabled
    # Another workspace has its own 25.
    assert make_segment(store, other, "elsewhere", analytics=True).analytics_enabled

    # Turning one off makes room for one, and only one.
    off = store.set_segment_tracking(ws.workspace_id, tracked[3].segment_id, False, T0 + 2)
    assert off is not None and off.analytics_enabled is False
    on = store.set_segment_tracking(ws.workspace_id, untracked.segment_id, True, T0 + 3)
    assert on is not None and on.analytics_enabled is True
    with pytest.raises(TrackingLimitError):
        store.set_segment_tracking(ws.workspace_id, tracked[3].segment_id, True, T0 + 4)
    with pytest.raises(TrackingLimitError):
        make_segment(store, ws, "27th", analytics=True)


def test_concurrent_tracking_never_exceeds_the_limit(store):
    ws = new_workspace(store)
    for i in range(MAX_TRACKED_SEGMENTS - 2):
        make_segment(store, ws, f"s{i}", analytics=True)
    candidates = [make_segment(store, ws, f"c{i}") for i in range(8)]
    barrier = threading.Barrier(len(candidates))
    outcomes: list[str] = []

    def turn_on(segment_id: str) -> None:
        barrier.wait()
        try:
            store.set_segment_tracking(ws.workspace_id, segment_id, True, T0)
            outcomes.append("on")
        except TrackingLimitError:
            outcomes.append("refused")

    threads = [threading.Thread(target=turn_on, args=(c.segment_id,)) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["on", "on"] + ["refused"] * 6
    listed = store.list_segments(ws.workspace_id, 0, 100, False)
    assert sum(s.analytics_enabled for s in listed) == MAX_TRACKED_SEGMENTS


def test_tracking_since_is_kept(store):
    ws = new_workspace(store)
    segment = make_segment(store, ws, now=T0)
    assert segment.tracking_since is None

    on = store.set_segment_tracking(ws.workspace_id, segment.segment_id, True, T0 + 10)
    assert (on.analytics_enabled, on.tracking_since) == (True, T0 + 10)
    assert (on.updated_at, on.created_at) == (T0 + 10, T0)
    again = store.set_segment_tracking(ws.workspace_id, segment.segment_id, True, T0 + 20)
    assert again == on  # already on: nothing changes, tracking keeps its start
    off = store.set_segment_tracking(ws.workspace_id, segment.segment_id, False, T0 + 30)
    assert (off.analytics_enabled, off.tracking_since, off.updated_at) == (False, T0 + 10, T0 + 30)
    off_again = store.set_segment_tracking(ws.workspace_id, segment.segment_id, False, T0 + 40)
    assert off_again == off
    back = store.set_segment_tracking(ws.workspace_id, segment.segment_id, True, T0 + 50)
    assert (back.analytics_enabled, back.tracking_since, back.updated_at) == (True, T0 + 50, T0 + 50)
    assert store.get_segment(ws.workspace_id, segment.segment_id) == back


def test_set_tracking_of_unknown_or_foreign_segment(store):
    a, b = new_workspace(store), new_workspace(store)
    foreign = make_segment(store, b, "b's")
    assert store.set_segment_tracking(a.workspace_id, "no-such-id", True, T0) is None
    assert store.set_segment_tracking(a.workspace_id, foreign.segment_id, True, T0) is None
    assert store.get_segment(b.workspace_id, foreign.segment_id) == foreign  # untouched


def test_list_segments_pages_and_directions(store):
    ws, other = new_workspace(store), new_workspace(store)
    made = []
    for i in range(230):
        # Some share a creation time: the order is then the creation order (segment key).
        made.append(make_segment(store, ws, f"s{i:03d}", now=T0 + (i // 3) * 1_000))
    make_segment(store, other, "not listed", now=T0 + 500)

    def names(offset, limit, descending):
        return [s.name for s in store.list_segments(ws.workspace_id, offset, limit, descending)]

    ascending = [s.name for s in made]
    assert names(0, 100, False) == ascending[:100]
    assert names(100, 100, False) == ascending[100:200]
    assert names(200, 100, False) == ascending[200:]
    assert names(300, 100, False) == []
    descending = ascending[::-1]
    assert names(0, 100, True) == descending[:100]
    assert names(200, 100, True) == descending[200:]
    assert names(10_000, 100, True) == []
    listed = store.list_segments(ws.workspace_id, 0, 1, False)[0]
    assert listed == made[0]


# -------------------------------------------------------------------------- counting


def session(sid, user, started=T0, app_key=1):
    return NewSession(sid, user, app_key, started, None)


def test_recording_counts_tracked_segments_at_the_moment_of_recording(store):
    ws = new_workspace(store)
    app = store.create_app(ws.workspace_id, str(uuid.uuid4()), "app", None)
    us = make_segment(store, ws, "US", analytics=True, filter_json=US)
    pro = make_segment(store, ws, "pro", analytics=False, filter_json=PRO)
    nobody = make_segment(store, ws, "no country", analytics=True,
                          filter_json='{"attribute":"country","op":"not_exists"}')
    classify = audience.SegmentClassifier()
    audience.track_users(store, ws, {"attributes": [
        {"external_id": "us-pro", "country": "US", "plan": "pro"},
        {"external_id": "fr", "country": "FR"},
    ]}, T0)

    def record(*sessions):
        return store.record_sessions(ws.workspace_id, list(sessions), classify)

    outcome = record(session("1", "us-pro"), session("2", "fr"), session("3", "unknown"),
                     session("1", "fr"))  # a duplicate within the batch
    assert (outcome.recorded, outcome.duplicates) == (3, 1)

    def totals():
        keys = (0, us.segment_key, pro.segment_key, nobody.segment_key)
        return tuple(store.rollup_total(ws.workspace_id, 0, key) for key in keys)

    assert totals() == (3, 1, 0, 1)
    assert store.rollup_total(ws.workspace_id, app.app_key, us.segment_key) == 1

    # Membership is the user's when the session is recorded; later changes are not retroactive.
    audience.track_users(store, ws, {"attributes": [{"external_id": "us-pro", "country": None}]}, T0)
    store.set_segment_tracking(ws.workspace_id, pro.segment_id, True, T0 + 1)
    outcome = record(session("4", "us-pro"), session("1", "us-pro"))
    assert (outcome.recorded, outcome.duplicates) == (1, 1)
    assert totals() == (4, 1, 1, 2)

    # Without a classifier nothing counts toward segments.
    store.record_sessions(ws.workspace_id, [session("5", "us-pro")])
    assert totals() == (5, 1, 1, 2)
    # Quarters: the segment rows land in the session's quarter.
    quarter = T0 // (900 * 1_000_000)
    assert store.count_by_quarters(ws.workspace_id, 0, us.segment_key, [quarter, quarter + 1]) == [1]
    assert store.count_by_quarters(ws.workspace_id, 0, nobody.segment_key, [quarter - 4, quarter + 4]) == [2]
