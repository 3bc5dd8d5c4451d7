"""The tracking API over HTTP (Segment's HTTP Tracking API, docs/api.md "The tracking
API"), against a real server on both engines: paths, credentials, bodies, answers, dedup,
identify traits, CORS, origins, the per-app message limit, and the sessions derived from
the events as ``GET /sessions/data_series`` shows them.

Each test looks at what was stored (the events, the derived sessions, the attributes) or
at the series, not only at the status.
"""

from __future__ import annotations

import gzip
import time
import uuid

import orjson
import pytest
from db_support import avoid_hour_boundary
from e2e_support import assert_no_rate_headers, assert_rate_headers, bearer
from tracking_http_support import (
    INVALID_WRITE_KEY,
    ORIGIN_REFUSED,
    OVER_MESSAGE_LIMIT,
    SINGLE_PATHS,
    basic,
    batch,
    message,
    nonzero,
    post_json,
    series,
    snapshot,
    user_attributes,
)

from sessiontally import admin

pytestmark = pytest.mark.e2e

SUCCESS = {"success": True}
DAY = "2025-06-01"


def at(hhmm: str, day: str = DAY) -> str:
    return f"{day}T{hhmm}:00Z"


def day_series(client, key, extra: str = "", ending: str = "2025-06-03", length: int = 5) -> dict[str, int]:
    return nonzero(series(client, key, f"length={length}&unit=day&ending_at={ending}{extra}"))


@pytest.fixture
def tenant(shared_db):
    """A UTC workspace with two apps and a key holding every permission."""
    return shared_db.tenant(apps=2)


def test_batch_on_the_long_and_short_paths_with_either_credential(client, shared_db, tenant):
    ws, apps, key = tenant
    wk = apps[0].write_key
    assert wk.startswith(f"wk_{ws.workspace_id}_")
    first = batch(client, wk, [message("page", "a1", at("12:00")), message("track", "a1", at("12:10"))])
    assert first.status_code == 200, first.text
    assert first.json() == SUCCESS
    assert first.headers["content-type"].startswith("application/json")
    assert_no_rate_headers(first)  # write-key traffic is not the workspace's API traffic
    # the short path, with the key in the body instead of a header
    second = post_json(client, "/v1/b", {"writeKey": wk, "batch": [message("screen", "a2", at("15:00"))]})
    assert second.status_code == 200, second.text
    assert second.json() == SUCCESS
    # a key given as the first message's writeKey (as some libraries do)
    third = post_json(client, "/v1/batch", {"batch": [message("track", "a3", at("18:00"), writeKey=wk)]})
    assert third.status_code == 200, third.text
    state = snapshot(shared_db.url, ws.workspace_id)
    assert len(state.events) == 4
    assert sorted((p, s, e) for _, p, s, e, _ in state.derived) == [
        ("a1", 1748779200000000, 1748779800000000),
        ("a2", 1748790000000000, 1748790000000000),
        ("a3", 1748800800000000, 1748800800000000),
    ]
    assert day_series(client, key) == {DAY: 3}
    assert day_series(client, key, f"&app_id={apps[0].app_id}") == {DAY: 3}
    assert day_series(client, key, f"&app_id={apps[1].app_id}") == {}


@pytest.mark.parametrize("kind", list(SINGLE_PATHS))
def test_single_message_paths(client, shared_db, tenant, kind):
    ws, apps, key = tenant
    wk = apps[0].write_key
    long_path, short_path = SINGLE_PATHS[kind]
    for n, path in enumerate((long_path, short_path)):
        body = message(kind, f"p-{n}", at(f"1{n}:00"), userId=f"u-{n}")
        del body["type"]  # implied by the path
        response = post_json(client, path, body, wk)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == SUCCESS
    # the path's type, given in the body, is accepted too
    response = post_json(client, long_path, message(kind, "p-2", at("12:00")), wk)
    assert response.status_code == 200 and response.json() == SUCCESS, response.text
    state = snapshot(shared_db.url, ws.workspace_id)
    assert sorted((row[2], row[4]) for row in state.events) == [(kind, "p-0"), (kind, "p-1"), (kind, "p-2")]
    activity = kind in ("track", "page", "screen")
    assert len(state.derived) == (3 if activity else 0)
    assert day_series(client, key) == ({DAY: 3} if activity else {})


@pytest.mark.parametrize(
    ("content_type", "gzipped"),
    [("application/json", False), ("text/plain", False), (None, False),
     ("text/plain;charset=UTF-8", False), ("application/json", True), ("text/plain", True)],
    ids=["json", "text-plain", "no-content-type", "text-plain-charset", "json-gzip", "text-plain-gzip"],
)
def test_json_under_any_content_type_and_gzip(client, shared_db, tenant, content_type, gzipped):
    ws, apps, key = tenant
    messages = [message("track", f"a{n}", at(f"{10 + n}:00")) for n in range(3)]
    response = batch(client, apps[0].write_key, messages, content_type=content_type, gzipped=gzipped)
    assert response.status_code == 200, response.text
    assert response.json() == SUCCESS
    single = post_json(client, "/v1/t", message("track", "a9", at("20:00")), apps[0].write_key,
                       content_type=content_type, gzipped=gzipped)
    assert single.status_code == 200 and single.json() == SUCCESS, single.text
    state = snapshot(shared_db.url, ws.workspace_id)
    assert {m["messageId"] for m in messages} < set(state.event_ids())
    assert len(state.events) == 4
    assert day_series(client, key) == {DAY: 4}


def test_invalid_messages_are_rejected_and_the_valid_ones_recorded(client, shared_db, tenant):
    ws, apps, key = tenant
    good = [message("track", "a1", at("12:00")), message("page", "a2", at("13:00")),
            message("identify", None, userId="u1", traits={"plan": "pro"})]
    messages = [
        good[0],
        {"type": "track", "anonymousId": "a3", "timestamp": at("14:00")},  # 1: no event
        good[1],
        {"type": "page", "timestamp": at("15:00")},  # 2: no person... index 3
        "not an object",  # 4
        message("track", "a4", "1969-12-31T23:59:59Z"),  # 5
        message("launch", "a5", at("16:00")),  # 6: unknown type
        good[2],  # 7
        message("track", "a6", at("17:00"), properties=[1, 2]),  # 8
    ]
    response = batch(client, apps[0].write_key, messages)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "rejected"} and body["success"] is True
    rejected = {r["index"]: r["message"] for r in body["rejected"]}
    assert sorted(rejected) == [1, 3, 4, 5, 6, 8]
    assert all(set(r) == {"index", "message"} for r in body["rejected"])
    assert "'event'" in rejected[1]
    assert "'userId' or 'anonymousId'" in rejected[3]
    assert "object" in rejected[4]
    assert "'timestamp'" in rejected[5]
    assert "'type'" in rejected[6]
    assert "'properties'" in rejected[8]
    state = snapshot(shared_db.url, ws.workspace_id)
    assert sorted(state.event_ids()) == sorted(m["messageId"] for m in good)
    assert day_series(client, key) == {DAY: 2}
    assert user_attributes(shared_db.store, ws.workspace_id, "u1") == {"plan": "pro"}


def test_message_id_dedup_is_per_app(client, shared_db, tenant):
    ws, apps, key = tenant
    shared = "same-message-id"
    one = message("track", "a1", at("12:00"), messageId=shared)
    for _ in range(3):  # a retry, twice
        response = batch(client, apps[0].write_key, [one])
        assert response.status_code == 200 and response.json() == SUCCESS, response.text
    # the same id with other content, in the same app: ignored (the first write wins)
    moved = dict(one, timestamp=at("12:00", "2025-06-02"), anonymousId="other")
    assert batch(client, apps[0].write_key, [moved, moved]).json() == SUCCESS
    # the same id in another app is another event
    assert batch(client, apps[1].write_key, [dict(one, anonymousId="b1")]).json() == SUCCESS
    state = snapshot(shared_db.url, ws.workspace_id)
    assert sorted((row[0], row[1], row[4]) for row in state.events) == sorted(
        [(apps[0].app_key, shared, "a1"), (apps[1].app_key, shared, "b1")])
    assert day_series(client, key) == {DAY: 2}
    assert day_series(client, key, f"&app_id={apps[0].app_id}") == {DAY: 1}
    assert day_series(client, key, f"&app_id={apps[1].app_id}") == {DAY: 1}


def test_messages_without_an_id_are_deduplicated_by_content(client, shared_db, tenant):
    ws, apps, key = tenant
    plain = {"type": "track", "anonymousId": "a1", "event": "Played", "timestamp": at("12:00")}
    later = dict(plain, timestamp=at("18:00"))
    for _ in range(2):
        assert batch(client, apps[0].write_key, [plain, plain, later]).json() == SUCCESS
    assert post_json(client, "/v1/track", plain, apps[0].write_key).json() == SUCCESS
    state = snapshot(shared_db.url, ws.workspace_id)
    ids = state.event_ids()
    assert len(ids) == 2 and all(i.startswith("content-") for i in ids), ids
    # the two are more than the timeout apart: two sessions
    assert len(state.derived) == 2
    assert day_series(client, key) == {DAY: 2}


def test_identify_traits_become_attributes_and_segments_follow(client, shared_db, tenant):
    ws, apps, key = tenant
    segment = admin.create_segment(
        shared_db.store, ws, "pro", '{"attribute": "plan", "op": "eq", "value": "pro"}', analytics=True)
    wk = apps[0].write_key
    response = post_json(client, "/v1/identify", {
        "userId": "u1", "traits": {"plan": "pro", "age": 31, "beta": True, "tags": ["a", "b"],
                                   "address": {"city": "Oslo"}, "gone": None}}, wk)
    assert response.status_code == 200 and response.json() == SUCCESS, response.text
    attributes = user_attributes(shared_db.store, ws.workspace_id, "u1")
    assert attributes == {"plan": "pro", "age": 31, "beta": True, "tags": ["a", "b"]}
    assert post_json(client, "/v1/i", {"userId": "u2", "traits": {"plan": "free"}}, wk).json() == SUCCESS
    # sessions of u1 (pro) and u2 (free), and of an anonymous person
    assert batch(client, wk, [
        message("track", "a1", at("12:00"), userId="u1"),
        message("track", "a2", at("13:00"), userId="u2"),
        message("page", "a3", at("14:00")),
    ]).json() == SUCCESS
    assert day_series(client, key) == {DAY: 3}
    assert day_series(client, key, f"&segment_id={segment.segment_id}") == {DAY: 1}
    # a later identify changes the attributes, not the sessions already counted
    assert post_json(client, "/v1/i", {"userId": "u2", "traits": {"plan": "pro"}}, wk).json() == SUCCESS
    assert user_attributes(shared_db.store, ws.workspace_id, "u2")["plan"] == "pro"
    assert day_series(client, key, f"&segment_id={segment.segment_id}") == {DAY: 1}
    assert batch(client, wk, [message("track", "a2", at("20:00"), userId="u2")]).json() == SUCCESS
    assert day_series(client, key, f"&segment_id={segment.segment_id}") == {DAY: 2}
    assert day_series(client, key) == {DAY: 4}




def test_a_gzip_body_of_several_members_is_read_whole(client, shared_db, tenant):
    """RFC 1952 allows a gzip body of several members; they are one body together."""
    ws, apps, key = tenant
    raw = orjson.dumps({"batch": [message("page", "g1", at("09:00")), message("page", "g2", at("10:00"))]})
    body = gzip.compress(raw[:40]) + gzip.compress(raw[40:])
    response = post_json(client, "/v1/batch", body, apps[0].write_key, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200 and response.json() == SUCCESS, response.text
    assert day_series(client, key) == {DAY: 2}

def test_a_repeated_identify_is_ignored_even_after_a_newer_one(client, shared_db, tenant):
    """A library's late retry of an old ``identify`` (same messageId) must not undo the
    traits a newer one set: the repeat is ignored like any known messageId."""
    ws, apps, _ = tenant
    wk = apps[0].write_key
    old = {"userId": "u9", "messageId": "id-old", "traits": {"plan": "free"}}
    assert post_json(client, "/v1/i", old, wk).json() == SUCCESS
    assert post_json(client, "/v1/i", {"userId": "u9", "messageId": "id-new", "traits": {"plan": "pro"}},
                     wk).json() == SUCCESS
    assert batch(client, wk, [{"type": "identify", **old}]).json() == SUCCESS
    assert user_attributes(shared_db.store, ws.workspace_id, "u9") == {"plan": "pro"}

def test_cors_preflight_and_answers(client, shared_db, tenant):
    ws, apps, key = tenant
    origin = "https://shop.example"
    for path in ("/v1/batch", "/v1/b", "/v1/t", "/v1/identify"):
        preflight = client.options(path, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-retry-count"})
        assert preflight.status_code == 204, (path, preflight.text)
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "content-encoding", "x-retry-count"} <= allowed
        assert preflight.headers["access-control-max-age"] == "86400"
        assert "Origin" in preflight.headers["vary"]
        assert preflight.content == b""
    # answers carry the header too: 200, 400, 401
    ok = batch(client, apps[0].write_key, [message("page", "a1", at("12:00"))], headers={"Origin": origin})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == origin
    bad = post_json(client, "/v1/batch", b"{", apps[0].write_key, headers={"Origin": origin})
    assert bad.status_code == 400 and bad.headers["access-control-allow-origin"] == origin
    unknown = batch(client, "wk_1_nope", [message("page", "a1")], headers={"Origin": origin})
    assert unknown.status_code == 401 and unknown.json() == INVALID_WRITE_KEY
    assert unknown.headers["access-control-allow-origin"] == origin
    no_origin = batch(client, apps[0].write_key, [message("page", "a2", at("13:00"))])
    assert no_origin.headers["access-control-allow-origin"] == "*"
    assert day_series(client, key) == {DAY: 2}


def test_allowed_origins_per_app(client, shared_db, tenant):
    ws, apps, key = tenant
    listed = "https://shop.example"
    assert shared_db.store.update_app(ws.workspace_id, apps[0].app_key,
                                      allowed_origins=[listed, "https://www.shop.example"])
    wk = apps[0].write_key
    before = snapshot(shared_db.url, ws.workspace_id)
    others = ("https://evil.example", "http://shop.example", "https://shop.example.evil.example", "null")
    for origin in others:
        refused = batch(client, wk, [message("page", "a1", at("12:00"))], headers={"Origin": origin})
        assert refused.status_code == 403, (origin, refused.text)
        assert refused.json() == ORIGIN_REFUSED
        assert refused.headers["access-control-allow-origin"] == origin
    # the body key is checked the same way
    refused = post_json(client, "/v1/t", {"writeKey": wk, **message("track", "a1", at("12:00"))},
                        headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json() == ORIGIN_REFUSED
    assert snapshot(shared_db.url, ws.workspace_id) == before
    for n, origin in enumerate((listed, "https://www.shop.example", "https://SHOP.example/")):
        ok = batch(client, wk, [message("page", f"ok{n}", at("12:00"))], headers={"Origin": origin})
        assert ok.status_code == 200, (origin, ok.text)
    # a request without Origin does not come from a page: accepted
    assert batch(client, wk, [message("page", "server", at("12:00"))]).status_code == 200
    # the other app lists no origins: any is accepted
    other = batch(client, apps[1].write_key, [message("page", "b1", at("12:00"))],
                  headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    assert day_series(client, key, f"&app_id={apps[0].app_id}") == {DAY: 4}
    assert day_series(client, key) == {DAY: 5}


def test_the_app_message_limit_is_separate_from_the_api_limit(client, shared_db):
    ws, apps, key = shared_db.tenant(apps=2, rate_limit=6)
    assert shared_db.store.update_app(ws.workspace_id, apps[0].app_key, event_limit=5)
    wk = apps[0].write_key
    avoid_hour_boundary(60)
    first = batch(client, wk, [message("track", f"a{n}", at(f"1{n}:00")) for n in range(3)])
    assert first.status_code == 200, first.text
    before = snapshot(shared_db.url, ws.workspace_id)
    over = batch(client, wk, [message("track", f"b{n}", at(f"1{n}:30")) for n in range(3)])
    assert over.status_code == 429, over.text
    assert over.json() == OVER_MESSAGE_LIMIT
    retry_after = int(over.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    assert_no_rate_headers(over)
    assert snapshot(shared_db.url, ws.workspace_id) == before  # nothing of it recorded
    # what is left of the hour can still be used, to the last message
    assert batch(client, wk, [message("track", "c0", at("20:00")), message("track", "c1", at("21:00"))]
                 ).status_code == 200
    assert batch(client, wk, [message("track", "c2", at("22:00"))]).status_code == 429
    assert post_json(client, "/v1/t", message("track", "c3", at("22:00")), wk).status_code == 429
    # the other app has its own limit
    assert batch(client, apps[1].write_key, [message("track", "d0", at("12:00"))]).status_code == 200
    # and the API is not locked out: the workspace's limit counts API requests only
    for _ in range(5):
        response = client.get(f"/sessions/data_series?length=5&ending_at=2025-06-03&app_id={apps[0].app_id}",
                              headers=bearer(key))
        assert response.status_code == 200, response.text
        assert_rate_headers(response, 6)
        assert {p["time"]: p["sessions"] for p in response.json()["data"] if p["sessions"]} == {DAY: 5}
    assert client.get("/sessions/data_series?length=1", headers=bearer(key)).status_code == 200
    assert client.get("/sessions/data_series?length=1", headers=bearer(key)).status_code == 429
    # with the API over its limit, the tracking API still takes the other app's events
    assert batch(client, apps[1].write_key, [message("track", "d1", at("18:00"))]).status_code == 200
    state = snapshot(shared_db.url, ws.workspace_id)
    assert len(state.events) == 7
    assert sorted((row[0], row[2]) for row in state.message_counts) == [
        (apps[0].app_key, 5), (apps[1].app_key, 2)]


def test_derived_sessions_in_every_unit_zone_and_app(client, shared_db):
    ws, apps, key = shared_db.tenant(apps=2, time_zone="Asia/Kolkata")
    a, b = (app.write_key for app in apps)
    # person p1 in app 0: 19:50..20:30 UTC in three events 20 min apart: one session that
    # starts at 19:50 UTC = 01:20 IST on June 2 (the day after, in the workspace's zone)
    assert batch(client, a, [message("page", "p1", at("19:50")), message("track", "p1", at("20:30"))]
                 ).json() == SUCCESS
    assert batch(client, a, [message("screen", "p1", at("20:10"))]).json() == SUCCESS
    # person p2 in app 0: two sessions (45 minutes apart); then a late event between them
    # merges them into one
    assert batch(client, a, [message("track", "p2", at("10:00")), message("track", "p2", at("10:45"))]
                 ).json() == SUCCESS
    zone_day = "&time_zone=UTC"
    assert day_series(client, key, zone_day) == {DAY: 3}
    assert batch(client, a, [message("track", "p2", at("10:25"))]).json() == SUCCESS
    assert day_series(client, key, zone_day) == {DAY: 2}
    # a late event 20 minutes before p2's start moves the start (and its hour bucket)
    assert batch(client, a, [message("page", "p2", at("09:40"))]).json() == SUCCESS
    # person p3 in app 1, and the same anonymous id in app 1 is another person's sessions
    assert batch(client, b, [message("track", "p3", at("23:00")), message("track", "p1", at("20:00"))]
                 ).json() == SUCCESS
    # identify/group/alias are no activity: no session
    assert batch(client, b, [message("identify", "p9", at("12:00"), userId="u9"),
                             message("group", "p9", at("12:00"), groupId="g"),
                             message("alias", "p9", at("12:00"), userId="u9", previousId="p9")]
                 ).json() == SUCCESS
    derived = sorted((row[0], row[1], row[2]) for row in snapshot(shared_db.url, ws.workspace_id).derived)
    us = 1_000_000
    june1 = 1748736000
    assert derived == sorted([
        (apps[0].app_key, "p1", (june1 + 19 * 3600 + 50 * 60) * us),
        (apps[0].app_key, "p2", (june1 + 9 * 3600 + 40 * 60) * us),
        (apps[1].app_key, "p3", (june1 + 23 * 3600) * us),
        (apps[1].app_key, "p1", (june1 + 20 * 3600) * us),
    ])
    # days in the workspace's zone (IST): 09:40 UTC is June 1, the others June 2
    assert day_series(client, key) == {DAY: 1, "2025-06-02": 3}
    assert day_series(client, key, f"&app_id={apps[0].app_id}") == {DAY: 1, "2025-06-02": 1}
    assert day_series(client, key, f"&app_id={apps[1].app_id}") == {"2025-06-02": 2}
    assert day_series(client, key, zone_day) == {DAY: 4}
    # hours: local clock hours of IST, which start at :30 UTC
    hours = "length=48&unit=hour&ending_at=2025-06-02T12:00:00%2B05:30"
    assert nonzero(series(client, key, hours)) == {
        "2025-06-01T15:00:00+05:30": 1,  # p2, 09:40 UTC = 15:10 IST
        "2025-06-02T01:00:00+05:30": 2,  # p1 in app 0 (01:20 IST) and in app 1 (01:30 IST)
        "2025-06-02T04:00:00+05:30": 1,  # p3, 23:00 UTC = 04:30 IST
    }
    assert nonzero(series(client, key, hours + f"&app_id={apps[1].app_id}")) == {
        "2025-06-02T01:00:00+05:30": 1, "2025-06-02T04:00:00+05:30": 1}
    utc_hours = "length=24&unit=hour&ending_at=2025-06-01T23:59:00Z&time_zone=UTC"
    assert nonzero(series(client, key, utc_hours)) == {
        "2025-06-01T09:00:00+00:00": 1, "2025-06-01T19:00:00+00:00": 1,
        "2025-06-01T20:00:00+00:00": 1, "2025-06-01T23:00:00+00:00": 1}
    assert nonzero(series(client, key, utc_hours + f"&app_id={apps[0].app_id}")) == {
        "2025-06-01T09:00:00+00:00": 1, "2025-06-01T19:00:00+00:00": 1}
    # beside sessions recorded with POST /sessions/track
    recorded = client.post("/sessions/track", headers=bearer(key), json={"sessions": [{
        "session_id": uuid.uuid4().hex, "external_id": "u1", "app_id": apps[0].app_id,
        "started_at": "2025-06-01T09:50:00Z"}]})
    assert recorded.status_code == 201, recorded.text
    assert day_series(client, key) == {DAY: 2, "2025-06-02": 3}
    assert nonzero(series(client, key, utc_hours + f"&app_id={apps[0].app_id}")) == {
        "2025-06-01T09:00:00+00:00": 2, "2025-06-01T19:00:00+00:00": 1}


def test_write_keys_are_not_api_keys_and_api_keys_are_not_write_keys(client, shared_db, tenant):
    ws, apps, key = tenant
    as_bearer = client.post("/v1/batch", headers=bearer(apps[0].write_key),
                            json={"batch": [message("page", "a1", at("12:00"))]})
    assert as_bearer.status_code == 401 and as_bearer.json() == INVALID_WRITE_KEY
    api_key_as_write_key = batch(client, key, [message("page", "a1", at("12:00"))])
    assert api_key_as_write_key.status_code == 401 and api_key_as_write_key.json() == INVALID_WRITE_KEY
    write_key_on_api = client.get("/sessions/data_series?length=1", headers=basic(apps[0].write_key))
    assert write_key_on_api.status_code == 401
    assert write_key_on_api.json() == {"message": "Invalid API key"}
    write_key_as_bearer = client.get("/sessions/data_series?length=1", headers=bearer(apps[0].write_key))
    assert write_key_as_bearer.status_code == 401
    assert snapshot(shared_db.url, ws.workspace_id).events == ()


def test_a_rotated_write_key_stops_at_once(client, shared_db, tenant):
    ws, apps, key = tenant
    from sessiontally import keys

    old = apps[0].write_key
    assert batch(client, old, [message("page", "a1", at("12:00"))]).status_code == 200
    new = keys.generate_write_key(ws.workspace_id)
    assert shared_db.store.set_write_key(ws.workspace_id, apps[0].app_key, new)
    for _ in range(3):  # no cached admission survives the rotation
        stale = batch(client, old, [message("page", "a2", at("13:00"))])
        assert stale.status_code == 401 and stale.json() == INVALID_WRITE_KEY
    assert batch(client, new, [message("page", "a3", at("14:00"))]).status_code == 200
    assert day_series(client, key) == {DAY: 2}
    assert sorted(row[4] for row in snapshot(shared_db.url, ws.workspace_id).events) == ["a1", "a3"]


def test_time_of_receipt_when_a_message_has_no_timestamp(client, shared_db, tenant):
    ws, apps, key = tenant
    before = time.time()
    body = {"type": "track", "anonymousId": "a1", "event": "Played", "messageId": "m1"}
    assert batch(client, apps[0].write_key, [body]).json() == SUCCESS
    after = time.time()
    original = {"type": "track", "anonymousId": "a2", "event": "Played", "messageId": "m2",
                "originalTimestamp": "2025-06-01T12:00:00.250+02:00"}
    assert batch(client, apps[0].write_key, [original]).json() == SUCCESS
    events = {row[1]: row[6] for row in snapshot(shared_db.url, ws.workspace_id).events}
    assert before - 1 <= events["m1"] / 1e6 <= after + 1
    assert events["m2"] == (1748736000 + 10 * 3600) * 1_000_000 + 250_000
