"""Store level, on every engine: daily KPIs and custom-event counts (CONTRACT section 12):
DAU, MAU and new users from recorded sessions and from sessions derived from events
(late events that move a start across local midnight or merge sessions on two days),
uninstalls per local day, custom events by name, app and tracked segment, event names,
and a change of the workspace's zone (every KPI rebuilt as if the data arrived after it).
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from segment_support import new_workspace

from sessiontally import audience, kpi
from sessiontally.kpi import DAU, MAU, NEW_USERS, UNINSTALLS
from sessiontally.store.base import NewEvent, NewSession
from sessiontally.store.rollup import QUARTER_US

S = 1_000_000
MINUTE = 60 * S
HOUR = 3600 * S
NY = "America/New_York"
US = '{"attribute":"country","op":"eq","value":"US"}'
KINDS = (DAU, MAU, NEW_USERS, UNINSTALLS)


def local(text: str, zone: str = NY) -> int:
    """Microseconds since the epoch of a local time in ``zone``."""
    instant = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
    return int(instant.timestamp()) * S


def day_of(text: str) -> int:
    return date.fromisoformat(text).toordinal() - date(1970, 1, 1).toordinal()


D = day_of("2025-06-15")  # a summer day in New York (EDT, UTC-4)
FIRST, LAST = D - 5, D + 70  # every series read below covers this


def new_app(store, ws, name="app"):
    app = store.create_app(ws.workspace_id, str(uuid.uuid4()), name, None)
    return store.find_app(ws.workspace_id, app.app_id)


def session(session_id, person, app, at):
    return NewSession(session_id, person, app.app_key, at, None)


def track(message_id, person, at, name="Opened", user_id=None):
    return NewEvent(message_id, "track", name, person, user_id, at, at)


def series(store, ws, app_key, kind, first=FIRST, last=LAST):
    return store.kpi_series(ws.workspace_id, app_key, kind, first, last)


def snapshot(store, ws, apps, first=FIRST, last=LAST):
    """Every KPI series of every scope (all apps and each app)."""
    return {(app_key, kind): series(store, ws, app_key, kind, first, last)
            for app_key in (0, *(a.app_key for a in apps)) for kind in KINDS}


def expected(days: dict[str, set[int]], kind: int, first=FIRST, last=LAST) -> list[int]:
    counts = kpi.brute_force(days, first, last)[kind]
    return [counts[day] for day in range(first, last + 1)]


def at_day(values: list[int], day: int, first=FIRST) -> int:
    return values[day - first]


def assert_kpis(store, ws, app_key, days, first=FIRST, last=LAST):
    """DAU, MAU and new users of a scope are those of these active days by definition."""
    assert store.active_days(ws.workspace_id, app_key) == {p: d for p, d in days.items() if d}
    for kind in (DAU, MAU, NEW_USERS):
        assert series(store, ws, app_key, kind, first, last) == expected(days, kind, first, last), kind


# ---------------------------------------------------------------- recorded sessions


def test_recorded_sessions_count_by_local_day(store):
    ws = new_workspace(store, NY)
    one, two = new_app(store, ws, "one"), new_app(store, ws, "two")
    store.record_sessions(ws.workspace_id, [
        session("s1", "ann", one, local("2025-06-15T10:00")),
        session("s2", "ann", one, local("2025-06-15T23:30")),  # 03:30Z on the 16th: still the 15th
        session("s3", "bob", two, local("2025-06-16T00:30")),
        session("s4", "ann", two, local("2025-07-20T12:00")),  # 35 days later
    ])
    assert_kpis(store, ws, 0, {"ann": {D, D + 35}, "bob": {D + 1}})
    assert_kpis(store, ws, one.app_key, {"ann": {D}})
    assert_kpis(store, ws, two.app_key, {"ann": {D + 35}, "bob": {D + 1}})
    everyone = {k: series(store, ws, 0, k) for k in KINDS}
    assert at_day(everyone[DAU], D) == 1 and at_day(everyone[DAU], D + 1) == 1
    assert at_day(everyone[MAU], D + 29) == 2 and at_day(everyone[MAU], D + 30) == 1
    assert at_day(everyone[MAU], D + 31) == 0 and at_day(everyone[MAU], D + 35) == 1
    assert at_day(everyone[NEW_USERS], D) == 1 and at_day(everyone[NEW_USERS], D + 35) == 0
    assert at_day(series(store, ws, two.app_key, NEW_USERS), D + 35) == 1  # ann's first in two
    assert not any(everyone[UNINSTALLS])


def test_a_late_recorded_session_moves_the_first_day_and_fills_the_window(store):
    ws = new_workspace(store, NY)
    app = new_app(store, ws)
    store.record_sessions(ws.workspace_id, [session("a", "ann", app, local("2025-06-15T12:00")),
                                            session("b", "ann", app, local("2025-08-01T12:00"))])
    assert_kpis(store, ws, 0, {"ann": {D, D + 47}})
    # Between them: fills the gap in MAU; then before both: the first day moves.
    store.record_sessions(ws.workspace_id, [session("c", "ann", app, local("2025-07-10T12:00"))])
    assert_kpis(store, ws, 0, {"ann": {D, D + 25, D + 47}})
    store.record_sessions(ws.workspace_id, [session("d", "ann", app, local("2025-06-12T00:00"))])
    assert_kpis(store, ws, 0, {"ann": {D - 3, D, D + 25, D + 47}})
    assert_kpis(store, ws, app.app_key, {"ann": {D - 3, D, D + 25, D + 47}})
    # A session id already recorded changes nothing.
    before = snapshot(store, ws, [app])
    store.record_sessions(ws.workspace_id, [session("d", "ann", app, local("2025-06-01T00:00"))])
    assert snapshot(store, ws, [app]) == before


def test_a_second_session_on_a_day_already_counted_changes_nothing(store):
    ws = new_workspace(store, NY)
    app, other = new_app(store, ws), new_app(store, ws, "other")
    store.record_sessions(ws.workspace_id, [session("s1", "ann", app, local("2025-06-15T10:00"))])
    store.record_events(ws.workspace_id, app, [track("m1", "bob", local("2025-06-15T09:00"))],
                        local("2025-06-16T00:00"))
    before = snapshot(store, ws, [app, other])
    assert at_day(before[(0, DAU)], D) == 2
    # Recorded and derived sessions of the same persons, the same local day, the same app.
    store.record_sessions(ws.workspace_id, [session("s2", "ann", app, local("2025-06-15T23:59")),
                                            session("s3", "bob", app, local("2025-06-15T00:00"))])
    store.record_events(ws.workspace_id, app, [track("m2", "ann", local("2025-06-15T18:00")),
                                               track("m3", "bob", local("2025-06-15T20:00"))],
                        local("2025-06-16T00:00"))
    assert len(store.derived_sessions(ws.workspace_id, app.app_key)) == 3
    assert snapshot(store, ws, [app, other]) == before
    # In another app, it counts there (and not twice for all apps).
    store.record_sessions(ws.workspace_id, [session("s4", "ann", other, local("2025-06-15T11:00"))])
    after = snapshot(store, ws, [app, other])
    assert {key for key in after if after[key] != before[key]} == {
        (other.app_key, DAU), (other.app_key, MAU), (other.app_key, NEW_USERS)}


def test_days_before_1970_in_a_negative_offset_zone(store):
    zone = "America/Los_Angeles"
    ws = new_workspace(store, zone)
    app = new_app(store, ws)
    two_am_utc = 2 * HOUR  # 1970-01-01T02:00Z: 1969-12-31 18:00 in Los Angeles
    store.record_sessions(ws.workspace_id, [session("s", "ann", app, two_am_utc)])
    store.record_events(ws.workspace_id, app, [track("m", "bob", two_am_utc, kpi.UNINSTALL_EVENT)],
                        two_am_utc)
    assert_kpis(store, ws, 0, {"ann": {-1}, "bob": {-1}}, -40, 40)
    assert store.kpi_series(ws.workspace_id, 0, DAU, -2, 0) == [0, 2, 0]
    assert store.kpi_series(ws.workspace_id, 0, UNINSTALLS, -2, 0) == [0, 1, 0]
    assert store.kpi_series(ws.workspace_id, 0, MAU, 27, 29) == [2, 2, 0]


# ---------------------------------------------------------------- derived sessions


def test_a_late_event_moves_a_derived_start_across_local_midnight(store):
    ws = new_workspace(store, NY)
    app = new_app(store, ws)
    assert app.session_timeout_s == 1800
    now = local("2025-06-20T00:00")
    store.record_events(ws.workspace_id, app, [track("a1", "ann", local("2025-06-15T00:10")),
                                               track("b1", "bob", local("2025-06-15T00:10"))], now)
    # bob also has a recorded session on the 15th; cat's first day is later (the 17th).
    store.record_sessions(ws.workspace_id, [session("s", "bob", app, local("2025-06-15T12:00")),
                                            session("t", "cat", app, local("2025-06-17T00:05"))])
    assert_kpis(store, ws, 0, {"ann": {D}, "bob": {D}, "cat": {D + 2}})
    # Twenty minutes before midnight: each session now starts on the 14th.
    store.record_events(ws.workspace_id, app, [track("a2", "ann", local("2025-06-14T23:50")),
                                               track("b2", "bob", local("2025-06-14T23:50"))], now)
    assert [s for p, s, _ in store.derived_sessions(ws.workspace_id, app.app_key)] == [
        local("2025-06-14T23:50")] * 2
    assert_kpis(store, ws, 0, {"ann": {D - 1}, "bob": {D - 1, D}, "cat": {D + 2}})
    assert_kpis(store, ws, app.app_key, {"ann": {D - 1}, "bob": {D - 1, D}, "cat": {D + 2}})
    dau, new = series(store, ws, 0, DAU), series(store, ws, 0, NEW_USERS)
    assert (at_day(dau, D - 1), at_day(dau, D)) == (2, 1)  # ann's day moved; bob keeps the 15th
    assert (at_day(new, D - 1), at_day(new, D)) == (2, 0)
    # cat's derived session the day before its recorded one moves its first day back.
    store.record_events(ws.workspace_id, app, [track("c1", "cat", local("2025-06-16T23:59"))], now)
    assert_kpis(store, ws, 0, {"ann": {D - 1}, "bob": {D - 1, D}, "cat": {D + 1, D + 2}})


def test_a_late_event_merges_sessions_on_two_local_days(store):
    ws = new_workspace(store, NY)
    app, other = new_app(store, ws), new_app(store, ws, "other")
    now = local("2025-06-20T00:00")
    store.record_events(ws.workspace_id, app, [track("1", "ann", local("2025-06-14T23:40")),
                                               track("2", "ann", local("2025-06-15T00:20"))], now)
    store.record_events(ws.workspace_id, other, [track("1", "ann", local("2025-06-15T08:00"))], now)
    assert len(store.derived_sessions(ws.workspace_id, app.app_key)) == 2  # 40 minutes apart
    assert_kpis(store, ws, app.app_key, {"ann": {D - 1, D}})
    assert_kpis(store, ws, 0, {"ann": {D - 1, D}})
    # At midnight, within 30 minutes of both: one session, starting on the 14th.
    store.record_events(ws.workspace_id, app, [track("3", "ann", local("2025-06-15T00:00"))], now)
    assert store.derived_sessions(ws.workspace_id, app.app_key) == [
        ("ann", local("2025-06-14T23:40"), local("2025-06-15T00:20"))]
    assert_kpis(store, ws, app.app_key, {"ann": {D - 1}})
    assert_kpis(store, ws, 0, {"ann": {D - 1, D}})  # the other app's session keeps the 15th
    assert_kpis(store, ws, other.app_key, {"ann": {D}})
    assert at_day(series(store, ws, app.app_key, MAU), D + 29) == 0


# ----------------------------------------------------------------------- uninstalls


def test_uninstalls_are_counted_by_local_day(store):
    ws = new_workspace(store, NY)
    one, two = new_app(store, ws, "one"), new_app(store, ws, "two")
    now = local("2025-06-20T00:00")
    gone = kpi.UNINSTALL_EVENT
    store.record_events(ws.workspace_id, one, [
        track("u1", "ann", local("2025-06-14T23:59"), gone),  # 03:59Z on the 15th
        track("u2", "bob", local("2025-06-15T00:00"), gone),
        track("u1", "ann", local("2025-06-15T10:00"), gone),  # a repeated messageId
        track("x", "cat", local("2025-06-15T10:00"), "Application Opened"),
        NewEvent("p", "page", None, "dan", None, local("2025-06-15T10:00"), now),
    ], now)
    store.record_events(ws.workspace_id, two, [track("u1", "ann", local("2025-06-15T12:00"), gone),
                                               track("u9", "ann", local("2025-06-15T12:01"), gone)], now)
    store.record_events(ws.workspace_id, two, [track("u9", "ann", local("2025-06-15T12:01"), gone)], now)

    def uninstalls(app_key):
        return store.kpi_series(ws.workspace_id, app_key, UNINSTALLS, D - 2, D + 1)

    assert uninstalls(one.app_key) == [0, 1, 1, 0]
    assert uninstalls(two.app_key) == [0, 0, 2, 0]
    assert uninstalls(0) == [0, 1, 3, 0]


# -------------------------------------------------------------------- custom events


def test_custom_events_by_name_app_and_tracked_segment(store):
    ws = new_workspace(store, NY)
    one, two = new_app(store, ws, "one"), new_app(store, ws, "two")
    T = local("2025-06-15T10:00")  # on a quarter
    us = store.create_segment(ws.workspace_id, str(uuid.uuid4()), "US", "", [], US, True, T)
    audience.track_users(store, ws, {"attributes": [
        {"external_id": "ann", "country": "US"}, {"external_id": "bob", "country": "FR"}]}, T)
    classify = audience.SegmentClassifier()
    store.record_events(ws.workspace_id, one, [
        track("1", "anon1", T, "Bought", user_id="ann"),
        track("2", "anon2", T + 20 * MINUTE, "Bought", user_id="bob"),
        track("3", "anon1", T + 5 * MINUTE, "Opened", user_id="ann"),
        track("1", "anon1", T + 6 * MINUTE, "Bought", user_id="ann"),  # repeated messageId
        NewEvent("4", "page", None, "anon1", "ann", T, T),
    ], T, classify)
    store.record_events(ws.workspace_id, two, [track("1", "ann", T + HOUR, "Bought", user_id="ann"),
                                               track("2", "zed", T + 2 * HOUR, "Bought")], T, classify)
    bought = store.event_name_key(ws.workspace_id, "Bought")
    opened = store.event_name_key(ws.workspace_id, "Opened")
    assert bought is not None and opened is not None and bought != opened
    assert store.event_name_key(ws.workspace_id, "Sold") is None
    q = T // QUARTER_US
    day = q - q % 96  # the UTC day's first quarter: the day level is read for whole days
    boundaries = [day - 96, day, q, q + 1, q + 2, q + 4, q + 5, q + 8, q + 9, day + 96, day + 192]

    def counts(app_key, segment_key, name_key):
        return store.count_events_by_quarters(ws.workspace_id, app_key, segment_key, name_key, boundaries)

    assert counts(0, 0, bought) == [0, 0, 1, 1, 0, 1, 0, 1, 0, 0]
    assert counts(one.app_key, 0, bought) == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert counts(two.app_key, 0, bought) == [0, 0, 0, 0, 0, 1, 0, 1, 0, 0]
    assert counts(0, us.segment_key, bought) == [0, 0, 1, 0, 0, 1, 0, 0, 0, 0]  # ann's
    assert counts(one.app_key, us.segment_key, bought) == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert counts(0, 0, opened) == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert counts(two.app_key, us.segment_key, opened) == [0] * 10
    # Coarse pieces: a whole UTC day, and whole hours.
    assert store.count_events_by_quarters(ws.workspace_id, 0, 0, bought, [day, day + 96]) == [4]
    assert store.count_events_by_quarters(ws.workspace_id, 0, 0, bought, [q, q + 4, q + 12]) == [2, 2]


def test_event_names_are_listed_alphabetically_by_page(store):
    ws, elsewhere = new_workspace(store, NY), new_workspace(store, NY)
    app, theirs = new_app(store, ws), new_app(store, elsewhere)
    T = local("2025-06-15T10:00")
    names = ["opened", "bought", "zapped", "added to cart", "bought", "opened"]
    store.record_events(ws.workspace_id, app, [track(str(i), "p", T + i * S, name)
                                               for i, name in enumerate(names)], T)
    store.record_events(ws.workspace_id, app, [track("x", "p", T, "closed")], T)
    store.record_events(elsewhere.workspace_id, theirs, [track("1", "p", T, "another's")], T)
    store.record_events(ws.workspace_id, app, [NewEvent("y", "screen", None, "p", None, T, T)], T)
    every = ["added to cart", "bought", "closed", "opened", "zapped"]
    assert store.event_names(ws.workspace_id, 0, 250) == every
    assert store.event_names(ws.workspace_id, 0, 2) == every[:2]
    assert store.event_names(ws.workspace_id, 2, 2) == every[2:4]
    assert store.event_names(ws.workspace_id, 4, 2) == every[4:]
    assert store.event_names(ws.workspace_id, 6, 2) == []
    assert store.event_names(elsewhere.workspace_id, 0, 250) == ["another's"]
    keys = [store.event_name_key(ws.workspace_id, name) for name in every]
    assert len(set(keys)) == len(keys)


# ------------------------------------------------------------------------ zone change


def random_history(seed: int, apps):
    """Recorded sessions and events of a few persons over ~70 days around a DST change
    (New York, 2025-11-02), many near local midnights of New York and Kathmandu."""
    rng = random.Random(seed)
    base = local("2025-10-20T00:00")
    sessions, events = [], []
    for n in range(60):
        app = rng.choice(apps)
        person = rng.choice(["ann", "bob", "cat", "dan"])
        at = base + rng.randrange(0, 70) * 24 * HOUR + rng.choice(
            [0, -1, 1, 18 * HOUR + 15 * MINUTE, 18 * HOUR + 14 * MINUTE, rng.randrange(24 * HOUR)])
        if rng.random() < 0.3:
            sessions.append(NewSession(f"s{n}", person, app.app_key, at, None))
        else:
            for i in range(rng.randrange(1, 4)):
                name = rng.choice(["Opened", kpi.UNINSTALL_EVENT])
                later = i * rng.choice([MINUTE, 40 * MINUTE])
                events.append((app, track(f"m{n}-{i}", person, at + later, name)))
    return sessions, events


def by_definition(sessions, events, zone, app_key):
    """Persons' active local days in ``zone`` (an app, or all apps when ``app_key`` is 0):
    derived sessions cut where a gap exceeds the app's timeout, recorded sessions as they are."""
    days: dict[str, set[int]] = {}
    times: dict[tuple[int, str], list[int]] = {}
    timeouts = {}
    for app, e in events:
        if app_key in (0, app.app_key):
            times.setdefault((app.app_key, e.person), []).append(e.occurred_at)
            timeouts[app.app_key] = app.session_timeout_s * S
    for (key, person), found in times.items():
        ordered = sorted(set(found))
        starts = [t for i, t in enumerate(ordered) if i == 0 or t - ordered[i - 1] > timeouts[key]]
        days.setdefault(person, set()).update(kpi.local_day(zone, t) for t in starts)
    for s in sessions:
        if app_key in (0, s.app_key):
            days.setdefault(s.external_id, set()).add(kpi.local_day(zone, s.started_at))
    return days


def record_all(store, ws, sessions, events):
    for app, e in events:
        store.record_events(ws.workspace_id, app, [e], e.occurred_at)
    store.record_sessions(ws.workspace_id, sessions)


def test_a_zone_change_rebuilds_every_kpi_as_if_the_data_arrived_after_it(store):
    before_zone, after_zone = NY, "Asia/Kathmandu"
    ws, fresh = new_workspace(store, before_zone), new_workspace(store, after_zone)
    apps = [new_app(store, ws, "one"), new_app(store, ws, "two")]
    store.update_app(ws.workspace_id, apps[1].app_key, session_timeout_s=600)
    apps = [store.find_app(ws.workspace_id, a.app_id) for a in apps]
    fresh_apps = [new_app(store, fresh, "one"), new_app(store, fresh, "two")]
    store.update_app(fresh.workspace_id, fresh_apps[1].app_key, session_timeout_s=600)
    fresh_apps = [store.find_app(fresh.workspace_id, a.app_id) for a in fresh_apps]
    sessions, events = random_history(18, apps)
    record_all(store, ws, sessions, events)
    first, last = day_of("2025-10-15"), day_of("2026-02-01")

    def check(workspace, zone, scopes):
        for app_key, own_key in scopes:
            days = by_definition(sessions, events, zone, app_key)
            assert_kpis(store, workspace, own_key, days, first, last)
            uninstalls = [0] * (last - first + 1)
            for app, e in events:
                if e.event == kpi.UNINSTALL_EVENT and app_key in (0, app.app_key):
                    uninstalls[kpi.local_day(zone, e.occurred_at) - first] += 1
            assert series(store, workspace, own_key, UNINSTALLS, first, last) == uninstalls

    scopes = [(0, 0), *((a.app_key, a.app_key) for a in apps)]
    check(ws, before_zone, scopes)
    derived_before = [store.derived_sessions(ws.workspace_id, a.app_key) for a in apps]
    quarters = [local("2025-10-15T00:00") // QUARTER_US + 96 * i for i in range(110)]
    rollup_before = [store.count_by_quarters(ws.workspace_id, key, 0, quarters) for key, _ in scopes]
    kpis_before = snapshot(store, ws, apps, first, last)

    store.change_time_zone(ws.workspace_id, after_zone)
    assert store.get_workspace(ws.workspace_id).time_zone == after_zone
    check(ws, after_zone, scopes)
    assert snapshot(store, ws, apps, first, last) != kpis_before  # (midnights moved)
    # The same data recorded into a workspace made in that zone: the same KPIs.
    fresh_events = [(fresh_apps[apps.index(app)], e) for app, e in events]
    fresh_sessions = [s._replace(app_key=fresh_apps[[a.app_key for a in apps].index(s.app_key)].app_key)
                      for s in sessions]
    record_all(store, fresh, fresh_sessions, fresh_events)
    mine, theirs = snapshot(store, ws, apps, first, last), snapshot(store, fresh, fresh_apps, first, last)
    keys = {0: 0, **{a.app_key: f.app_key for a, f in zip(apps, fresh_apps, strict=True)}}
    assert mine == {(app_key, kind): theirs[(keys[app_key], kind)] for app_key, kind in mine}
    # Sessions and their series do not depend on the zone.
    assert [store.derived_sessions(ws.workspace_id, a.app_key) for a in apps] == derived_before
    assert [store.count_by_quarters(ws.workspace_id, key, 0, quarters) for key, _ in scopes] == rollup_before
    # Data arriving after the change is kept in the new zone, consistently.
    more_sessions, more_events = random_history(19, apps)
    more_sessions = [s._replace(session_id="late-" + s.session_id) for s in more_sessions]
    more_events = [(a, e._replace(message_id="late-" + e.message_id)) for a, e in more_events]
    record_all(store, ws, more_sessions, more_events)
    sessions, events = sessions + more_sessions, events + more_events
    check(ws, after_zone, scopes)
    # And back again.
    store.change_time_zone(ws.workspace_id, before_zone)
    check(ws, before_zone, scopes)
