"""The custom-event exports over HTTP (docs/api.md ``GET /events/list`` and ``GET
/events/data_series``), against a real server on both engines: names by page, and events
by local day and hour in a workspace whose zone is Asia/Kolkata (+05:30, so that local
hours start at :30 UTC), per app and per tracked segment, checked against values computed
by hand; parameter refusals, permissions and the missing key.

The events (``track`` unless said; apps A and B; IST = UTC+05:30):

====  ===========  =========  =======  ======================  ==================
app   person       userId     event    UTC                     IST
====  ===========  =========  =======  ======================  ==================
A     anon-1       (none)     Buy      2025-06-01 10:00        06-01 15:30
A     anon-2       u-pro      Buy      2025-06-01 18:20        06-01 23:50
A     anon-2       u-pro      Signup   2025-06-01 18:20        06-01 23:50
A     anon-2       u-pro      Buy      2025-06-01 18:35        06-02 00:05
B     anon-3       u-free     Buy      2025-06-01 18:40        06-02 00:10
A     anon-2       (page, not a custom event)  2025-06-01 18:25
====  ===========  =========  =======  ======================  ==================

u-pro matches the tracked segment "plan = pro"; u-free does not.
"""

from __future__ import annotations

import pytest
from e2e_support import MISSING_KEY, assert_rate_headers, bearer, json_message
from tracking_http_support import batch, message

from sessiontally import admin

pytestmark = pytest.mark.e2e

ZONE = "Asia/Kolkata"
PRO = '{"attribute": "plan", "op": "eq", "value": "pro"}'


def events_series(client, key: str, query: str) -> list[tuple[str, int]]:
    """``GET /events/data_series`` as (time, count) pairs (asserting a 200 of the documented shape)."""
    response = client.get("/events/data_series?" + query, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert_rate_headers(response)
    body = response.json()
    assert set(body) == {"data", "message"} and body["message"] == "success", body
    for point in body["data"]:
        assert set(point) == {"time", "count"} and isinstance(point["count"], int), point
    return [(p["time"], p["count"]) for p in body["data"]]


@pytest.fixture
def events_tenant(shared_db, client):
    ws = shared_db.workspace(time_zone=ZONE)
    apps = {"A": shared_db.app(ws, "A"), "B": shared_db.app(ws, "B")}
    key = shared_db.key(ws)
    segment = admin.create_segment(shared_db.store, ws, "pro", PRO, analytics=True)
    response = client.post("/users/track", headers=bearer(key), json={"attributes": [
        {"external_id": "u-pro", "plan": "pro"}, {"external_id": "u-free", "plan": "free"}]})
    assert response.status_code == 201, response.text
    in_a = [
        message("track", "anon-1", "2025-06-01T10:00:00Z", event="Buy"),
        message("track", "anon-2", "2025-06-01T18:20:00Z", event="Buy", userId="u-pro"),
        message("track", "anon-2", "2025-06-01T18:20:00Z", event="Signup", userId="u-pro"),
        message("track", "anon-2", "2025-06-01T18:35:00Z", event="Buy", userId="u-pro"),
        message("page", "anon-2", "2025-06-01T18:25:00Z", name="Buy", userId="u-pro"),
    ]
    in_b = [message("track", "anon-3", "2025-06-01T18:40:00Z", event="Buy", userId="u-free")]
    for app, messages in (("A", in_a), ("B", in_b)):
        response = batch(client, apps[app].write_key, messages)
        assert response.status_code == 200 and response.json() == {"success": True}, response.text
    # a retried message (same messageId) is not counted again
    response = batch(client, apps["A"].write_key, in_a[:2])
    assert response.status_code == 200, response.text
    return ws, apps, key, segment


def test_events_by_local_day(client, events_tenant):
    ws, apps, key, segment = events_tenant
    base = "event=Buy&length=3&ending_at=2025-06-02"
    assert events_series(client, key, base) == [("2025-05-31", 0), ("2025-06-01", 2), ("2025-06-02", 2)]
    assert events_series(client, key, base + "&unit=day") == events_series(client, key, base)
    assert events_series(client, key, f"{base}&app_id={apps['A'].app_id}") == [
        ("2025-05-31", 0), ("2025-06-01", 2), ("2025-06-02", 1)]
    assert events_series(client, key, f"{base}&app_id={apps['B'].app_id}") == [
        ("2025-05-31", 0), ("2025-06-01", 0), ("2025-06-02", 1)]
    assert events_series(client, key, f"{base}&segment_id={segment.segment_id}") == [
        ("2025-05-31", 0), ("2025-06-01", 1), ("2025-06-02", 1)]
    both = f"{base}&segment_id={segment.segment_id}&app_id={apps['B'].app_id}"
    assert events_series(client, key, both) == [
        ("2025-05-31", 0), ("2025-06-01", 0), ("2025-06-02", 0)]
    assert events_series(client, key, "event=Signup&length=2&ending_at=2025-06-02") == [
        ("2025-06-01", 1), ("2025-06-02", 0)]
    # time_zone overrides the workspace's zone: all four on 06-01 in UTC
    assert events_series(client, key, "event=Buy&length=2&ending_at=2025-06-02&time_zone=UTC") == [
        ("2025-06-01", 4), ("2025-06-02", 0)]


def test_events_by_local_hour(client, events_tenant):
    ws, apps, key, segment = events_tenant
    # 19:00 UTC is 00:30 IST on 06-02: the last bucket is 00:00-01:00 IST (18:30-19:30 UTC)
    query = "event=Buy&length=3&unit=hour&ending_at=2025-06-01T19:00:00Z"
    assert events_series(client, key, query) == [
        ("2025-06-01T22:00:00+05:30", 0),
        ("2025-06-01T23:00:00+05:30", 1),  # 18:20 UTC
        ("2025-06-02T00:00:00+05:30", 2),  # 18:35 and 18:40 UTC
    ]
    assert events_series(client, key, f"{query}&segment_id={segment.segment_id}") == [
        ("2025-06-01T22:00:00+05:30", 0), ("2025-06-01T23:00:00+05:30", 1), ("2025-06-02T00:00:00+05:30", 1)]
    assert events_series(client, key, f"{query}&app_id={apps['B'].app_id}") == [
        ("2025-06-01T22:00:00+05:30", 0), ("2025-06-01T23:00:00+05:30", 0), ("2025-06-02T00:00:00+05:30", 1)]
    # the same instants bucketed in New York (UTC-4): 14:00-15:00 holds all three
    assert events_series(client, key, query + "&time_zone=America/New_York") == [
        ("2025-06-01T13:00:00-04:00", 0), ("2025-06-01T14:00:00-04:00", 3), ("2025-06-01T15:00:00-04:00", 0)]
    # wall time without offset is IST: 15:59 IST is the bucket 15:00-16:00 IST (anon-1's at 15:30)
    assert events_series(client, key, "event=Buy&length=1&unit=HOUR&ending_at=2025-06-01T15:59:00") == [
        ("2025-06-01T15:00:00+05:30", 1)]


def test_an_unknown_event_is_a_series_of_zeros(client, events_tenant):
    ws, apps, key, segment = events_tenant
    for name in ("Nope", "buy", "Buy ", "page"):  # names are exact (a page's name is no event)
        assert events_series(client, key, f"event={name}&length=3&ending_at=2025-06-02") == [
            ("2025-05-31", 0), ("2025-06-01", 0), ("2025-06-02", 0)]


def test_events_list_pages(client, shared_db, events_tenant):
    ws, apps, key, segment = events_tenant
    response = client.get("/events/list", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert_rate_headers(response)
    assert response.json() == {"events": ["Buy", "Signup"], "message": "success"}
    empty = {"events": [], "message": "success"}
    assert client.get("/events/list?page=1", headers=bearer(key)).json() == empty
    # 251 names more: pages of 250, alphabetical (by code point)
    names = [f"e{n:03}" for n in range(251)]
    response = batch(client, apps["B"].write_key,
                     [message("track", "anon-9", "2025-06-03T10:00:00Z", event=n) for n in reversed(names)])
    assert response.status_code == 200, response.text
    everything = sorted(["Buy", "Signup", *names])
    first = client.get("/events/list?page=0", headers=bearer(key)).json()["events"]
    second = client.get("/events/list?page=1", headers=bearer(key)).json()["events"]
    assert everything[:2] == ["Buy", "Signup"]  # upper case before lower case
    assert first == everything[:250] and second == everything[250:] == ["e248", "e249", "e250"]
    # another workspace sees none of them
    other_ws, _, other_key = shared_db.tenant()
    assert client.get("/events/list", headers=bearer(other_key)).json() == empty


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=-1", "'page' must be a non-negative integer"),
        ("page=01", "'page' must be a non-negative integer"),
        ("page=x", "'page' must be a non-negative integer"),
        ("page=99999999", "'page' is too large"),
        ("page=0&page=1", "'page' is given more than once"),
    ],
)
def test_events_list_refusals(client, events_tenant, query, message):
    ws, apps, key, segment = events_tenant
    response = client.get("/events/list?" + query, headers=bearer(key))
    assert response.status_code == 400
    assert json_message(response) == message
    assert_rate_headers(response)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("length=3", "'event' is required (the name of a custom event)"),
        ("event=&length=3", "'event' is required (the name of a custom event)"),
        ("event=Buy&event=Buy&length=3", "'event' is given more than once"),
        ("event=" + "x" * 257 + "&length=3", "'event' is too long"),
        ("event=Buy%00&length=3", "'event' must not contain NUL (U+0000) characters"),
        ("event=Buy", "'length' is required (an integer from 1 to 100)"),
        ("event=Buy&length=101", "'length' must be an integer from 1 to 100"),
        ("event=Buy&length=3&unit=week", "'unit' must be 'day' or 'hour'"),
        ("event=Buy&length=3&ending_at=2025-02-30", "'ending_at' is not a valid calendar date "
                                                    "(day is out of range for month)"),
        ("event=Buy&length=3&time_zone=Mars/Olympus", "'time_zone' is not a known IANA time zone name"),
        ("event=Buy&length=3&time_zone=localtime", "'time_zone' is not a known IANA time zone name"),
        ("event=Buy&length=3&app_id=no-such-app", "'app_id' is not an app of this workspace"),
        ("event=Buy&length=3&segment_id=no-such-segment", "'segment_id' is not a segment of this workspace"),
    ],
)
def test_events_series_refusals(client, events_tenant, query, message):
    ws, apps, key, segment = events_tenant
    response = client.get("/events/data_series?" + query, headers=bearer(key))
    assert response.status_code == 400, response.text
    assert json_message(response) == message
    assert_rate_headers(response)


def test_an_untracked_segment_is_refused(client, shared_db, events_tenant):
    ws, apps, key, segment = events_tenant
    untracked = admin.create_segment(shared_db.store, ws, "free", PRO.replace("pro", "free"))
    response = client.get(f"/events/data_series?event=Buy&length=3&segment_id={untracked.segment_id}",
                          headers=bearer(key))
    assert response.status_code == 400
    assert json_message(response) == "'segment_id' names a segment whose analytics tracking is off"


def test_permissions_and_keys(client, shared_db, events_tenant):
    ws, apps, key, segment = events_tenant
    for path, permission, other in (
        ("/events/list", "events.list", "events.data_series"),
        ("/events/data_series?event=Buy&length=3", "events.data_series", "events.list"),
    ):
        only_other = shared_db.key(ws, permissions=[other, "sessions.data_series"])
        response = client.get(path, headers=bearer(only_other))
        assert response.status_code == 403, response.text
        assert json_message(response) == (
            f"Access Denied: this API key does not have the {permission} permission")
        assert_rate_headers(response)
        only_this = shared_db.key(ws, permissions=[permission])
        assert client.get(path, headers=bearer(only_this)).status_code == 200
        unknown = bearer("st_1_" + "x" * 43)
        for headers, told in (({}, MISSING_KEY), (unknown, {"message": "Invalid API key"})):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json() == told
            assert "X-RateLimit-Limit" not in response.headers
