"""Daily KPIs and custom-event counts in the store: the steps both engines share, inside
a recording transaction (``SharedStatements``, ``?`` placeholders).

* ``upkeep``: sessions that start (+1) or stop counting (−1: a derived session moved or
  merged away) change the person's sessions per local day (``person_days``); a day that
  becomes active or inactive changes DAU, MAU and new users (``kpi.activation``, with the
  person's nearest other active days read in the same transaction).
* ``count_events``: new ``track`` events by name, app, tracked segment and UTC quarter,
  hour and day (``event_counts``), and uninstalls per local day.

Days are local dates in the workspace's zone, read inside the transaction, so a zone
change (which rebuilds these tables in its own transaction) and a batch never interleave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from .. import kpi
from ..errors import WorkspaceGone
from .base import NewEvent
from .rollup import ALL_APPS, ALL_USERS, COARSE_GRAINS, QUARTER, QUARTER_US
from .sql import SET_EVENT_SEGMENTS, SharedStatements, one_row

# The workspace's zone, once no other transaction can change it or the days of these
# persons until this one ends (PostgreSQL: row and advisory locks; SQLite's one writer
# needs none).
LockDays = Callable[[SharedStatements, int, Sequence[str]], str]

WORKSPACE_ZONE = "SELECT time_zone FROM workspaces WHERE workspace_id = ?"
ADD_SESSIONS = (
    "INSERT INTO person_days (workspace_id, app_key, person, day, sessions) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, app_key, person, day)"
    " DO UPDATE SET sessions = person_days.sessions + excluded.sessions RETURNING sessions"
)
DROP_DAY = (
    "DELETE FROM person_days WHERE workspace_id = ? AND app_key = ? AND person = ? AND day = ?"
)
NEIGHBOURS = (  # the person's nearest other active days: two index seeks, one statement
    "SELECT (SELECT MAX(day) FROM person_days WHERE workspace_id = ? AND app_key = ?"
    " AND person = ? AND day < ?),"
    " (SELECT MIN(day) FROM person_days WHERE workspace_id = ? AND app_key = ?"
    " AND person = ? AND day > ?)"
)
ADD_KPI = (
    "INSERT INTO kpi_counts (workspace_id, app_key, kind, day, value) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, app_key, kind, day)"
    " DO UPDATE SET value = kpi_counts.value + excluded.value"
)
NAME_KEYS = "SELECT name, name_key FROM event_names WHERE workspace_id = ? AND name IN ({marks})"
NAME_KEY = "SELECT name_key FROM event_names WHERE workspace_id = ? AND name = ?"
NEXT_NAME_KEY = "SELECT COALESCE(MAX(name_key), 0) + 1 FROM event_names WHERE workspace_id = ?"
# (Another transaction may take the same name or key first: then nothing is inserted, and
# the name's key is read back, or the next key tried.)
INSERT_NAME = "INSERT INTO event_names (workspace_id, name_key, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
ADD_EVENTS = (
    "INSERT INTO event_counts (workspace_id, app_key, segment_key, name_key, grain,"
    " first_quarter, events) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, app_key, segment_key, name_key, grain, first_quarter)"
    " DO UPDATE SET events = event_counts.events + excluded.events"
)


def workspace_zone(tx: SharedStatements, workspace_id: int) -> str:
    row = tx.execute(WORKSPACE_ZONE, (workspace_id,)).fetchone()
    if row is None:
        raise WorkspaceGone
    return str(row[0])


def zone_without_locks(tx: SharedStatements, workspace_id: int, persons: Sequence[str]) -> str:
    """``LockDays`` where the transaction already excludes every other writer (SQLite)."""
    return workspace_zone(tx, workspace_id)


def upkeep(
    tx: SharedStatements, workspace_id: int, zone: str, starts: Sequence[tuple[int, str, int, int]]
) -> None:
    """Apply ``(app_key, person, started_at, sign)`` session starts to the daily KPIs
    (local days in ``zone``; the caller holds the persons' day locks)."""
    per_day: Counter[tuple[int, str, int]] = Counter()
    for app_key, person, started_at, sign in starts:
        day = kpi.local_day(zone, started_at)
        per_day[(app_key, person, day)] += sign
        per_day[(ALL_APPS, person, day)] += sign
    apply_day_changes(tx, workspace_id, per_day)


def apply_day_changes(
    tx: SharedStatements, workspace_id: int, per_day: Mapping[tuple[int, str, int], int]
) -> None:
    """Add ``(app_key, person, day) -> sessions`` to the persons' active days (the caller
    holds their day locks); a day that becomes active or inactive changes DAU, MAU and new
    users."""
    changes = kpi.DayChanges()
    for (app_key, person, day), delta in sorted(per_day.items()):
        if not delta:
            continue
        key = (workspace_id, app_key, person)
        (now,) = one_row(tx.execute(ADD_SESSIONS, (*key, day, delta)))
        before = int(now) - delta
        if (before > 0) == (now > 0):
            continue  # the day stays active (or inactive): no distinct count changes
        if not now:
            tx.execute(DROP_DAY, (*key, day))
        previous, following = one_row(tx.execute(NEIGHBOURS, (*key, day, *key, day)))
        changes.add(app_key, day, kpi.Neighbours(previous, following), 1 if now else -1)
    _add_kpis(tx, workspace_id, changes.rows())


def count_events(
    tx: SharedStatements,
    workspace_id: int,
    zone: str,
    app_key: int,
    fresh: Sequence[NewEvent],
    memberships: Mapping[str, Sequence[int]],
) -> None:
    """Count new ``track`` events by name (and uninstalls per local day). An event counts
    toward the tracked segments its ``userId`` matches now (``memberships``)."""
    tracked = [e for e in fresh if e.type == "track" and e.event is not None]
    if not tracked:
        return
    keys = _name_keys(tx, workspace_id, sorted({e.event for e in tracked if e.event is not None}))
    counts: Counter[tuple[int, int, int, int, int]] = Counter()
    uninstalls: Counter[tuple[int, int, int]] = Counter()
    for e in tracked:
        assert e.event is not None
        quarter = e.occurred_at // QUARTER_US
        segments = memberships.get(e.user_id, ()) if e.user_id is not None else ()
        for app in (app_key, ALL_APPS):
            for segment in (ALL_USERS, *segments):
                for grain in (QUARTER, *COARSE_GRAINS):
                    counts[(app, segment, keys[e.event], grain, quarter - quarter % grain)] += 1
        if e.event == kpi.UNINSTALL_EVENT:
            day = kpi.local_day(zone, e.occurred_at)
            uninstalls[(app_key, kpi.UNINSTALLS, day)] += 1
            uninstalls[(ALL_APPS, kpi.UNINSTALLS, day)] += 1
    tx.executemany(ADD_EVENTS, [(workspace_id, *key, n) for key, n in sorted(counts.items())])
    matched = [(" ".join(map(str, segments)), workspace_id, app_key, e.message_id)
               for e in tracked if e.user_id is not None
               and (segments := memberships.get(e.user_id, ()))]
    if matched:  # (what erasure takes off: store/erasure.py)
        tx.executemany(SET_EVENT_SEGMENTS, matched)
    _add_kpis(tx, workspace_id, [(*key, n) for key, n in sorted(uninstalls.items())])


def _name_keys(tx: SharedStatements, workspace_id: int, names: Sequence[str]) -> dict[str, int]:
    """The compact key of each event name, new names given the next keys."""
    statement = NAME_KEYS.format(marks=", ".join("?" * len(names)))
    known = {str(name): int(key) for name, key in tx.execute(statement, (workspace_id, *names)).fetchall()}
    for name in names:
        while name not in known:
            (key,) = one_row(tx.execute(NEXT_NAME_KEY, (workspace_id,)))
            tx.execute(INSERT_NAME, (workspace_id, key, name))
            row = tx.execute(NAME_KEY, (workspace_id, name)).fetchone()
            if row is not None:
                known[name] = int(row[0])
    return known


def _add_kpis(tx: SharedStatements, workspace_id: int, changes: Sequence[tuple[int, int, int, int]]) -> None:
    """Add ``(app, kind, day, increment)`` rows to the KPI counts (in key order)."""
    rows = [(workspace_id, *row) for row in changes if row[3]]
    if rows:
        tx.executemany(ADD_KPI, rows)


add_kpis = _add_kpis  # (erasure's uninstalls)

PERSON_DAYS = "SELECT day FROM person_days WHERE workspace_id = ? AND app_key = ? AND person = ? ORDER BY day"
FORGET_PERSON = "DELETE FROM person_days WHERE workspace_id = ? AND app_key = ? AND person = ?"


def forget(tx: SharedStatements, workspace_id: int, scopes: Sequence[int], persons: Sequence[str]) -> bool:
    """Delete the persons' active days in each scope, and what they did to DAU, MAU and
    new users (erasure); whether they had any. The days go in increasing order, so each
    has no earlier neighbour left and the next day as its later one: the counts become
    those of the persons' absence, whatever was deleted of their raw sessions. The caller
    holds the persons' day locks."""
    changes = kpi.DayChanges()
    found = False
    for scope in scopes:
        for person in persons:
            key = (workspace_id, scope, person)
            days = [int(row[0]) for row in tx.execute(PERSON_DAYS, key).fetchall()]
            if not days:
                continue
            found = True
            tx.execute(FORGET_PERSON, key)
            for i, day in enumerate(days):
                following = days[i + 1] if i + 1 < len(days) else None
                changes.add(scope, day, kpi.Neighbours(None, following), -1)
    _add_kpis(tx, workspace_id, changes.rows())
    return found


# ------------------------------------------------------------------ zone change

SET_ZONE = "UPDATE workspaces SET time_zone = ? WHERE workspace_id = ?"
FORGET_DAYS = "DELETE FROM person_days WHERE workspace_id = ?"
FORGET_KPIS = "DELETE FROM kpi_counts WHERE workspace_id = ?"
RECORDED_STARTS = "SELECT app_key, external_id, started_at FROM sessions WHERE workspace_id = ?"
DERIVED_STARTS = "SELECT app_key, person, started_at FROM derived_sessions WHERE workspace_id = ?"
UNINSTALL_TIMES = (
    "SELECT app_key, occurred_at FROM events WHERE workspace_id = ? AND type = 'track' AND event = ?"
)
INSERT_DAY = (
    "INSERT INTO person_days (workspace_id, app_key, person, day, sessions) VALUES (?, ?, ?, ?, ?)"
)


def rebuild(tx: SharedStatements, workspace_id: int, zone: str) -> None:
    """Set the workspace's zone and compute every local-day table again from the raw
    sessions (recorded and derived) and events: the same counts as if every session and
    event had arrived after the change."""
    tx.execute(SET_ZONE, (zone, workspace_id))
    tx.execute(FORGET_DAYS, (workspace_id,))
    tx.execute(FORGET_KPIS, (workspace_id,))
    per_day: Counter[tuple[int, str, int]] = Counter()
    for statement in (RECORDED_STARTS, DERIVED_STARTS):
        for app_key, person, started_at in tx.execute(statement, (workspace_id,)).fetchall():
            day = kpi.local_day(zone, int(started_at))
            per_day[(int(app_key), str(person), day)] += 1
            per_day[(ALL_APPS, str(person), day)] += 1
    tx.executemany(INSERT_DAY, [(workspace_id, *key, n) for key, n in sorted(per_day.items())])
    changes = kpi.DayChanges()
    previous: tuple[int, str, int] | None = None  # (app, person, day) of the row before
    for app_key, person, day in sorted(per_day):
        before = previous[2] if previous is not None and previous[:2] == (app_key, person) else None
        # Days in increasing order: each is activated after every earlier one.
        changes.add(app_key, day, kpi.Neighbours(before, None), 1)
        previous = (app_key, person, day)
    for app_key, occurred_at in tx.execute(UNINSTALL_TIMES, (workspace_id, kpi.UNINSTALL_EVENT)).fetchall():
        day = kpi.local_day(zone, int(occurred_at))
        changes.counts[(int(app_key), kpi.UNINSTALLS, day)] += 1
        changes.counts[(ALL_APPS, kpi.UNINSTALLS, day)] += 1
    _add_kpis(tx, workspace_id, changes.rows())


# ------------------------------------------------------------------ app deletion

APP_DAYS = "SELECT person, day, sessions FROM person_days WHERE workspace_id = ? AND app_key = ?"
APP_UNINSTALLS = "SELECT day, value FROM kpi_counts WHERE workspace_id = ? AND app_key = ? AND kind = ?"
FORGET_APP_DAYS = "DELETE FROM person_days WHERE workspace_id = ? AND app_key = ?"
FORGET_APP_KPIS = "DELETE FROM kpi_counts WHERE workspace_id = ? AND app_key = ?"


def forget_app(tx: SharedStatements, workspace_id: int, app_key: int) -> None:
    """Take an app's share out of the all-apps KPIs, then delete its own: its sessions per
    person and day (``person_days``, kept even when raw sessions are not) are taken off
    the all-apps days, whose activations change DAU, MAU and new users exactly as if those
    sessions had never been recorded; its uninstalls off the all-apps uninstalls. The
    caller holds the workspace's lock (no batch of it runs meanwhile)."""
    per_day: Counter[tuple[int, str, int]] = Counter()
    for person, day, sessions in tx.execute(APP_DAYS, (workspace_id, app_key)).fetchall():
        per_day[(ALL_APPS, str(person), int(day))] -= int(sessions)
    apply_day_changes(tx, workspace_id, per_day)
    uninstalls = tx.execute(APP_UNINSTALLS, (workspace_id, app_key, kpi.UNINSTALLS)).fetchall()
    _add_kpis(tx, workspace_id, sorted((ALL_APPS, kpi.UNINSTALLS, int(day), -int(value))
                                       for day, value in uninstalls))
    tx.execute(FORGET_APP_DAYS, (workspace_id, app_key))
    tx.execute(FORGET_APP_KPIS, (workspace_id, app_key))
