"""Helpers of the dashboard's browser tests (tests/dashboard): the workspaces they look at,
built through the real HTTP API, and ``expected_card``, which reads a card's numbers from
the API with a key exactly as the page is documented to (docs/dashboard.md): the current
range and the previous period as one backwards chain of pieces of at most 100 points,
each piece ending one bucket before the first point of the last.

``expected_card`` is written from the documentation, not from dashboard.js: the piece
sizes differ from the page's (always 100 here), so an inexact join would show.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from tracking_http_support import batch, message

from sessiontally import admin, keys, members
from sessiontally.store.base import Store, Workspace

PIECE = 100
WORKSPACE_ZONE = "Europe/Berlin"
DAYS_OF_DATA = 75  # back from now: spans the autumn DST changes of Europe and the US
DST_ZONE = "America/New_York"
PRESETS = {"day": (7, 30, 90, 180, 365), "hour": (24, 48, 168, 336)}
DEFAULT_RANGE = {"day": 30, "hour": 24}


@dataclass(frozen=True)
class Card:
    key: str
    path: str
    field: str
    units: bool  # takes unit, segment_id and time_zone (the KPIs take none of them)


CARDS = {
    "sessions": Card("sessions", "/sessions/data_series", "sessions", True),
    "dau": Card("dau", "/kpi/dau/data_series", "dau", False),
    "mau": Card("mau", "/kpi/mau/data_series", "mau", False),
    "new_users": Card("new_users", "/kpi/new_users/data_series", "new_users", False),
    "uninstalls": Card("uninstalls", "/kpi/uninstalls/data_series", "uninstalls", False),
    "events": Card("events", "/events/data_series", "count", True),
}

Row = tuple[str, str, str]  # data-time, data-value, data-previous (as the table has them)


@dataclass
class View:
    """The page's URL state."""

    app: str = ""
    segment: str = ""
    zone: str = ""
    unit: str = "day"
    range: int = 30
    start: str = ""  # the URL's `from`
    to: str = ""
    event: str = ""


@dataclass
class Tenant:
    ws: Workspace
    email: str
    password: str
    key: str
    apps: list[Any] = field(default_factory=list)  # store Apps (with write keys)
    segment: Any = None
    events: list[str] = field(default_factory=list)

    def markers(self) -> list[str]:
        """What no other workspace's member may ever see."""
        found = [a.app_id for a in self.apps] + [a.name for a in self.apps] + [a.write_key for a in self.apps]
        found += self.events + ([self.segment.segment_id, self.segment.name] if self.segment else [])
        return found + [self.email, self.ws.name]


# ------------------------------------------------------------------ building workspaces


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _member(store: Store, ws: Workspace, label: str) -> tuple[str, str]:
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    _, password = members.add_member(store, ws, email)
    return email, password


def bare_tenant(store: Store, label: str, apps: int = 0) -> Tenant:
    """A workspace with a member and ``apps`` apps, and no data at all."""
    ws = admin.create_workspace(store, f"{label}-{uuid.uuid4().hex[:8]}", WORKSPACE_ZONE)
    made = [store.find_app(ws.workspace_id, admin.create_app(store, ws, f"{label}-app{i}", "web").app_id)
            for i in range(apps)]
    email, password = _member(store, ws, label)
    return Tenant(ws, email, password, "", made)


def full_tenant(store: Store, server_url: str, label: str, seed: int, per_day: int = 40) -> Tenant:
    """A workspace with two apps, users with a ``plan`` (a third on "pro", the tracked
    segment's filter), ``DAYS_OF_DATA`` days of sessions recorded with POST
    /sessions/track, custom events and uninstalls sent to the tracking API, a member and
    an API key with every permission."""
    tag = uuid.uuid4().hex[:6]
    ws = admin.create_workspace(store, f"{label}-{tag}", WORKSPACE_ZONE)
    made = [admin.create_app(store, ws, f"{label}-{name}-{tag}", name) for name in ("ios", "web")]
    apps = [store.find_app(ws.workspace_id, app.app_id) for app in made]
    segment = admin.create_segment(store, ws, f"{label}-pro-{tag}",
                                   '{"attribute": "plan", "op": "eq", "value": "pro"}', analytics=True)
    key = admin.create_key(store, ws, "browser tests", keys.PERMISSIONS).key
    email, password = _member(store, ws, label)
    events = [f"{label}-checkout-{tag}", f"{label}-search-{tag}"]
    rng = random.Random(seed)
    users = [f"{label}-user-{n:03d}" for n in range(90)]
    now = datetime.now(UTC)
    first = now - timedelta(days=DAYS_OF_DATA)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server_url, headers=headers, timeout=60) as client:
        for start in range(0, len(users), 75):
            body = {"attributes": [{"external_id": u, "plan": "pro" if n % 3 == 0 else "free"}
                                   for n, u in enumerate(users[start:start + 75], start)]}
            response = client.post("/users/track", json=body)
            assert response.status_code == 201, response.text
        sessions = []
        for day in range(DAYS_OF_DATA + 1):
            # users join over time, so new users and MAU move; more on some days than others
            known = users[: 20 + (len(users) - 20) * day // DAYS_OF_DATA]
            for n in range(rng.randint(per_day // 3, per_day)):
                started = first + timedelta(days=day, seconds=rng.uniform(0, 86_400))
                if started > now - timedelta(minutes=1):
                    continue
                sessions.append({"session_id": f"{label}-{day}-{n}", "external_id": rng.choice(known),
                                 "app_id": apps[rng.random() < 0.4].app_id, "started_at": _iso(started),
                                 "ended_at": _iso(started + timedelta(minutes=rng.randint(1, 30)))})
        # every hour of the four days around the last change of daylight saving time in
        # New York (whenever it was), so an hourly view across it has data
        change = last_dst_change(DST_ZONE, now)
        middle = datetime(change.year, change.month, change.day, 12, tzinfo=UTC)
        for hour in range(-48, 49):
            for n in range(1 + hour % 3):
                started = middle + timedelta(hours=hour, minutes=10 * n + 5)
                sessions.append({"session_id": f"{label}-dst-{hour}-{n}", "app_id": apps[n % 2].app_id,
                                 "external_id": users[(hour * 7 + n) % len(users)],
                                 "started_at": _iso(started)})
        response = client.post("/sessions/track", json={"sessions": sessions})
        assert response.status_code == 201 and response.json()["sessions_processed"] == len(sessions), \
            response.text
    sent = []
    for _ in range(400):
        at = first + timedelta(seconds=rng.uniform(0, (now - first).total_seconds() - 120))
        name = events[0] if rng.random() < 0.3 else events[1]
        sent.append((apps[1], message("track", rng.choice(users), _iso(at), event=name)))
    for _ in range(40):  # Segment's lifecycle event, counted as uninstalls (iOS)
        at = first + timedelta(seconds=rng.uniform(0, (now - first).total_seconds() - 120))
        sent.append((apps[0], message("track", rng.choice(users), _iso(at), event="Application Uninstalled")))
    with httpx.Client(base_url=server_url, timeout=60) as client:
        for app in apps:
            mine = [m for a, m in sent if a is app]
            for start in range(0, len(mine), 100):
                assert batch(client, app.write_key, mine[start:start + 100]).status_code == 200
    return Tenant(ws, email, password, key, apps, segment, events)


def last_dst_change(zone: str, now: datetime) -> date:
    """The local date of the last change of ``zone``'s UTC offset at least 3 days before
    ``now`` (New York changes twice a year, so it is at most about eight months back)."""
    tz = ZoneInfo(zone)
    day = now.astimezone(tz).date() - timedelta(days=3)
    for _ in range(400):
        noon_before = datetime(day.year, day.month, day.day, 12, tzinfo=tz) - timedelta(days=1)
        noon_after = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        if noon_before.utcoffset() != noon_after.utcoffset():
            return day
        day -= timedelta(days=1)
    raise AssertionError(f"{zone} has not changed its offset in 400 days")


# ------------------------------------------------------------------ what the API says


def before(label: str) -> str:
    """``ending_at`` for the piece before a point labelled ``label``: the day before a
    date; one second before an hour's start (an instant, so no zone is involved)."""
    if len(label) == 10:
        return (date.fromisoformat(label) - timedelta(days=1)).isoformat()
    start = datetime.fromisoformat(label.replace("Z", "+00:00"))
    return _iso(start - timedelta(seconds=1))


def span(card: Card, view: View) -> dict[str, Any]:
    """What a card shows (docs/dashboard.md): the range's points, or for an hour range by
    dates every hour of those local dates; the KPIs by day (at least 7 days for an hour view)."""
    custom = not view.range
    if card.units:
        if not custom:
            return {"count": view.range, "unit": view.unit}
        if view.unit == "day":
            return {"ending_at": view.to, "unit": "day",
                    "count": (date.fromisoformat(view.to) - date.fromisoformat(view.start)).days + 1}
        return {"ending_at": f"{view.to}T23:59:59", "since": view.start, "unit": "hour"}
    if custom:
        return {"ending_at": view.to, "unit": "day",
                "count": (date.fromisoformat(view.to) - date.fromisoformat(view.start)).days + 1}
    if view.unit == "hour":
        return {"count": max(7, -(-view.range // 24)), "unit": "day"}
    return {"count": view.range, "unit": "day"}


def params(card: Card, view: View, workspace_zone: str) -> dict[str, str]:
    found: dict[str, str] = {}
    if card.key == "events":
        found["event"] = view.event
    if card.units:
        found["unit"] = view.unit
        if view.segment:
            found["segment_id"] = view.segment
        if view.zone and view.zone != workspace_zone:
            found["time_zone"] = view.zone
    if view.app:
        found["app_id"] = view.app
    return found


def expected_card(client: httpx.Client, card: Card, view: View, workspace_zone: str,
                  newest: str | None = None) -> list[Row]:
    """The rows a card's table must have, read from the API in pieces of ``PIECE``.
    ``newest``: the label of the newest point the page drew for a range that ends now,
    so that a clock turning between the page's read and this one is not a difference."""
    shown = span(card, view)
    query = params(card, view, workspace_zone)
    ending_at = shown.get("ending_at") or newest
    points: list[tuple[str, int]] = []

    def more() -> bool:
        nonlocal ending_at
        piece = dict(query, length=str(PIECE))
        if ending_at:
            piece["ending_at"] = ending_at
        response = client.get(card.path, params=piece)
        assert response.status_code == 200, (card.path, piece, response.text)
        data = response.json()["data"]
        if not data:
            return False
        got = [(str(p["time"]), int(p[card.field])) for p in data]
        points[:0] = got
        ending_at = before(got[0][0])
        return True

    if "since" in shown:
        while more() and points[0][0][:10] >= shown["since"]:
            pass
        current = [p for p in points if p[0][:10] >= shown["since"]]
        older = points[: len(points) - len(current)]
        while len(older) < len(current) and more():
            older = points[: len(points) - len(current)]
    else:
        count = shown["count"]
        while len(points) < 2 * count and more():
            pass
        current = points[-count:]
        older = points[: len(points) - count]
    previous = older[-len(current):] if current else []
    pad = len(current) - len(previous)
    rows = []
    for i, (time, value) in enumerate(current):
        rows.append((time, str(value), str(previous[i - pad][1]) if i >= pad else ""))
    return rows


def table_rows(page: Any, card: str) -> list[Row]:
    """A card's table as (data-time, data-value, data-previous) rows."""
    got = page.evaluate(
        """(key) => [...document.querySelectorAll(`[data-chart="${key}"] table.data-table tbody tr`)]
              .map((tr) => [tr.dataset.time, tr.dataset.value, tr.dataset.previous])""", card)
    return [tuple(row) for row in got]
