"""The KPI exports over HTTP (docs/api.md "KPIs"), against a real server on both engines:
``GET /kpi/{dau,mau,new_users,uninstalls}/data_series`` read back from sessions recorded
with ``POST /sessions/track`` and derived from events of the tracking API, in a workspace
whose zone is not UTC, checked against values computed by hand; parameter refusals,
permissions, the missing key, and what a zone change does.

The data (workspace zone America/New_York, UTC-4 in May and June 2025; apps A and B):

========  ====  =====================================  ======================
person    app   session starts (UTC)                   local days (New York)
========  ====  =====================================  ======================
p1        A     06-01 12:00, 06-01 20:00, 06-02 03:30  06-01 (three times)
p1        A     06-03 14:00                            06-03
p3        A     05-01 16:00                            05-01
p4        A     06-03 15:00                            06-03
p4        B     05-30 15:00 (sent last: a late one)    05-30
p2        B     events 06-02 13:00, 13:05 (uninstall)  06-02
p5        B     event 06-03 02:00 (uninstall)          06-02
========  ====  =====================================  ======================

p1, p3 and p4 come through ``/sessions/track`` (``external_id``); p2 (an ``anonymousId``)
and p5 (a ``userId`` only) through ``/v1/batch``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from e2e_support import MISSING_KEY, assert_rate_headers, bearer, json_message
from tracking_http_support import batch, message

pytestmark = pytest.mark.e2e

KPIS = ("dau", "mau", "new_users", "uninstalls")
ZONE = "America/New_York"
FIRST, LAST = "2025-04-29", "2025-06-03"  # the 36 days every series below covers

P1 = [("p1", "A", "2025-06-01T12:00:00Z"), ("p1", "A", "2025-06-01T20:00:00Z"),
      ("p1", "A", "2025-06-02T03:30:00Z"), ("p1", "A", "2025-06-03T14:00:00Z")]
P3 = [("p3", "A", "2025-05-01T16:00:00Z")]
P4_FIRST = [("p4", "A", "2025-06-03T15:00:00Z")]
P4_LATE = [("p4", "B", "2025-05-30T15:00:00Z")]
EVENTS = [  # (person field, person, app, event, timestamp): all in app B
    ("anonymousId", "p2", "B", "Played", "2025-06-02T13:00:00Z"),
    ("anonymousId", "p2", "B", "Application Uninstalled", "2025-06-02T13:05:00Z"),
    ("userId", "p5", "B", "Application Uninstalled", "2025-06-03T02:00:00Z"),
]

# Hand-computed: the non-zero values of each series, for all apps / app A / app B.
EXPECTED = {
    ("dau", None): {"2025-05-01": 1, "2025-05-30": 1, "2025-06-01": 1, "2025-06-02": 2, "2025-06-03": 2},
    ("dau", "A"): {"2025-05-01": 1, "2025-06-01": 1, "2025-06-03": 2},
    ("dau", "B"): {"2025-05-30": 1, "2025-06-02": 2},
    # p3 (only 05-01) counts from 05-01 to 05-30 (d+29), not on 05-31 (d+30)
    ("mau", None): {**{f"2025-05-{d:02}": 1 for d in range(1, 30)}, "2025-05-30": 2, "2025-05-31": 1,
                    "2025-06-01": 2, "2025-06-02": 4, "2025-06-03": 4},
    ("mau", "A"): {**{f"2025-05-{d:02}": 1 for d in range(1, 31)}, "2025-06-01": 1, "2025-06-02": 1,
                   "2025-06-03": 2},
    ("mau", "B"): {"2025-05-30": 1, "2025-05-31": 1, "2025-06-01": 1, "2025-06-02": 3, "2025-06-03": 3},
    # p4's first session is the late one in app B (05-30); in app A it is still 06-03
    ("new_users", None): {"2025-05-01": 1, "2025-05-30": 1, "2025-06-01": 1, "2025-06-02": 2},
    ("new_users", "A"): {"2025-05-01": 1, "2025-06-01": 1, "2025-06-03": 1},
    ("new_users", "B"): {"2025-05-30": 1, "2025-06-02": 2},
    # p5's uninstall at 02:00 UTC on 06-03 is 22:00 on 06-02 in New York
    ("uninstalls", None): {"2025-06-02": 2},
    ("uninstalls", "A"): {},
    ("uninstalls", "B"): {"2025-06-02": 2},
}


def _days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def kpi(client, key: str, name: str, query: str) -> dict[str, int]:
    """A KPI series as {day: value} (asserting a 200 of the documented shape)."""
    response = client.get(f"/kpi/{name}/data_series?{query}", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_rate_headers(response)
    body = response.json()
    assert set(body) == {"data", "message"} and body["message"] == "success", body
    for point in body["data"]:
        assert set(point) == {"time", name} and isinstance(point[name], int), point
    return {point["time"]: point[name] for point in body["data"]}


def nonzero(series: dict[str, int]) -> dict[str, int]:
    return {day: n for day, n in series.items() if n}


def _record(client, key: str, apps: dict[str, object], sessions) -> None:
    items = [{"session_id": uuid.uuid4().hex, "external_id": person, "app_id": apps[app].app_id,
              "started_at": started} for person, app, started in sessions]
    response = client.post("/sessions/track", json={"sessions": items}, headers=bearer(key))
    assert response.status_code == 201 and response.json()["sessions_processed"] == len(items), response.text


def _send_events(client, apps) -> None:
    messages = [message("track", None, at, event=name, **{field: person})
                for field, person, _, name, at in EVENTS]
    for m in messages:
        if "userId" in m and m.get("anonymousId", "").startswith("anon-"):
            del m["anonymousId"]  # p5 is a userId only
    response = batch(client, apps["B"].write_key, messages)
    assert response.status_code == 200 and response.json() == {"success": True}, response.text


@pytest.fixture
def kpi_tenant(shared_db, client):
    ws = shared_db.workspace(time_zone=ZONE)
    apps = {"A": shared_db.app(ws, "A"), "B": shared_db.app(ws, "B")}
    key = shared_db.key(ws)
    _record(client, key, apps, P1 + P3 + P4_FIRST)
    _send_events(client, apps)
    return ws, apps, key


def test_kpis_match_the_hand_computed_values(client, kpi_tenant):
    ws, apps, key = kpi_tenant
    # Before p4's late session: p4 is new on 06-03, active on 06-03 only.
    assert nonzero(kpi(client, key, "new_users", f"length=36&ending_at={LAST}")) == {
        "2025-05-01": 1, "2025-06-01": 1, "2025-06-02": 2, "2025-06-03": 1}
    assert kpi(client, key, "mau", f"length=1&ending_at={LAST}") == {LAST: 4}
    _record(client, key, apps, P4_LATE)  # arrives last, starts earlier than p4's first
    for name in KPIS:
        for app in (None, "A", "B"):
            query = f"length=36&ending_at={LAST}" + (f"&app_id={apps[app].app_id}" if app else "")
            series = kpi(client, key, name, query)
            assert list(series) == _days(FIRST, LAST), (name, app)  # oldest first, every day
            assert nonzero(series) == EXPECTED[(name, app)], (name, app, nonzero(series))


def test_late_and_repeated_sessions_leave_counted_days_as_they_are(client, kpi_tenant):
    ws, apps, key = kpi_tenant
    _record(client, key, apps, P4_LATE)
    before = {name: kpi(client, key, name, f"length=36&ending_at={LAST}") for name in KPIS}
    # another session of p1 on 06-01 (already active), and of p3 on 05-01: nothing changes
    _record(client, key, apps, [("p1", "A", "2025-06-01T23:00:00Z"), ("p3", "A", "2025-05-01T20:00:00Z")])
    after = {name: kpi(client, key, name, f"length=36&ending_at={LAST}") for name in KPIS}
    assert after == before
    # a late session of p3 on 05-20 fills its gap: MAU up to 06-18 now; DAU once more
    _record(client, key, apps, [("p3", "A", "2025-05-20T16:00:00Z")])
    mau = kpi(client, key, "mau", "length=3&ending_at=2025-06-19")
    assert mau == {"2025-06-17": 5, "2025-06-18": 5, "2025-06-19": 4}  # p1, p2, p4, p5 (+ p3 to 06-18)
    assert kpi(client, key, "dau", "length=1&ending_at=2025-05-20") == {"2025-05-20": 1}
    assert kpi(client, key, "new_users", "length=1&ending_at=2025-05-20") == {"2025-05-20": 0}


@pytest.mark.parametrize(
    ("ending_at", "last_day"),
    [
        ("2025-06-03", "2025-06-03"),  # a date
        ("2025-06-02T23:30:00", "2025-06-02"),  # wall time in the workspace's zone
        ("2025-06-03T02:00:00Z", "2025-06-02"),  # an instant: 22:00 on 06-02 in New York
        ("2025-06-03T02:00:00%2B00:00", "2025-06-02"),
        ("2025-06-03T02:00:00 00:00", "2025-06-02"),  # a '+' decoded to a space
        ("2025-06-02T22:00:00-4:00", "2025-06-02"),  # one-digit hour offset (Braze's docs)
        ("2025-06-03T09:00:00.5%2B0900", "2025-06-02"),  # 00:00 UTC on 06-03: 20:00 on 06-02
    ],
)
def test_ending_at_names_a_local_day_of_the_workspace(client, kpi_tenant, ending_at, last_day):
    ws, apps, key = kpi_tenant
    series = kpi(client, key, "dau", f"length=2&ending_at={ending_at}")
    assert list(series)[-1] == last_day and len(series) == 2


def test_without_ending_at_the_series_ends_today(client, kpi_tenant):
    ws, apps, key = kpi_tenant
    today = datetime.now(ZoneInfo(ZONE)).date()
    for name in KPIS:
        series = kpi(client, key, name, "length=100&unit=DAY")
        days = list(series)
        assert len(days) == 100 and days[-1] in {today.isoformat(), (today + timedelta(days=1)).isoformat()}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "'length' is required (an integer from 1 to 100)"),
        ("length=0", "'length' must be an integer from 1 to 100"),
        ("length=101", "'length' must be an integer from 1 to 100"),
        ("length=07", "'length' must be an integer from 1 to 100"),
        ("length=3&length=3", "'length' is given more than once"),
        ("length=3&unit=hour", "'unit' must be 'day'"),
        ("length=3&unit=week", "'unit' must be 'day'"),
        ("length=3&time_zone=UTC",
         "'time_zone' is not accepted here: KPI days are local days in the workspace's time zone"),
        ("length=3&segment_id=abc",
         "'segment_id' is not accepted here: KPIs count every person of the workspace or app"),
        ("length=3&ending_at=yesterday",
         "'ending_at' is not an ISO-8601 date or datetime (e.g. 2025-06-01 or 2025-06-01T12:00:00Z)"),
        ("length=3&ending_at=1970-06-01", "'ending_at' must be between 1971 and 9998"),
        ("length=3&app_id=", "'app_id' must not be empty"),
        ("length=3&app_id=no-such-app", "'app_id' is not an app of this workspace"),
        ("length=3&app_id=a&app_id=b", "'app_id' is given more than once"),
    ],
)
def test_parameter_refusals(client, kpi_tenant, query, message):
    ws, apps, key = kpi_tenant
    for name in KPIS:
        response = client.get(f"/kpi/{name}/data_series?{query}", headers=bearer(key))
        assert response.status_code == 400, (name, query, response.text)
        assert json_message(response) == message
        assert_rate_headers(response)


def test_unknown_parameters_are_ignored(client, kpi_tenant):
    ws, apps, key = kpi_tenant
    plain = kpi(client, key, "dau", f"length=5&ending_at={LAST}")
    assert kpi(client, key, "dau", f"length=5&ending_at={LAST}&foo=1&page=2") == plain


def test_permissions_and_keys(client, shared_db, kpi_tenant):
    ws, apps, key = kpi_tenant
    sessions_only = shared_db.key(ws, permissions=["sessions.data_series"])
    for name in KPIS:
        path = f"/kpi/{name}/data_series?length=3"
        response = client.get(path, headers=bearer(sessions_only))
        assert response.status_code == 403, response.text
        assert json_message(response) == (
            f"Access Denied: this API key does not have the kpi.{name}.data_series permission")
        assert_rate_headers(response)
        # one KPI's permission does not open another
        other = next(n for n in KPIS if n != name)
        only_other = shared_db.key(ws, permissions=[f"kpi.{other}.data_series"])
        assert client.get(path, headers=bearer(only_other)).status_code == 403
        only_this = shared_db.key(ws, permissions=[f"kpi.{name}.data_series"])
        assert client.get(path, headers=bearer(only_this)).status_code == 200
        # no key, or an unknown one
        unknown = bearer("st_1_" + "x" * 43)
        for headers, told in (({}, MISSING_KEY), (unknown, {"message": "Invalid API key"})):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json() == told
            assert "X-RateLimit-Limit" not in response.headers


def _brute_force(starts: list[tuple[str, str]], uninstalls: list[str], zone: str,
                 days: list[str]) -> dict[str, dict[str, int]]:
    """The four KPIs for all apps by definition, from (person, UTC start) pairs and
    uninstall times, in ``zone``."""
    local = ZoneInfo(zone)

    def day_of(instant: str) -> date:
        return datetime.fromisoformat(instant).astimezone(UTC).astimezone(local).date()

    active: dict[str, set[date]] = {}
    for person, started in starts:
        active.setdefault(person, set()).add(day_of(started))
    out: dict[str, dict[str, int]] = {name: {} for name in KPIS}
    for text in days:
        d = date.fromisoformat(text)
        out["dau"][text] = sum(d in s for s in active.values())
        out["mau"][text] = sum(any(d - timedelta(days=29) <= a <= d for a in s) for s in active.values())
        out["new_users"][text] = sum(min(s) == d for s in active.values())
        out["uninstalls"][text] = sum(day_of(t) == d for t in uninstalls)
    return out


def test_a_zone_change_rebuilds_every_day_from_the_raw_data(client, shared_db, kpi_tenant):
    ws, apps, key = kpi_tenant
    _record(client, key, apps, P4_LATE)
    starts = [(p, s) for p, _, s in P1 + P3 + P4_FIRST + P4_LATE]
    starts += [("p2", "2025-06-02T13:00:00Z"), ("p5", "2025-06-03T02:00:00Z")]
    uninstalls = [at for *_, name, at in EVENTS if name == "Application Uninstalled"]
    days = _days(FIRST, "2025-06-04")
    query = "length=37&ending_at=2025-06-04"
    expected = _brute_force(starts, uninstalls, ZONE, days)
    assert {name: kpi(client, key, name, query) for name in KPIS} == expected
    for zone in ("Asia/Tokyo", "Pacific/Kiritimati", ZONE):  # +09:00, +14:00, and back
        shared_db.store.change_time_zone(ws.workspace_id, zone)  # as the operator's command does
        got = {name: kpi(client, key, name, query) for name in KPIS}
        assert got == _brute_force(starts, uninstalls, zone, days), zone
    # in Tokyo, p1's 03:30 UTC session is on 06-02 and p5's uninstall on 06-03
    shared_db.store.change_time_zone(ws.workspace_id, "Asia/Tokyo")
    assert nonzero(kpi(client, key, "uninstalls", query)) == {"2025-06-02": 1, "2025-06-03": 1}
    assert kpi(client, key, "dau", "length=1&ending_at=2025-06-02")["2025-06-02"] == 2  # p1, p2
