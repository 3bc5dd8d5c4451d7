"""Store level: recording tracking-API messages (``Store.record_events``) on every engine:
dedup per (app, messageId), the hourly message limit, the session timeout per app, write
keys, the rollup against the derived sessions, and segment membership of derived sessions
(CONTRACT sections 10 and 11)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from segment_support import new_workspace

from sessiontally import audience
from sessiontally.errors import RateLimited
from sessiontally.store.base import NewEvent, NewSession

S = 1_000_000
HOUR_US = 3600 * S
T0 = 1_750_003_200 * S  # 2025-06-15T16:00:00Z, on the hour
US = '{"attribute":"country","op":"eq","value":"US"}'


def event(message_id: str, person: str, at: int, type_: str = "track", user_id: str | None = None,
          name: str | None = "E") -> NewEvent:
    return NewEvent(message_id, type_, name if type_ == "track" else None, person, user_id, at, at)


def new_app(store, ws, name="app"):
    return store.create_app(ws.workspace_id, str(uuid.uuid4()), name, None)


def reload(store, app):
    return store.find_app(app.workspace_id, app.app_id)


def spans(store, ws, app):
    return [(p, s, e) for p, s, e in store.derived_sessions(ws.workspace_id, app.app_key)]


# -------------------------------------------------------------------------- dedup


def test_a_message_id_the_app_already_has_is_a_duplicate(store):
    ws = new_workspace(store)
    app, other = new_app(store, ws), new_app(store, ws, "other")
    batch = [event("m1", "p", T0), event("m2", "p", T0 + 60 * S), event("m1", "p", T0 + 7200 * S)]
    outcome = store.record_events(ws.workspace_id, app, batch, T0)
    assert (outcome.recorded, outcome.duplicates) == (2, 1)  # a repeat within the batch
    assert spans(store, ws, app) == [("p", T0, T0 + 60 * S)]  # the first m1 won
    outcome = store.record_events(ws.workspace_id, app, batch[:2], T0)
    assert (outcome.recorded, outcome.duplicates) == (0, 2)
    # The same message id in another app is that app's own message.
    outcome = store.record_events(ws.workspace_id, other, batch[:1], T0)
    assert (outcome.recorded, outcome.duplicates) == (1, 0)
    assert spans(store, ws, other) == [("p", T0, T0)]
    assert store.rollup_total(ws.workspace_id, 0, 0) == 2


def test_a_duplicate_with_other_content_changes_no_session(store):
    """First write wins: a later message with a known id but another time is ignored."""
    ws = new_workspace(store)
    app = new_app(store, ws)
    store.record_events(ws.workspace_id, app, [event("m1", "p", T0)], T0)
    store.record_events(ws.workspace_id, app, [event("m1", "p", T0 - 60 * S)], T0)
    assert spans(store, ws, app) == [("p", T0, T0)]


def test_only_track_page_and_screen_make_sessions(store):
    ws = new_workspace(store)
    app = new_app(store, ws)
    batch = [event(f"m{i}", f"p{i}", T0, kind) for i, kind in
             enumerate(["track", "page", "screen", "identify", "group", "alias"])]
    outcome = store.record_events(ws.workspace_id, app, batch, T0)
    assert (outcome.recorded, outcome.duplicates) == (6, 0)
    assert [p for p, _, _ in spans(store, ws, app)] == ["p0", "p1", "p2"]
    assert store.rollup_total(ws.workspace_id, app.app_key, 0) == 3


# ------------------------------------------------------------------ message limit


def test_the_hourly_message_limit_refuses_a_whole_batch_and_gives_its_count_back(store):
    ws = new_workspace(store)
    app = new_app(store, ws)
    assert store.update_app(ws.workspace_id, app.app_key, event_limit=5)
    app = reload(store, app)
    now = T0 + 1234 * S
    first = [event(f"a{i}", "p", T0 + i * S) for i in range(3)]
    assert store.record_events(ws.workspace_id, app, first, now).recorded == 3
    over = [event(f"b{i}", "q", T0 + i * S) for i in range(3)]
    with pytest.raises(RateLimited) as limited:
        store.record_events(ws.workspace_id, app, over, now)
    assert limited.value.reset == T0 // S + 3600  # the next full UTC hour, in seconds
    # Nothing of the refused batch was recorded, and its count was given back: two more fit.
    assert [p for p, _, _ in spans(store, ws, app)] == ["p"]
    assert store.record_events(ws.workspace_id, app, over[:2], now + 60 * S).recorded == 2
    with pytest.raises(RateLimited):
        store.record_events(ws.workspace_id, app, over[2:], now + 60 * S)
    # Duplicates count toward the limit too (they are messages received).
    with pytest.raises(RateLimited):
        store.record_events(ws.workspace_id, app, first[:1], now)
    # The next UTC hour starts from zero.
    outcome = store.record_events(ws.workspace_id, app, over, T0 + HOUR_US)
    assert (outcome.recorded, outcome.duplicates) == (1, 2)
    assert store.rollup_total(ws.workspace_id, app.app_key, 0) == 2


def test_the_message_limit_is_per_app(store):
    ws = new_workspace(store)
    small, big = new_app(store, ws, "small"), new_app(store, ws, "big")
    store.update_app(ws.workspace_id, small.app_key, event_limit=1)
    small = reload(store, small)
    store.record_events(ws.workspace_id, small, [event("m", "p", T0)], T0)
    with pytest.raises(RateLimited):
        store.record_events(ws.workspace_id, small, [event("n", "p", T0)], T0)
    assert store.record_events(ws.workspace_id, big, [event("n", "p", T0)], T0).recorded == 1


# ----------------------------------------------------------------- session timeout


def test_each_app_cuts_sessions_with_its_own_timeout(store):
    ws = new_workspace(store)
    web, mobile = new_app(store, ws, "web"), new_app(store, ws, "mobile")
    assert web.session_timeout_s == 1800
    assert store.update_app(ws.workspace_id, mobile.app_key, session_timeout_s=10)
    mobile = reload(store, mobile)
    assert (mobile.session_timeout_s, reload(store, web).session_timeout_s) == (10, 1800)
    times = [T0, T0 + 10 * S, T0 + 21 * S, T0 + 1821 * S, T0 + 3622 * S]
    for app in (web, mobile):
        store.record_events(ws.workspace_id, app, [event(f"m{i}", "p", t) for i, t in enumerate(times)], T0)
    assert spans(store, ws, web) == [("p", T0, T0 + 1821 * S), ("p", T0 + 3622 * S, T0 + 3622 * S)]
    assert spans(store, ws, mobile) == [
        ("p", T0, T0 + 10 * S), ("p", T0 + 21 * S, T0 + 21 * S),
        ("p", T0 + 1821 * S, T0 + 1821 * S), ("p", T0 + 3622 * S, T0 + 3622 * S),
    ]
    assert store.rollup_total(ws.workspace_id, 0, 0) == 6


def test_update_app_changes_only_what_it_is_given(store):
    ws = new_workspace(store)
    app = new_app(store, ws)
    assert store.update_app(ws.workspace_id, app.app_key, allowed_origins=["https://a.example"])
    assert store.update_app(ws.workspace_id, app.app_key, session_timeout_s=60)
    app = reload(store, app)
    assert (app.session_timeout_s, app.allowed_origins, app.event_limit) == (
        60, ("https://a.example",), 10_000_000)
    assert not store.update_app(ws.workspace_id, app.app_key + 100, session_timeout_s=60)


# ---------------------------------------------------------------------- write keys


def test_a_rotated_write_key_is_no_longer_found(store):
    ws, elsewhere = new_workspace(store), new_workspace(store)
    app = new_app(store, ws)
    old = app.write_key
    assert old and store.find_app_by_write_key(ws.workspace_id, old).app_key == app.app_key
    assert store.find_app_by_write_key(elsewhere.workspace_id, old) is None
    assert store.set_write_key(ws.workspace_id, app.app_key, old + "x")
    assert store.find_app_by_write_key(ws.workspace_id, old) is None
    assert store.find_app_by_write_key(ws.workspace_id, old + "x").app_id == app.app_id
    assert reload(store, app).write_key == old + "x"
    assert not store.set_write_key(ws.workspace_id, app.app_key + 100, "y")


def test_every_app_gets_its_own_write_key(store):
    ws = new_workspace(store)
    keys = {new_app(store, ws, f"a{i}").write_key for i in range(3)}
    assert len(keys) == 3


# ------------------------------------------------------------------------- rollup


def test_rollup_totals_match_the_derived_sessions_through_moves_and_merges(store):
    """After extensions, moved starts and merges, every app's rollup holds exactly its
    derived sessions, and the all-apps rollup those plus the recorded ones."""
    ws = new_workspace(store)
    apps = [new_app(store, ws, "a"), new_app(store, ws, "b")]
    store.update_app(ws.workspace_id, apps[1].app_key, session_timeout_s=600)
    apps[1] = reload(store, apps[1])
    gap = 1800 * S
    batches = [
        [event("1", "p", T0), event("2", "p", T0 + 2 * gap), event("3", "q", T0)],
        [event("4", "p", T0 + gap)],  # merges p's two
        [event("5", "p", T0 - gap), event("6", "q", T0 - 3 * gap)],  # moves p's start; q anew
        [event("7", "q", T0 - 2 * gap + 1)],  # a timeout + 1 µs after q's late one: alone
        [event("8", "q", T0 - gap), event("1", "p", T0 + 99 * gap)],  # joins 7 to T0; a duplicate
    ]
    for app in apps:
        for batch in batches:
            store.record_events(ws.workspace_id, app, batch, T0)
        derived = store.derived_sessions(ws.workspace_id, app.app_key)
        assert store.rollup_total(ws.workspace_id, app.app_key, 0) == len(derived)
    assert spans(store, ws, apps[0]) == [
        ("p", T0 - gap, T0 + 2 * gap), ("q", T0 - 3 * gap, T0 - 3 * gap), ("q", T0 - 2 * gap + 1, T0)]
    assert len(spans(store, ws, apps[1])) == 8  # 600 s: nothing joins
    store.record_sessions(ws.workspace_id, [NewSession("s1", "p", apps[0].app_key, T0, None)])
    assert store.rollup_total(ws.workspace_id, 0, 0) == 3 + 8 + 1
    assert store.count_raw_in_range(ws.workspace_id, apps[0].app_key, T0 - 4 * gap, T0 + 4 * gap) == 4


# ------------------------------------------------------------------------ segments


def test_derived_sessions_count_toward_tracked_segments_as_specified(store):
    """Membership is the user's (``userId``) when the session is first derived; a moved
    start keeps it; on a merge the earlier session keeps its own."""
    ws = new_workspace(store)
    app = new_app(store, ws)
    us = store.create_segment(ws.workspace_id, str(uuid.uuid4()), "US", "", [], US, True, T0)
    audience.track_users(store, ws, {"attributes": [
        {"external_id": "ann", "country": "US"}, {"external_id": "bob", "country": "FR"},
    ]}, T0)
    classify = audience.SegmentClassifier()
    gap = 1800 * S

    def record(*events):
        store.record_events(ws.workspace_id, app, list(events), T0, classify)

    def totals():
        return (store.rollup_total(ws.workspace_id, app.app_key, 0),
                store.rollup_total(ws.workspace_id, app.app_key, us.segment_key),
                store.rollup_total(ws.workspace_id, 0, us.segment_key))

    # A new session: the user id of its earliest new event (bob's, not ann's).
    record(event("1", "anon1", T0 + 10, user_id="ann"), event("2", "anon1", T0, user_id="bob"))
    assert totals() == (1, 0, 0)
    record(event("3", "anon2", T0, user_id="ann"))
    assert totals() == (2, 1, 1)
    # Moved by bob's earlier event: anon2's session keeps ann's membership.
    record(event("4", "anon2", T0 - gap, user_id="bob"))
    assert totals() == (2, 1, 1)
    # anon3: bob first (not US), then ann two timeouts later (US); the bridge merges them
    # and the earlier (bob's) keeps its own.
    record(event("5", "anon3", T0, user_id="bob"))
    record(event("6", "anon3", T0 + 2 * gap, user_id="ann"))
    assert totals() == (4, 2, 2)
    record(event("7", "anon3", T0 + gap, user_id="ann"))
    assert totals() == (3, 1, 1)
    # Later attribute changes are not retroactive; an event without a user id matches none.
    audience.track_users(store, ws, {"attributes": [{"external_id": "ann", "country": "FR"}]}, T0)
    record(event("8", "anon4", T0))
    assert totals() == (4, 1, 1)
    # Without a classifier nothing counts toward segments.
    store.record_events(ws.workspace_id, app, [event("9", "ann", T0 + 99 * gap, user_id="bob")], T0)
    assert totals() == (5, 1, 1)


def test_first_events_at_the_same_instant_give_the_same_membership_on_every_engine(store):
    """Two first events at one instant with different user ids: the smaller user id
    classifies the session, whatever the order of the batch (SQLite keeps it, PostgreSQL
    sorts a batch by messageId)."""
    ws = new_workspace(store)
    app = new_app(store, ws)
    us = store.create_segment(ws.workspace_id, str(uuid.uuid4()), "US", "", [], US, True, T0)
    audience.track_users(store, ws, {"attributes": [
        {"external_id": "ann", "country": "US"}, {"external_id": "bob", "country": "FR"},
    ]}, T0)
    classify = audience.SegmentClassifier()
    store.record_events(ws.workspace_id, app, [event("m2", "p", T0, user_id="bob"),
                                               event("m1", "p", T0, user_id="ann")], T0, classify)
    store.record_events(ws.workspace_id, app, [event("n1", "q", T0, user_id="bob"),
                                               event("n2", "q", T0, user_id="ann")], T0, classify)
    assert store.rollup_total(ws.workspace_id, app.app_key, us.segment_key) == 2


# -------------------------------------------------------------------- user updates


def test_user_updates_come_from_the_newly_recorded_messages_only(store):
    """The store names the messageIds it newly recorded (a repeat, in the batch or from
    before, is not among them), and writes the users' attributes in the same transaction."""
    ws = new_workspace(store)
    app = new_app(store, ws)
    asked = []

    def updates(recorded):
        asked.append(sorted(recorded))
        return ["u"], lambda current: {"u": f'{{"n": {len(asked)}}}'}

    batch = [event("m1", "u", T0, "identify"), event("m2", "u", T0), event("m1", "u", T0, "identify")]
    store.record_events(ws.workspace_id, app, batch, T0, None, updates)
    assert store.user_attributes(ws.workspace_id, "u") == '{"n": 1}'
    store.record_events(ws.workspace_id, app, batch[:1] + [event("m3", "u", T0)], T0, None, updates)
    assert asked == [["m1", "m2"], ["m3"]]
    assert store.user_attributes(ws.workspace_id, "u") == '{"n": 2}'
    # A refused batch writes no attributes either.
    store.update_app(ws.workspace_id, app.app_key, event_limit=1)
    with pytest.raises(RateLimited):
        store.record_events(ws.workspace_id, reload(store, app), [event("m4", "u", T0)] * 2, T0,
                            None, updates)
    assert store.user_attributes(ws.workspace_id, "u") == '{"n": 2}'


# ------------------------------------------------------------------- concurrency


def test_batches_on_either_side_of_an_hour_boundary_derive_one_after_the_other(store):
    """Two batches of one app, received in different UTC hours (so on different rows of
    the message counter), run at once: the second still sees the first's session."""
    ws = new_workspace(store)
    app = new_app(store, ws)
    store.create_segment(ws.workspace_id, str(uuid.uuid4()), "US", "", [], US, True, T0)
    inside, release = threading.Event(), threading.Event()
    classify = audience.SegmentClassifier()

    def paused(tracked, users, stored):  # called inside the first batch's transaction
        inside.set()
        release.wait(10)
        return classify(tracked, users, stored)

    first = threading.Thread(target=store.record_events, args=(
        ws.workspace_id, app, [event("a", "p", T0 - 60 * S, user_id="u")], T0 - S, paused))
    second = threading.Thread(target=store.record_events, args=(
        ws.workspace_id, app, [event("b", "p", T0)], T0))
    first.start()
    assert inside.wait(10)
    second.start()
    time.sleep(0.3)  # the second batch reaches its lock (or, wrongly, commits)
    release.set()
    first.join(10)
    second.join(10)
    assert spans(store, ws, app) == [("p", T0 - 60 * S, T0)]
    assert store.rollup_total(ws.workspace_id, app.app_key, 0) == 1


def test_apps_made_before_the_tracking_migration_get_write_keys(engine, tmp_path):
    """Migration 0004 adds the write-key column; the store then gives every older app a
    key of its own workspace that admits it (one routed UPDATE per app)."""
    from importlib import resources

    from db_support import engine_database

    from sessiontally.store import open_store

    dialect = "sqlite" if engine == "sqlite" else "postgres"  # (Citus runs PostgreSQL's)
    folder = resources.files("sessiontally.store") / "migrations" / dialect
    older = sorted(entry for entry in folder.iterdir() if entry.name < "0004")
    with engine_database(engine, tmp_path) as url:
        if engine in ("postgres", "citus"):
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                             " applied_at BIGINT NOT NULL)")
                for entry in older:
                    conn.execute(entry.read_text())
                    conn.execute("INSERT INTO schema_migrations VALUES (%s, 0)", (int(entry.name[:4]),))
                for ws in (1, 2):
                    conn.execute("INSERT INTO workspaces (workspace_id, name, time_zone, rate_limit,"
                                 " created_at) VALUES (%s, %s, 'UTC', 10, 0)", (ws, f"w{ws}"))
                    conn.execute("INSERT INTO apps VALUES (%s, 1, %s, 'a', NULL, 0)", (ws, f"app-{ws}"))
        else:
            import sqlite3

            from sessiontally.store.sqlite import _split_sql

            conn = sqlite3.connect(url)
            conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                         " applied_at INTEGER NOT NULL)")
            for entry in older:
                for statement in _split_sql(entry.read_text()):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (int(entry.name[:4]),))
            for ws in (1, 2):
                conn.execute("INSERT INTO workspaces VALUES (?, ?, 'UTC', 10, 0)", (ws, f"w{ws}"))
                conn.execute("INSERT INTO apps VALUES (?, 1, ?, 'a', NULL, 0)", (ws, f"app-{ws}"))
            conn.commit()
            conn.close()
        store = open_store(url)
        try:
            assert store.migrate() >= 4
            found = [store.find_app(ws, f"app-{ws}") for ws in (1, 2)]
            assert all(app is not None for app in found)
            write_keys = [app.write_key for app in found if app is not None]
            assert write_keys[0] != write_keys[1]
            for ws, key in zip((1, 2), write_keys, strict=True):
                assert key.startswith(f"wk_{ws}_")
                admitted = store.find_app_by_write_key(ws, key)
                assert admitted is not None and admitted.app_id == f"app-{ws}"
            store.migrate()  # again: nothing changes
            assert [store.find_app(ws, f"app-{ws}").write_key for ws in (1, 2)] == write_keys
        finally:
            store.close()
