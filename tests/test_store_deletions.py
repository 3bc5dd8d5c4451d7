"""Store level, on both engines: deleting an app, a segment or a workspace.

The app oracle: workspace ``had`` gets the data of two apps, X and Y; workspace ``never``
gets Y's data only (its X exists but never recorded anything). After X is deleted from
``had``, every series of ``had`` (sessions by day and by hour in two zones, for all apps
and for Y, for all users and a tracked segment; events by name; DAU, MAU, new users and
uninstalls) must equal ``never``'s. Planted mutations (the coarse rollup or the all-apps
KPIs forgotten) must make that comparison fail.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from sessiontally import kpi
from sessiontally.errors import AppGone, NotFound, WorkspaceGone
from sessiontally.store import kpis, sql
from sessiontally.store.base import App, NewEvent, NewSession, Store, TrackedSegment, Workspace

if TYPE_CHECKING:
    from conftest import TestDatabase

S = 1_000_000
QUARTER = 900 * S
DAY_US = 86_400 * S
START = 1_748_736_000 * S  # 2025-06-01T00:00:00Z
DAYS = 40
FIRST_DAY = START // DAY_US - 2
LAST_DAY = FIRST_DAY + DAYS + 35
ZONE = "America/New_York"
FILTER = '{"attribute": "plan", "op": "eq", "value": "pro"}'


def classify_even(
    tracked: Sequence[TrackedSegment], users: Sequence[str], stored: Mapping[str, str]
) -> dict[str, list[int]]:
    """Users whose number is even match every tracked segment."""
    return {u: [t.segment_key for t in tracked] for u in users if int(u.lstrip("u")) % 2 == 0}


def world(seed: int) -> dict[str, tuple[list[NewSession], list[NewEvent]]]:
    """Sessions and events of apps ``X`` and ``Y`` (app_key set later), persons shared."""
    rng = random.Random(seed)
    made: dict[str, tuple[list[NewSession], list[NewEvent]]] = {}
    for app in ("X", "Y"):
        sessions = [NewSession(f"{app}-s{i}", f"u{rng.randrange(12)}", 0,
                               START + rng.randrange(DAYS * DAY_US), None) for i in range(120)]
        events = []
        for i in range(150):
            person = f"u{rng.randrange(12)}"
            name = rng.choice(["Opened", "Bought", f"Only {app}", kpi.UNINSTALL_EVENT])
            kind = rng.choice(["track", "track", "page"])
            at = START + rng.randrange(DAYS * DAY_US)
            events.append(NewEvent(f"{app}-m{i}", kind, name, person, person, at, at))
        made[app] = (sessions, events)
    return made


def fill(store: Store, ws: Workspace, apps: Mapping[str, App], data: Mapping[str, Any]) -> None:
    for name, (sessions, events) in data.items():
        app = apps[name]
        mine = [s._replace(app_key=app.app_key) for s in sessions]
        for begin in range(0, len(mine), 40):  # several batches: the increments interleave
            store.record_sessions(ws.workspace_id, mine[begin:begin + 40], classify_even)
        for begin in range(0, len(events), 50):
            store.record_events(ws.workspace_id, app, events[begin:begin + 50], START, classify_even)


def boundaries() -> dict[str, list[int]]:
    """Quarter indexes of day and hour buckets in UTC and in Asia/Kolkata (+05:30)."""
    first = START // QUARTER - 96
    utc_days = [first + 96 * i for i in range(DAYS + 3)]
    kolkata_days = [q - 22 for q in utc_days]
    utc_hours = [first + 4 * i for i in range(24 * 10)]
    kolkata_hours = [q - 2 for q in utc_hours]  # on the half hour: quarter rows at each end
    return {"utc days": utc_days, "kolkata days": kolkata_days, "utc hours": utc_hours,
            "kolkata hours": kolkata_hours}


def observe(store: Store, ws: Workspace, y_key: int, segment_key: int) -> dict[str, Any]:
    """Every series of the workspace, for all apps and for Y."""
    w = ws.workspace_id
    seen: dict[str, Any] = {"names": store.event_names(w, 0, 100)}
    for app_key, app in ((0, "all"), (y_key, "Y")):
        for segment, who in ((0, "everyone"), (segment_key, "segment")):
            for label, edges in boundaries().items():
                seen[f"sessions {app} {who} {label}"] = store.count_by_quarters(w, app_key, segment, edges)
                for name in seen["names"]:
                    name_key = store.event_name_key(w, name)
                    assert name_key is not None
                    seen[f"events {name} {app} {who} {label}"] = store.count_events_by_quarters(
                        w, app_key, segment, name_key, edges)
            try:
                seen[f"rollup total {app} {who}"] = store.rollup_total(w, app_key, segment)
            except sql.RollupMismatch as exc:  # the levels disagree: a difference too
                seen[f"rollup total {app} {who}"] = str(exc)
        for kind in (kpi.DAU, kpi.MAU, kpi.NEW_USERS, kpi.UNINSTALLS):
            seen[f"kpi {kind} {app}"] = store.kpi_series(w, app_key, kind, FIRST_DAY, LAST_DAY)
        seen[f"active days {app}"] = store.active_days(w, app_key)
    seen["raw sessions"] = store.count_raw_sessions(w)
    return seen


def two_worlds(
    db: TestDatabase, seed: int = 7
) -> tuple[Workspace, Workspace, dict[str, App], dict[str, App]]:
    """``had`` (X and Y recorded) and ``never`` (only Y recorded), each with a tracked
    segment (key 1) and apps X (key 1) and Y (key 2)."""
    store = db.store
    data = world(seed)
    made = []
    for recorded in (("X", "Y"), ("Y",)):
        ws = db.workspace(time_zone=ZONE)
        store.create_segment(ws.workspace_id, f"seg-{ws.workspace_id}", "pros", "", [], FILTER, True, 0)
        apps = {name: db.app(ws, name) for name in ("X", "Y")}
        fill(store, ws, apps, {name: data[name] for name in recorded})
        made.append((ws, apps))
    (had, had_apps), (never, never_apps) = made
    return had, never, had_apps, never_apps


def differences(db: TestDatabase, had: Workspace, never: Workspace, had_apps: dict[str, App],
                never_apps: dict[str, App]) -> list[str]:
    left = observe(db.store, had, had_apps["Y"].app_key, 1)
    right = observe(db.store, never, never_apps["Y"].app_key, 1)
    return [key for key in right if left.get(key) != right[key]]


def test_deleting_an_app_leaves_the_counts_of_a_world_without_it(db: TestDatabase) -> None:
    had, never, had_apps, never_apps = two_worlds(db)
    before = differences(db, had, never, had_apps, never_apps)
    assert any(key.startswith("sessions all") for key in before)  # X did count
    assert any(key.startswith("kpi") for key in before)
    assert "names" in before  # "Only X" is a name of X's events alone
    other = db.workspace()  # untouched by the deletion
    other_app = db.app(other)
    db.store.record_sessions(other.workspace_id, [NewSession("o1", "u1", other_app.app_key, START, None)])

    assert db.store.delete_app(had.workspace_id, had_apps["X"].app_key)

    assert differences(db, had, never, had_apps, never_apps) == []
    assert db.store.find_app(had.workspace_id, had_apps["X"].app_id) is None
    assert db.store.find_app_by_write_key(had.workspace_id, had_apps["X"].write_key) is None
    assert db.store.derived_sessions(had.workspace_id, had_apps["X"].app_key) == []
    assert db.store.count_raw_sessions(other.workspace_id) == 1
    assert not db.store.delete_app(had.workspace_id, had_apps["X"].app_key)  # gone already


@pytest.mark.parametrize("mutation", ["coarse rollup", "all-apps KPIs", "all-apps events"])
def test_the_app_oracle_catches_a_planted_mistake(
    db: TestDatabase, monkeypatch: pytest.MonkeyPatch, mutation: str
) -> None:
    had, never, had_apps, never_apps = two_worlds(db, seed=11)
    if mutation == "coarse rollup":  # the hour and day rows keep X's sessions
        monkeypatch.setattr(sql, "SUBTRACT_COARSE", sql.SUBTRACT_COARSE.replace("- ?", "- 0 * ?"))
    elif mutation == "all-apps events":
        monkeypatch.setattr(sql, "SUBTRACT_EVENTS", sql.SUBTRACT_EVENTS.replace("- ?", "- 0 * ?"))
    else:  # X's own KPI rows go, the all-apps ones keep X's persons
        monkeypatch.setattr(kpis, "apply_day_changes", lambda tx, workspace_id, per_day: None)
    db.store.delete_app(had.workspace_id, had_apps["X"].app_key)
    assert differences(db, had, never, had_apps, never_apps)


def test_deleting_a_segment_removes_its_counts_and_its_key(db: TestDatabase) -> None:
    store = db.store
    ws = db.workspace(time_zone=ZONE)
    w = ws.workspace_id
    days = boundaries()["utc days"]
    kept = store.create_segment(w, "seg-a", "a", "", [], FILTER, True, 0)
    gone = store.create_segment(w, "seg-b", "b", "", [], FILTER, True, 0)
    app = db.app(ws)
    fill(store, ws, {"X": app}, {"X": world(3)["X"]})
    # u20's two sessions, 40 minutes apart, count toward both segments
    at = START + 3 * DAY_US
    pair = [NewEvent(f"u20-{i}", "track", "Opened", "u20", "u20", at + i * 40 * 60 * S, at)
            for i in range(2)]
    store.record_events(w, app, pair, START, classify_even)
    before = store.count_by_quarters(w, 0, kept.segment_key, days)
    assert sum(store.count_by_quarters(w, 0, gone.segment_key, days))

    assert store.delete_segment(w, "seg-b")

    assert store.get_segment(w, "seg-b") is None
    assert store.rollup_total(w, 0, gone.segment_key) == 0
    assert store.count_by_quarters(w, 0, kept.segment_key, days) == before
    name_key = store.event_name_key(w, "Opened")
    assert name_key is not None
    assert sum(store.count_events_by_quarters(w, 0, gone.segment_key, name_key, days)) == 0
    # A new segment never takes the deleted one's key. An event between u20's sessions
    # merges them: the two sessions stop counting, toward the segments they counted
    # toward (no longer b).
    new = store.create_segment(w, "seg-c", "c", "", [], FILTER, True, 0)
    assert new.segment_key == gone.segment_key + 1
    store.record_events(w, app, [NewEvent("u20-late", "track", "Opened", "u20", "u20",
                                          at + 20 * 60 * S, at)], START, classify_even)
    assert len([s for s in store.derived_sessions(w, app.app_key) if s[0] == "u20"]) == 1
    assert min(store.count_by_quarters(w, 0, new.segment_key, boundaries()["utc hours"])) >= 0
    assert store.rollup_total(w, app.app_key, new.segment_key) >= 0
    assert not store.delete_segment(w, "seg-b")


def test_a_tracked_segment_keeps_its_filter(db: TestDatabase) -> None:
    from sessiontally.store.base import TrackedFilterChange

    store = db.store
    w = db.workspace().workspace_id
    store.create_segment(w, "seg-a", "a", "", ["t"], FILTER, True, 0)
    with pytest.raises(TrackedFilterChange):
        store.update_segment(w, "seg-a", 5, filter_json='{"attribute": "plan", "op": "exists"}')
    renamed = store.update_segment(w, "seg-a", 5, name="b", tags=[])
    assert renamed is not None and (renamed.name, renamed.tags, renamed.filter_json) == ("b", (), FILTER)
    store.set_segment_tracking(w, "seg-a", False, 6)
    changed = store.update_segment(w, "seg-a", 7, filter_json="{}")
    assert changed is not None and changed.filter_json == "{}" and changed.updated_at == 7
    assert store.update_segment(w, "nope", 8, name="x") is None


def test_deleting_a_workspace_removes_every_row_of_it(db: TestDatabase) -> None:
    store = db.store
    data = world(5)
    worlds = []
    for _ in range(2):
        ws = db.workspace(time_zone=ZONE)
        store.create_segment(ws.workspace_id, f"seg-{ws.workspace_id}", "s", "", [], FILTER, True, 0)
        apps = {name: db.app(ws, name) for name in ("X", "Y")}
        fill(store, ws, apps, data)
        db.key(ws)
        store.add_member(ws.workspace_id, f"m{ws.workspace_id}@example.com", "hash", 0)
        worlds.append((ws, apps))
    (gone, _), (kept, kept_apps) = worlds
    before = observe(store, kept, kept_apps["Y"].app_key, 1)

    assert store.delete_workspace(gone.workspace_id)

    assert store.get_workspace(gone.workspace_id) is None
    assert rows_of(db, gone.workspace_id) == {}
    assert observe(store, kept, kept_apps["Y"].app_key, 1) == before
    assert rows_of(db, kept.workspace_id)
    assert not store.delete_workspace(gone.workspace_id)


def rows_of(db: TestDatabase, workspace_id: int) -> dict[str, int]:
    """{table: rows of the workspace} for every table with a workspace_id column."""
    found = {}
    if db.engine == "sqlite":
        import contextlib
        import sqlite3

        with contextlib.closing(sqlite3.connect(db.url)) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
                if "workspace_id" in columns:
                    (n,) = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE workspace_id = ?",
                                        (workspace_id,)).fetchone()
                    if n:
                        found[table] = n
        return found
    import psycopg

    with psycopg.connect(db.url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND column_name = 'workspace_id'")]
        for table in tables:
            row = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE workspace_id = %s",  # noqa: S608
                               (workspace_id,)).fetchone()
            if row and row[0]:
                found[table] = row[0]
    return found


def test_a_batch_for_a_workspace_deleted_meanwhile_is_refused_whole(db: TestDatabase) -> None:
    """A request admitted just before its workspace was deleted: its batch finds the
    workspace gone inside its transaction and records nothing (a 401, never a 500)."""
    ws = db.workspace()
    app = db.app(ws, "app", "web")
    stored = db.store.find_app(ws.workspace_id, app.app_id)
    assert stored is not None and db.store.delete_workspace(ws.workspace_id)
    with pytest.raises(WorkspaceGone):
        db.store.record_sessions(ws.workspace_id,
                                 [NewSession("s1", "u1", app.app_key, 1_750_000_000_000_000, None)])
    with pytest.raises(WorkspaceGone):
        db.store.record_events(ws.workspace_id, stored, [
            NewEvent("m1", "track", "Signed up", "u1", "u1", 1_750_000_000_000_000, 1_750_000_000_000_000)],
            1_750_000_000_000_000)
    assert db.store.count_raw_sessions(ws.workspace_id) == 0


def test_keys_of_deleted_apps_and_segments_are_never_given_again(db: TestDatabase) -> None:
    """Deleting the newest app or segment does not free its key: the next one gets a new
    key (nothing recorded under the old key can be taken for the new one's). Deleting the
    workspace removes its retired keys too."""
    store = db.store
    ws = db.workspace()
    w = ws.workspace_id
    first, newest = db.app(ws, "a"), db.app(ws, "b")
    seg = store.create_segment(w, "seg-a", "a", "", [], FILTER, True, 0)
    store.record_sessions(w, [NewSession("s1", "u2", newest.app_key, START, None)], classify_even)
    assert store.delete_app(w, newest.app_key) and store.delete_segment(w, "seg-a")
    again = db.app(ws, "c")
    assert again.app_key == newest.app_key + 1 and first.app_key < newest.app_key
    assert store.rollup_total(w, again.app_key, 0) == 0
    assert store.rollup_total(w, 0, 0) == 0
    seg_again = store.create_segment(w, "seg-b", "b", "", [], FILTER, True, 0)
    assert seg_again.segment_key == seg.segment_key + 1
    assert store.delete_app(w, again.app_key) and store.delete_app(w, first.app_key)
    assert db.app(ws, "d").app_key == again.app_key + 1  # no app left: still a new key
    assert rows_of(db, w).get("retired_keys") == 4
    assert store.delete_workspace(w)
    assert rows_of(db, w) == {}


def test_a_batch_for_an_app_deleted_meanwhile_is_refused_whole(db: TestDatabase) -> None:
    """A request that resolved its app just before the app was deleted: its batch finds
    the app gone inside its transaction (AppGone, a 404) and records nothing, so no count
    is left of it in the all-apps series."""
    store = db.store
    ws = db.workspace()
    w = ws.workspace_id
    store.create_segment(w, "seg-a", "a", "", [], FILTER, True, 0)
    kept, gone = db.app(ws, "kept"), db.app(ws, "gone")
    at = START + DAY_US
    store.record_sessions(w, [NewSession("k1", "u2", kept.app_key, at, None)], classify_even)
    store.record_events(w, kept, [NewEvent("km1", "track", "Opened", "u2", "u2", at, at)], at,
                        classify_even)
    stale = store.find_app(w, gone.app_id)
    assert stale is not None and store.delete_app(w, gone.app_key)
    days = boundaries()["utc days"]
    name_key = store.event_name_key(w, "Opened")
    assert name_key is not None

    def counts() -> dict[str, Any]:
        return {
            "raw": store.count_raw_sessions(w),
            "rows": rows_of(db, w),
            "sessions": [store.count_by_quarters(w, 0, seg, days) for seg in (0, 1)],
            "events": [store.count_events_by_quarters(w, 0, seg, name_key, days) for seg in (0, 1)],
            "totals": [store.rollup_total(w, 0, seg) for seg in (0, 1)],
            "dau": store.kpi_series(w, 0, kpi.DAU, FIRST_DAY, LAST_DAY),
            "names": store.event_names(w, 0, 10),
        }

    before = counts()
    with pytest.raises(AppGone) as refused:
        store.record_sessions(w, [NewSession("g1", "u4", gone.app_key, at, None),
                                  NewSession("k2", "u2", kept.app_key, at + 60 * S, None)],
                              classify_even)
    assert isinstance(refused.value, NotFound) and "nothing was recorded" in refused.value.message
    with pytest.raises(AppGone):
        store.record_events(w, stale, [NewEvent("gm1", "track", "Bought", "u4", "u4", at, at)], at,
                            classify_even)
    assert counts() == before
    # The kept app records as before.
    assert store.record_sessions(w, [NewSession("k2", "u2", kept.app_key, at, None)]).recorded == 1
