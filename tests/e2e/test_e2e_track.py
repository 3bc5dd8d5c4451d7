"""POST /sessions/track over HTTP: shapes, partial acceptance, duplicates, body limits."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import orjson
import pytest
from db_support import in_threads
from e2e_support import assert_rate_headers, bearer, iso, json_message, series, session, track

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture
def tenant(shared_db):
    return shared_db.tenant(apps=2)


def post_raw(client, key, content: bytes, content_type: str | None = "application/json"):
    headers = bearer(key)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post("/sessions/track", content=content, headers=headers)


def total_sessions(client, key, query="length=100&unit=day") -> int:
    response = series(client, key, query)
    assert response.status_code == 200, response.text
    return sum(point["sessions"] for point in response.json()["data"])


def test_created_body_shape(client, tenant):
    _, apps, key = tenant
    now = time.time()
    items = [
        session(apps[0].app_id, now - 3600),
        session(apps[1].app_id, now - 60, ended_at=iso(now - 30)),
        session(apps[0].app_id, now - 7200, started_at=iso(now - 7200, offset_minutes=330)),
        session(apps[0].app_id, now - 10, ended_at=None),
    ]
    response = track(client, key, items)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "success", "sessions_processed": 4, "duplicates": 0}
    assert_rate_headers(response)
    assert total_sessions(client, key) == 4
    assert total_sessions(client, key, f"length=100&app_id={apps[1].app_id}") == 1


def test_partial_acceptance_reports_each_rejected_item(client, shared_db, tenant):
    _, apps, key = tenant
    _, foreign_apps, _ = shared_db.tenant()
    now = time.time()
    good = lambda **kw: {**session(apps[0].app_id, now - 100), **kw}  # noqa: E731
    items = [
        good(),  # 0 ok
        {k: v for k, v in good().items() if k != "session_id"},  # 1
        good(session_id=""),  # 2
        good(session_id="s" * 129),  # 3
        good(session_id=12345),  # 4
        good(external_id="e" * 998),  # 5
        {k: v for k, v in good().items() if k != "external_id"},  # 6
        good(app_id=str(uuid.uuid4())),  # 7
        good(app_id=foreign_apps[0].app_id),  # 8
        good(started_at="2025-06-01T12:00:00"),  # 9: no offset
        good(started_at="1969-12-31T23:59:59Z"),  # 10
        good(started_at=iso(now + 25 * 3600)),  # 11
        good(ended_at=iso(now - 200)),  # 12: before started_at
        "not an object",  # 13
        good(started_at="garbage"),  # 14
        good(started_at=None),  # 15
        good(session_id="s" * 128, external_id="e" * 997),  # 16 ok (limits are inclusive)
        good(started_at=iso(now + 23 * 3600)),  # 17 ok
        good(started_at="1970-01-01T00:00:00Z"),  # 18 ok
        None,  # 19
        good(ended_at="yesterday"),  # 20
    ]
    expected_field = {
        1: "session_id", 2: "session_id", 3: "session_id", 4: "session_id", 5: "external_id",
        6: "external_id", 7: "app_id", 8: "app_id", 9: "started_at", 10: "started_at",
        11: "started_at", 12: "ended_at", 14: "started_at", 15: "started_at", 20: "ended_at",
    }
    response = track(client, key, items)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"message", "sessions_processed", "duplicates", "errors"}
    assert body["message"] == "success"
    assert body["sessions_processed"] == 4 and body["duplicates"] == 0
    errors = body["errors"]
    assert [e["index"] for e in errors] == sorted(set(range(21)) - {0, 16, 17, 18})
    for error in errors:
        assert set(error) == {"index", "message"} and error["message"]
        field = expected_field.get(error["index"])
        if field is not None:
            assert f"'{field}'" in error["message"], error
    # the foreign app's id is refused with the same words as an unknown one
    by_index = {e["index"]: e["message"] for e in errors}
    assert by_index[7] == by_index[8]
    later = iso(now + 2 * 86400).replace("+", "%2B")
    assert total_sessions(client, key, f"length=100&unit=day&ending_at={later}") == 3  # 18 is in 1970
    assert shared_db.store.count_raw_sessions(apps[0].workspace_id) == 4


def test_nothing_valid_is_400_with_every_error(client, tenant):
    _, apps, key = tenant
    items = [
        session(apps[0].app_id, time.time(), session_id=""),
        {"session_id": "x"},
        session(str(uuid.uuid4()), time.time()),
        42,
    ]
    response = track(client, key, items)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"message", "errors"}
    assert [e["index"] for e in body["errors"]] == [0, 1, 2, 3]
    assert all(set(e) == {"index", "message"} for e in body["errors"])
    assert_rate_headers(response)
    assert total_sessions(client, key) == 0


def test_duplicates_count_once(client, tenant):
    _, apps, key = tenant
    now = time.time()
    items = [session(apps[0].app_id, now - i * 600) for i in range(50)]
    first = track(client, key, items)
    assert first.json() == {"message": "success", "sessions_processed": 50, "duplicates": 0}
    second = track(client, key, items)
    assert second.status_code == 201
    assert second.json() == {"message": "success", "sessions_processed": 0, "duplicates": 50}
    # first write wins, whatever the other fields of the duplicate
    moved = [dict(item, started_at=iso(now - 40 * 86400), app_id=apps[1].app_id) for item in items[:10]]
    third = track(client, key, moved + [session(apps[0].app_id, now - 5)])
    assert third.json() == {"message": "success", "sessions_processed": 1, "duplicates": 10}
    # duplicates inside one batch
    one = session(apps[0].app_id, now - 7)
    fourth = track(client, key, [one, one, dict(one, external_id="other")])
    assert fourth.json() == {"message": "success", "sessions_processed": 1, "duplicates": 2}
    assert total_sessions(client, key) == 52
    assert total_sessions(client, key, f"length=100&app_id={apps[1].app_id}") == 0


def test_session_ids_are_scoped_to_the_workspace(client, shared_db):
    _, apps_a, key_a = shared_db.tenant()
    _, apps_b, key_b = shared_db.tenant()
    sid = "shared-id-" + uuid.uuid4().hex
    now = time.time()
    assert track(client, key_a, [session(apps_a[0].app_id, now, sid)]).json()["sessions_processed"] == 1
    assert track(client, key_b, [session(apps_b[0].app_id, now, sid)]).json()["sessions_processed"] == 1
    assert total_sessions(client, key_a) == total_sessions(client, key_b) == 1


@pytest.mark.parametrize("server_kind", ["shared_server", "multi_server"])
def test_same_batch_from_8_threads_counts_once(request, shared_db, server_kind):
    server = request.getfixturevalue(server_kind)
    _, apps, key = shared_db.tenant()
    now = time.time()
    items = [session(apps[0].app_id, now - i * 97) for i in range(300)]
    barrier = threading.Barrier(8)
    results: list[dict] = []

    def worker(_: int) -> None:
        with server.client() as c:
            barrier.wait()
            response = track(c, key, items)
            assert response.status_code == 201, response.text
            results.append(response.json())

    in_threads(8, worker)
    assert sum(r["sessions_processed"] for r in results) == 300
    assert sum(r["duplicates"] for r in results) == 7 * 300
    # each batch is all-or-nothing against the others
    assert sorted(r["sessions_processed"] for r in results) == [0] * 7 + [300]
    with server.client() as c:
        assert total_sessions(c, key) == 300
    assert shared_db.store.rollup_total(apps[0].workspace_id, 0, 0) == 300
    assert shared_db.store.count_raw_sessions(apps[0].workspace_id) == 300


# ------------------------------------------------------------------- bad bodies


def test_body_over_16_mib_is_413(shared_server, shared_db):
    _, apps, key = shared_db.tenant()
    filler = {"session_id": "x", "external_id": "y" * 900, "app_id": apps[0].app_id,
              "started_at": "2025-06-01T00:00:00Z"}
    one = orjson.dumps(filler)
    count = 16 * MIB // len(one) + 10
    body = b'{"sessions": [' + b",".join([one] * count) + b"]}"
    assert len(body) > 16 * MIB
    # With Content-Length (refused before the body is read) ...
    status, text = raw_post(shared_server.url, key, body, chunked=False)
    assert status == 413, text
    assert "message" in orjson.loads(text)
    # ... and chunked, without a declared length (refused once 16 MiB have arrived).
    status, text = raw_post(shared_server.url, key, body, chunked=True)
    assert status == 413, text
    assert "message" in orjson.loads(text)
    # Exactly 16 MiB is not too large (it is refused for what it says, not for its size).
    exact = body[: 16 * MIB]
    status, text = raw_post(shared_server.url, key, exact, chunked=False)
    assert status == 400, text


def raw_post(url: str, key: str, body: bytes, chunked: bool) -> tuple[int, str]:
    """POST with a plain socket so that an early answer can be read even while the server
    stops reading the (large) body."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    head = ["POST /sessions/track HTTP/1.1", f"Host: {host}:{port}", f"Authorization: Bearer {key}",
            "Content-Type: application/json", "Connection: close"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        step = 256 * 1024
        try:
            for begin in range(0, len(body), step):
                piece = body[begin : begin + step]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; read its answer below
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    head_text, _, payload = data.partition(b"\r\n\r\n")
    assert head_text, "no response"
    status = int(head_text.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head_text.lower():
        payload = dechunk(payload)
    return status, payload.decode()


def dechunk(payload: bytes) -> bytes:
    out = b""
    while payload:
        size_line, _, rest = payload.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        payload = rest[size + 2 :]
    return out


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data", "application/jsonp"])
def test_wrong_content_type_is_415(client, tenant, content_type):
    _, apps, key = tenant
    body = orjson.dumps({"sessions": [session(apps[0].app_id, time.time())]})
    response = post_raw(client, key, body, content_type)
    assert response.status_code == 415, response.text
    json_message(response)
    assert_rate_headers(response)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON",
                                          "application/vnd.api+json"])
def test_json_content_types_are_accepted(client, tenant, content_type):
    _, apps, key = tenant
    body = orjson.dumps({"sessions": [session(apps[0].app_id, time.time())]})
    assert post_raw(client, key, body, content_type).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"sessions": [',
        b"{'sessions': []}",
        b'{"sessions": [{"session_id": NaN}]}',
        b'{"sessions": [{"session_id": "a", "started_at": Infinity}]}',
        b'{"sessions": [], }',
        b"\xff\xfe{}",
        b'{"sessions": [{"session_id": "\xff"}]}',
        b"[1, 2",
    ],
)
def test_invalid_json_is_400(client, tenant, body):
    _, _, key = tenant
    response = post_raw(client, key, body)
    assert response.status_code == 400, response.text
    json_message(response)
    assert_rate_headers(response)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "sessions",
        None,
        1,
        {},
        {"session": []},
        {"sessions": None},
        {"sessions": {}},
        {"sessions": "abc"},
        {"sessions": []},
    ],
)
def test_wrong_shape_is_400(client, tenant, body):
    _, _, key = tenant
    response = post_raw(client, key, orjson.dumps(body))
    assert response.status_code == 400, response.text
    json_message(response)


def test_10001_items_is_400_and_10000_is_fine(client, tenant):
    _, apps, key = tenant
    now = time.time()
    items = [session(apps[0].app_id, now - i) for i in range(10_001)]
    response = track(client, key, items)
    assert response.status_code == 400, response.text
    assert "'sessions'" in json_message(response)
    assert total_sessions(client, key) == 0
    response = track(client, key, items[:10_000])
    assert response.status_code == 201
    assert response.json()["sessions_processed"] == 10_000
    assert total_sessions(client, key, "length=2&unit=day") == 10_000
