"""Users and segments over HTTP: POST /users/track, GET /segments/list and /segments/details,
and ``segment_id`` on /sessions/data_series (tracked, untracked, unknown, foreign; not
retroactive). Segments are created and tracked through ``sessiontally.admin`` (the CLI's
functions) on the server's own database, as an operator would."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import orjson
import pytest
from e2e_support import assert_rate_headers, bearer, iso, json_message, series, session, track

from sessiontally import admin

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
DAY = 86_400
US = '{"attribute": "country", "op": "eq", "value": "US"}'
UNKNOWN = "'segment_id' is not a segment of this workspace"
UNTRACKED = "'segment_id' names a segment whose analytics tracking is off"
PERMISSIONS = ("sessions.data_series", "sessions.track", "users.track", "segments.list", "segments.details")


@pytest.fixture
def tenant(shared_db):
    return shared_db.tenant()


def users_track(client, key, body):
    return client.post("/users/track", json=body, headers=bearer(key))


def get(client, key, path, query=""):
    return client.get(f"{path}?{query}" if query else path, headers=bearer(key))


def segment(shared_db, ws, name="seg", filter_text=US, **kwargs):
    return admin.create_segment(shared_db.store, ws, name, filter_text, **kwargs)


def set_tracking(shared_db, ws, segment_id, on):
    admin.set_segment_analytics(shared_db.store, ws, segment_id, on)


def counts(client, key, query):
    response = series(client, key, query)
    assert response.status_code == 200, response.text
    return [point["sessions"] for point in response.json()["data"]]


# ----------------------------------------------------------------------- /users/track


def test_users_track_201(client, shared_db, tenant):
    ws, _, key = tenant
    response = users_track(client, key, {"attributes": [
        {"external_id": "u1", "country": "US", "plan": "pro", "age": 31,
         "signup": {"$time": "2025-01-01T00:00:00Z"}, "tags": ["a"], "vip": True},
        {"external_id": "u2", "country": "FR"},
    ]})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "success", "attributes_processed": 2}
    assert_rate_headers(response)
    stored = orjson.loads(shared_db.store.user_attributes(ws.workspace_id, "u1"))
    assert stored["country"] == {"t": "s", "v": "US"} and stored["age"] == {"t": "n", "v": 31}
    # null removes, other keys are kept
    assert users_track(client, key, {"attributes": [{"external_id": "u1", "plan": None}]}).status_code == 201
    stored = orjson.loads(shared_db.store.user_attributes(ws.workspace_id, "u1"))
    assert "plan" not in stored and stored["country"] == {"t": "s", "v": "US"}


def test_users_track_partial_errors_and_unsupported_parts(client, shared_db, tenant):
    ws, _, key = tenant
    response = users_track(client, key, {
        "attributes": [
            {"external_id": "ok", "country": "US"},
            {"country": "US"},
            {"external_id": "bad", "age": {"inc": 1}},
            {"external_id": "alias", "user_alias": {"alias_name": "x", "alias_label": "y"}},
        ],
        "events": [{"external_id": "ok", "name": "played", "time": "2025-06-01T00:00:00Z"}],
        "purchases": [{"external_id": "ok", "product_id": "p"}, {"external_id": "ok"}],
        "app_id": "ignored",
    })
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "success" and body["attributes_processed"] == 1
    assert [(e["index"], e.get("part")) for e in body["errors"]] == [
        (1, None), (2, None), (3, None), (0, "events"), (0, "purchases"), (1, "purchases"),
    ]
    for error in body["errors"]:
        assert set(error) <= {"index", "part", "message"} and error["message"]
    assert body["errors"][0]["message"] == "'external_id' is required"
    assert "user_alias" in body["errors"][2]["message"]
    assert "'events' are not supported" in body["errors"][3]["message"]
    assert shared_db.store.user_attributes(ws.workspace_id, "ok") is not None
    assert shared_db.store.user_attributes(ws.workspace_id, "bad") is None


def test_users_track_nothing_valid_is_400_with_errors(client, tenant):
    _, _, key = tenant
    response = users_track(client, key, {"attributes": [{"external_id": ""}],
                                         "events": [{"name": "x"}]})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == "no valid attributes objects in the request"
    assert body["errors"] == [
        {"index": 0, "message": "'external_id' must be 1 to 997 characters"},
        {"index": 0, "part": "events",
         "message": "'events' are not supported by this service; only 'attributes' are processed"},
    ]
    assert_rate_headers(response)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[1,", b"{'attributes': []}", b'{"attributes": [{"external_id": NaN}]}', b"\xff",
     b"[]", b'"x"', b"{}", b'{"attributes": {}}', b'{"attributes": []}', b'{"attributes": "u1"}',
     orjson.dumps({"attributes": [{"external_id": f"u{i}"} for i in range(76)]})],
)
def test_users_track_bad_body_is_400(client, tenant, body):
    _, _, key = tenant
    response = client.post("/users/track", content=body,
                           headers={**bearer(key), "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    json_message(response)
    assert_rate_headers(response)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_users_track_wrong_content_type_is_415(client, tenant, content_type):
    _, _, key = tenant
    headers = bearer(key)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post("/users/track", content=b'{"attributes": [{"external_id": "u"}]}',
                           headers=headers)
    assert response.status_code == 415, response.text
    assert json_message(response) == "Content-Type must be application/json"


def test_users_track_body_over_16_mib_is_413(shared_server, tenant):
    _, _, key = tenant
    body = b'{"attributes": [{"external_id": "u", "x": "' + b"y" * (16 * MIB) + b'"}]}'
    parts = urlsplit(shared_server.url)
    head = (f"POST /users/track HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for begin in range(0, len(body), 256 * 1024):
                sock.sendall(body[begin : begin + 256 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.split()[1] == b"413", data[:300]
    payload = rest.partition(b"\r\n\r\n")[2]
    assert "message" in orjson.loads(payload)


# --------------------------------------------------------------------- /segments/list


def test_segments_list_shape_pages_and_order(client, shared_db, tenant):
    ws, _, key = tenant
    made = [segment(shared_db, ws, f"s{i}", tags=[f"t{i}"], analytics=i == 1) for i in range(3)]
    segment(shared_db, shared_db.workspace(), "another workspace's")
    response = get(client, key, "/segments/list")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_rate_headers(response)
    assert response.json() == {
        "segments": [
            {"id": s.segment_id, "name": s.name, "analytics_tracking_enabled": s.analytics_enabled,
             "tags": list(s.tags)}
            for s in made
        ],
        "message": "success",
    }
    assert response.json()["segments"][1]["analytics_tracking_enabled"] is True
    desc = get(client, key, "/segments/list", "page=0&sort_direction=desc").json()
    assert [s["name"] for s in desc["segments"]] == ["s2", "s1", "s0"]
    assert get(client, key, "/segments/list", "page=1").json() == {"segments": [], "message": "success"}
    assert get(client, key, "/segments/list", "page=0&foo=bar").status_code == 200


def test_segments_list_pages_of_100(client, shared_db, tenant):
    ws, _, key = tenant
    names = [segment(shared_db, ws, f"s{i:03d}").name for i in range(150)]
    first = get(client, key, "/segments/list", "page=0").json()["segments"]
    second = get(client, key, "/segments/list", "page=1").json()["segments"]
    assert [s["name"] for s in first] == names[:100]
    assert [s["name"] for s in second] == names[100:]
    last = get(client, key, "/segments/list", "sort_direction=desc&page=1").json()["segments"]
    assert [s["name"] for s in last] == names[::-1][100:]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=-1", "'page' must be a non-negative integer"),
        ("page=x", "'page' must be a non-negative integer"),
        ("page=", "'page' must be a non-negative integer"),
        ("page=1e3", "'page' must be a non-negative integer"),
        ("page=0&page=1", "'page' is given more than once"),
        ("page=0&page=0", "'page' is given more than once"),
        ("sort_direction=up", "'sort_direction' must be 'asc' or 'desc'"),
        ("sort_direction=", "'sort_direction' must be 'asc' or 'desc'"),
        ("sort_direction=asc&sort_direction=desc", "'sort_direction' is given more than once"),
    ],
)
def test_segments_list_bad_parameters_are_400(client, tenant, query, message):
    _, _, key = tenant
    response = get(client, key, "/segments/list", query)
    assert response.status_code == 400, response.text
    assert json_message(response) == message
    assert_rate_headers(response)


# ------------------------------------------------------------------ /segments/details


def test_segments_details_shape(client, shared_db, tenant):
    ws, _, key = tenant
    made = segment(
        shared_db, ws, "Pro Americans",
        '{"all": [{"attribute": "country", "op": "eq", "value": "US"},'
        ' {"attribute": "plan", "op": "in", "value": ["pro", "team"]}]}',
        description="paying, in the US", tags=["b2b", "us"],
    )
    response = get(client, key, "/segments/details", f"segment_id={made.segment_id}")
    assert response.status_code == 200, response.text
    assert_rate_headers(response)
    body = response.json()
    assert list(body) == ["created_at", "updated_at", "name", "description", "text_description", "tags",
                          "message"]
    assert body["name"] == "Pro Americans"
    assert body["description"] == "paying, in the US"
    assert body["text_description"] == "country equals 'US' and (plan is one of 'pro', 'team')"
    assert body["tags"] == ["b2b", "us"]
    assert body["message"] == "success"
    for stamp in (body["created_at"], body["updated_at"]):
        assert stamp.endswith("Z")
        moment = datetime.fromisoformat(stamp)
        assert moment.tzinfo is not None
        assert abs(moment - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "'segment_id' is required"),
        ("segment_id=", "'segment_id' is required"),
        ("segment_id=nope", UNKNOWN),
        (f"segment_id={uuid.uuid4()}", UNKNOWN),
        ("segment_id=a&segment_id=b", "'segment_id' is given more than once"),
    ],
)
def test_segments_details_bad_parameters_are_400(client, tenant, query, message):
    _, _, key = tenant
    response = get(client, key, "/segments/details", query)
    assert response.status_code == 400, response.text
    assert json_message(response) == message


def test_segments_details_of_another_workspace_is_unknown(client, shared_db, tenant):
    _, _, key = tenant
    other = shared_db.workspace()
    foreign = segment(shared_db, other, "theirs", analytics=True)
    response = get(client, key, "/segments/details", f"segment_id={foreign.segment_id}")
    assert response.status_code == 400
    assert json_message(response) == UNKNOWN


# ------------------------------------------------------------------------ permissions


@pytest.mark.parametrize(
    ("permission", "method", "path", "body"),
    [
        ("users.track", "POST", "/users/track", {"attributes": [{"external_id": "u"}]}),
        ("segments.list", "GET", "/segments/list", None),
        ("segments.details", "GET", "/segments/details", None),
    ],
)
def test_403_without_the_permission(client, shared_db, tenant, permission, method, path, body):
    ws, _, _ = tenant
    key = shared_db.key(ws, [p for p in PERMISSIONS if p != permission])
    made = segment(shared_db, ws, "s")
    query = f"?segment_id={made.segment_id}" if path == "/segments/details" else ""
    response = client.request(method, path + query, json=body, headers=bearer(key))
    assert response.status_code == 403, response.text
    assert response.json() == {
        "message": f"Access Denied: this API key does not have the {permission} permission"
    }
    assert_rate_headers(response)
    if body is not None:
        assert shared_db.store.user_attributes(ws.workspace_id, "u") is None
    # The permission alone is enough.
    only = shared_db.key(ws, [permission])
    assert client.request(method, path + query, json=body, headers=bearer(only)).status_code in (200, 201)


# ---------------------------------------------------------- segment_id on data_series


def test_data_series_segment_id_unknown_untracked_foreign(client, shared_db, tenant):
    ws, _, key = tenant
    untracked = segment(shared_db, ws, "untracked")
    foreign = segment(shared_db, shared_db.workspace(), "foreign", analytics=True)

    def message(segment_id):
        response = series(client, key, f"length=3&segment_id={segment_id}")
        assert response.status_code == 400, response.text
        assert_rate_headers(response)
        return json_message(response)

    assert message("nope") == UNKNOWN
    assert message(uuid.uuid4()) == UNKNOWN
    assert message(untracked.segment_id) == UNTRACKED
    assert message(foreign.segment_id) == UNKNOWN  # the same answer as for an unknown id
    assert UNTRACKED != UNKNOWN
    response = series(client, key, f"length=3&segment_id={untracked.segment_id}&segment_id=x")
    assert response.status_code == 400
    set_tracking(shared_db, ws, untracked.segment_id, True)
    assert counts(client, key, f"length=3&segment_id={untracked.segment_id}") == [0, 0, 0]


def test_tracked_segment_counts_at_recording_time_and_is_not_retroactive(client, shared_db, tenant):
    ws, apps, key = tenant
    app = apps[0].app_id
    us = segment(shared_db, ws, "US")  # tracking off for now
    now = time.time()
    day3, day2, day1 = now - 3 * DAY, now - 2 * DAY, now - 1 * DAY
    query = f"length=5&unit=day&segment_id={us.segment_id}"

    def record(session_id, user, started):
        response = track(client, key, [session(app, started, session_id, external_id=user)])
        assert response.status_code == 201, response.text
        return response.json()

    def attributes(user, **values):
        response = users_track(client, key, {"attributes": [{"external_id": user, **values}]})
        assert response.status_code == 201, response.text

    attributes("alice", country="US")
    record("before-tracking", "alice", day3)  # recorded while tracking is off: never counts
    set_tracking(shared_db, ws, us.segment_id, True)
    assert counts(client, key, query) == [0, 0, 0, 0, 0]

    record("alice-us", "alice", day3)  # same day as the first, recorded after tracking went on
    record("bob-none", "bob", day3)  # no attributes yet: does not match
    assert counts(client, key, query) == [0, 1, 0, 0, 0]

    # A later change of attributes does not move what was counted.
    attributes("alice", country="FR")
    attributes("bob", country="US")
    assert counts(client, key, query) == [0, 1, 0, 0, 0]
    record("alice-fr", "alice", day2)  # no longer matches
    record("bob-us", "bob", day2)
    record("bob-us-late", "bob", day3)  # started earlier, recorded now: counts on its own day
    assert counts(client, key, query) == [0, 2, 1, 0, 0]

    # Re-sent sessions are duplicates, even if their user matches now.
    resent = track(client, key, [session(app, day3, "before-tracking", external_id="bob"),
                                 session(app, day3, "bob-none", external_id="bob")])
    assert resent.json() == {"message": "success", "sessions_processed": 0, "duplicates": 2}
    assert counts(client, key, query) == [0, 2, 1, 0, 0]

    # Off: the series is refused and nothing counts; on again: the old counts are kept,
    # the sessions recorded meanwhile are not added.
    set_tracking(shared_db, ws, us.segment_id, False)
    record("while-off", "bob", day1)
    assert json_message(series(client, key, query)) == UNTRACKED
    set_tracking(shared_db, ws, us.segment_id, True)
    assert counts(client, key, query) == [0, 2, 1, 0, 0]
    attributes("carol", country="US")
    track(client, key, [session(app, day1, "carol-1", external_id="carol"),
                        session(app, now, "carol-2", external_id="carol",
                                started_at=iso(now, offset_minutes=-300))])
    assert counts(client, key, query) == [0, 2, 1, 1, 1]
    # All users: every distinct session, whatever the segments.
    assert counts(client, key, "length=5&unit=day") == [0, 4, 2, 2, 1]
    # Per app and per segment together.
    assert counts(client, key, query + f"&app_id={app}") == [0, 2, 1, 1, 1]


def test_openapi_describes_the_users_and_segments_endpoints(client):
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/users/track"]) == {"post"}
    assert set(paths["/segments/list"]) == {"get"}
    assert set(paths["/segments/details"]) == {"get"}
    for path, code in (("/users/track", "201"), ("/segments/list", "200"), ("/segments/details", "200")):
        operation = next(iter(paths[path].values()))
        assert {code, "400", "401", "403", "429"} <= set(operation["responses"]), path
        for status, response in operation["responses"].items():
            if status[0] in "45" and not (path == "/users/track" and status == "400"):
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Message"}, (path, status)
