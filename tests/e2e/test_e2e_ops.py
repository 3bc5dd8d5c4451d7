"""Operations over HTTP: health, OpenAPI, docs, 404/405, and the access log on stderr."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from db_support import in_threads
from e2e_support import bearer, json_message, session, track

pytestmark = pytest.mark.e2e


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "X-RateLimit-Limit" not in response.headers


def test_openapi_document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = json.loads(response.text)
    assert document["openapi"].startswith("3.")
    assert {"/sessions/data_series", "/sessions/track", "/healthz"} <= set(document["paths"])
    assert "get" in document["paths"]["/sessions/data_series"]
    assert "post" in document["paths"]["/sessions/track"]


def test_docs_page(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower() and "/openapi.json" in response.text


@pytest.mark.parametrize("path", ["/nope", "/sessions", "/sessions/data_series/x", "/users/nope",
                                  "/dashboard", "/dashboard/api/nope", "/dashboard/static/nope.js"])
def test_unknown_path_is_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    json_message(response)


def test_the_root_is_the_dashboard(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/sessions/data_series", "GET"),
        ("DELETE", "/sessions/data_series", "GET"),
        ("GET", "/sessions/track", "POST"),
        ("PUT", "/sessions/track", "POST"),
        ("POST", "/healthz", "GET"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_wrong_method_is_405_json(client, method, path, allowed):
    response = client.request(method, path)
    assert response.status_code == 405
    json_message(response)
    assert allowed in response.headers.get("allow", ""), dict(response.headers)


def _log_records(server, marker: str, expected: int, timeout: float = 5.0) -> list[dict]:
    """The access-log records whose query carries ``marker``, once ``expected`` of them
    are written (the line is written just after the response is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        records = []
        for line in server.stderr().splitlines():
            if line.startswith("{"):
                record = json.loads(line)  # every JSON-looking line is a whole JSON object
                if marker in record.get("query", ""):
                    records.append(record)
        if len(records) >= expected or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_one_json_log_line_per_request_without_keys(shared_server, shared_db):
    ws, apps, key = shared_db.tenant()
    revoked = shared_db.key(ws)
    weak = shared_db.key(ws, permissions=["users.track"])
    shared_db.revoke(ws, revoked)
    marker = "m" + uuid.uuid4().hex
    with shared_server.client() as c:
        requests = [
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}", headers=bearer(key)),
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}&api_key={key}"),
            lambda: c.get(f"/sessions/data_series?marker={marker}&api_key={key}&length=0"),
            lambda: c.get(f"/sessions/data_series?marker={marker}&api_%6Bey={key}&length=2"),  # encoded name
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}&api_key={revoked}"),
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}", headers=bearer(revoked)),
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}&api_key={weak}"),
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}&api_key={key}&api_key={key}"),
            lambda: c.get(f"/nope?marker={marker}&api_key={key}"),
            lambda: c.post(f"/sessions/data_series?marker={marker}&api_key={key}"),
            lambda: c.get(f"/healthz?marker={marker}&api_key={key}"),
            lambda: c.post(f"/sessions/track?marker={marker}&api_key={key}",
                           json={"sessions": [session(apps[0].app_id, time.time() - 5)]}),
            lambda: track(c, key, [session(apps[0].app_id, time.time() - 5)]),  # no marker: not counted
            lambda: c.post(f"/sessions/track?marker={marker}", content=b"{", headers=bearer(key)),
            lambda: c.get(f"/sessions/data_series?length=2&marker={marker}&x={'y' * 9000}&api_key={key}"),
        ]
        statuses = [send().status_code for send in requests]
    assert statuses == [200, 200, 400, 200, 401, 401, 403, 200, 404, 405, 200, 201, 201, 415, 414], statuses
    records = _log_records(shared_server, marker, len(requests) - 1)
    assert len(records) == len(requests) - 1, records
    logged_statuses = sorted(r["status"] for r in records)
    assert logged_statuses == sorted(s for i, s in enumerate(statuses) if i != 12)
    for record in records:
        assert {"ts", "method", "path", "status", "duration_ms"} <= set(record)
    for record in records:
        authenticated = record["path"].startswith("/sessions/") and record["status"] not in (401, 405, 414)
        assert record["workspace_id"] == (ws.workspace_id if authenticated else None), record
        assert "redacted" in record["query"] or "api_key" not in record["query"], record
    everything = shared_server.all_stderr()
    for secret in (key, revoked, weak):
        assert secret not in everything
        assert secret[3:] not in everything  # not even without its prefix


def test_log_lines_stay_whole_with_two_workers(multi_server, shared_db):
    _, _, key = shared_db.tenant()
    marker = "w" + uuid.uuid4().hex

    def worker(n: int) -> None:
        with multi_server.client() as c:
            for i in range(10):
                query = f"length=3&unit=hour&marker={marker}&n={n}-{i}&pad={'p' * 200}"
                assert c.get(f"/sessions/data_series?{query}&api_key={key}").status_code == 200

    in_threads(8, worker)
    records = _log_records(multi_server, marker, 80)
    assert len(records) == 80
    assert len({r["query"] for r in records}) == 80
    assert key not in multi_server.all_stderr()
