"""Suite 5: the isolation matrix, on both engines.

Every endpoint of the contract x every way of presenting a credential that must not work
(or, for the legacy ``api_key`` parameter, must work exactly like the header):

    no key, malformed header, revoked key, key of another workspace, key without the
    permission, key from a non-allowlisted address (also with a spoofed X-Forwarded-For),
    key in the api_key parameter

Each cell checks the contract's status and exact body, and that no identifier or name of
the other workspace appears anywhere in the answer (its app ids, segment ids, segment
names, tags, users). A request that names the other workspace's resources with a valid key
gets exactly the answer an unknown id gets. At the end, the server's captured log is
searched for every key and every key's secret part: none may appear.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hostile_support import INVALID_KEY, MISSING_KEY, RATE_HEADERS, bearer, iso, tally
from tracking_http_support import batch, message

from sessiontally import admin

pytestmark = pytest.mark.e2e

KPIS = ("dau", "mau", "new_users", "uninstalls")
ENDPOINTS = {
    "GET /sessions/data_series": "sessions.data_series",
    "POST /sessions/track": "sessions.track",
    "POST /users/track": "users.track",
    "GET /segments/list": "segments.list",
    "GET /segments/details": "segments.details",
    **{f"GET /kpi/{name}/data_series": f"kpi.{name}.data_series" for name in KPIS},
    "GET /events/list": "events.list",
    "GET /events/data_series": "events.data_series",
}
ALL = tuple(ENDPOINTS.values())
CONDITIONS = (
    "no key",
    "malformed header",
    "revoked key",
    "another workspace's key",
    "key without the permission",
    "non-allowlisted address",
    "non-allowlisted address, spoofed X-Forwarded-For",
    "api_key parameter",
    "api_key parameter with another workspace's resources",
    "bearer with another workspace's resources",
)


@dataclass
class Tenant:
    name: str
    ws: Any
    apps: list[Any]
    segments: list[Any]
    key: str
    revoked: str
    fenced: str  # allowlisted to an address the tests never come from
    without: dict[str, str]  # permission -> a key with every permission but that one
    users: list[str]
    events: list[str]  # custom event names only this workspace records

    def secrets(self) -> list[str]:
        return [self.key, self.revoked, self.fenced, *self.without.values()]

    def markers(self) -> list[str]:
        """Strings that only this workspace's data contains."""
        out = [a.app_id for a in self.apps] + [s.segment_id for s in self.segments]
        out += [s.name for s in self.segments] + [t for s in self.segments for t in s.tags] + self.users
        return out + self.events


def _tenant(db, label: str) -> Tenant:
    ws = db.workspace(name=f"{label}-{uuid.uuid4().hex[:8]}")
    apps = [db.app(ws, f"{label}-app{i}") for i in range(2)]
    segments = [
        admin.create_segment(
            db.store,
            ws,
            f"{label}-secret-segment-{uuid.uuid4().hex[:8]}",
            '{"attribute": "plan", "op": "eq", "value": "pro"}',
            tags=[f"{label}-tag-{uuid.uuid4().hex[:6]}"],
            analytics=i == 0,
        )
        for i in range(2)
    ]
    key = db.key(ws)
    revoked = db.key(ws, name="revoked")
    db.revoke(ws, revoked)
    fenced = db.key(ws, allowed_ips=["203.0.113.7", "2001:db8::/32"], name="fenced")
    without = {p: db.key(ws, permissions=[q for q in ALL if q != p], name=f"no-{p}") for p in ALL}
    users = [f"{label}-user-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    events = [f"{label}-event-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    return Tenant(label, ws, apps, segments, key, revoked, fenced, without, users, events)


@pytest.fixture(scope="module")
def tenants(shared_db, shared_server):
    a, b = _tenant(shared_db, "alpha"), _tenant(shared_db, "bravo")
    with shared_server.client() as client:
        for t in (a, b):  # some data in each: users with attributes and sessions
            response = client.post(
                "/users/track",
                headers=bearer(t.key),
                json={
                    "attributes": [
                        {"external_id": u, "plan": "pro", "note": f"{t.name} only"} for u in t.users
                    ]
                },
            )
            assert response.status_code == 201, response.text
            response = client.post(
                "/sessions/track",
                headers=bearer(t.key),
                json={
                    "sessions": [
                        {
                            "session_id": f"{t.name}-{i}",
                            "external_id": t.users[i % 3],
                            "app_id": t.apps[i % 2].app_id,
                            "started_at": iso(time.time() - 3600 * i),
                        }
                        for i in range(20)
                    ]
                },
            )
            assert response.status_code == 201, response.text
            response = batch(client, t.apps[0].write_key, [
                message("track", t.users[i % 3], iso(time.time() - 600 * i), userId=t.users[i % 3],
                        event=t.events[i % 2])
                for i in range(6)
            ])
            assert response.status_code == 200 and response.json() == {"success": True}, response.text
    return a, b


def _request(endpoint: str, target: Tenant) -> tuple[str, str, dict[str, Any] | None]:
    """The canonical request of ``endpoint`` naming ``target``'s resources."""
    if endpoint == "GET /sessions/data_series":
        return "GET", f"/sessions/data_series?length=3&app_id={target.apps[0].app_id}", None
    if endpoint == "POST /sessions/track":
        return (
            "POST",
            "/sessions/track",
            {
                "sessions": [
                    {
                        "session_id": f"iso-{uuid.uuid4().hex}",
                        "external_id": target.users[0],
                        "app_id": target.apps[1].app_id,
                        "started_at": iso(time.time() - 60),
                    }
                ]
            },
        )
    if endpoint == "POST /users/track":
        return "POST", "/users/track", {"attributes": [{"external_id": target.users[1], "plan": "free"}]}
    if endpoint == "GET /segments/list":
        return "GET", "/segments/list?page=0", None
    if endpoint.startswith("GET /kpi/"):
        return "GET", f"{endpoint[4:]}?length=3&app_id={target.apps[0].app_id}", None
    if endpoint == "GET /events/list":
        return "GET", "/events/list?page=0", None
    if endpoint == "GET /events/data_series":
        query = f"event={target.events[0]}&length=3&app_id={target.apps[0].app_id}"
        return "GET", f"/events/data_series?{query}", None
    return "GET", f"/segments/details?segment_id={target.segments[0].segment_id}", None


def _send(
    client: httpx.Client,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    api_key: str | None = None,
) -> httpx.Response:
    if api_key is not None:
        path += ("&" if "?" in path else "?") + f"api_key={api_key}"
    return client.request(
        method, path, headers=headers, content=json.dumps(body) if body is not None else None
    )


JSON = {"Content-Type": "application/json"}
UNKNOWN = {  # what a valid key gets for a resource that is not its workspace's (unknown or foreign)
    "GET /sessions/data_series": (400, {"message": "'app_id' is not an app of this workspace"}),
    "POST /sessions/track": (
        400,
        {
            "message": "no valid sessions in the request",
            "errors": [{"index": 0, "message": "'app_id' is not an app of this workspace"}],
        },
    ),
    "GET /segments/details": (400, {"message": "'segment_id' is not a segment of this workspace"}),
    **{f"GET /kpi/{name}/data_series": (400, {"message": "'app_id' is not an app of this workspace"})
       for name in KPIS},
    "GET /events/data_series": (400, {"message": "'app_id' is not an app of this workspace"}),
}


def _expected_success(endpoint: str, response: httpx.Response, caller: Tenant) -> None:
    body = response.json()
    if endpoint == "GET /sessions/data_series":
        assert response.status_code == 200 and len(body["data"]) == 3, body
    elif endpoint == "POST /sessions/track":
        assert response.status_code == 201 and body["sessions_processed"] == 1, body
    elif endpoint == "POST /users/track":
        assert response.status_code == 201 and body == {"message": "success", "attributes_processed": 1}, body
    elif endpoint == "GET /segments/list":
        assert response.status_code == 200
        assert {s["id"] for s in body["segments"]} == {s.segment_id for s in caller.segments}, body
    elif endpoint.startswith("GET /kpi/"):
        name = endpoint.split("/")[2]
        assert response.status_code == 200 and len(body["data"]) == 3, body
        assert all(set(point) == {"time", name} for point in body["data"]), body
    elif endpoint == "GET /events/list":
        assert response.status_code == 200 and body["events"] == sorted(caller.events), body
    elif endpoint == "GET /events/data_series":  # the caller's own event: 6 within the last 3 days
        assert response.status_code == 200 and len(body["data"]) == 3, body
        assert sum(p["count"] for p in body["data"]) == 3, body
    else:
        assert response.status_code == 200 and body["name"] == caller.segments[0].name, body


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_isolation_matrix(shared_server, shared_db, tenants, endpoint, condition):
    tally("isolation cells checked")
    a, b = tenants
    permission = ENDPOINTS[endpoint]
    method, path, body = _request(endpoint, a)
    headers = dict(JSON) if method == "POST" else {}
    api_key = None
    expect: Callable[[httpx.Response], None]

    def invalid(response: httpx.Response) -> None:
        assert response.status_code == 401, (response.status_code, response.text)
        assert response.json() == INVALID_KEY
        assert response.headers["content-type"] == "application/json"
        for name in RATE_HEADERS:
            assert name not in response.headers

    expect = invalid
    if condition == "no key":

        def expect(response: httpx.Response) -> None:  # told how to send one, nothing else
            assert response.status_code == 401, (response.status_code, response.text)
            assert response.json() == MISSING_KEY
            assert response.headers["content-type"] == "application/json"
            for name in RATE_HEADERS:
                assert name not in response.headers
    elif condition == "malformed header":
        headers["Authorization"] = f"Basic {a.key}"
        api_key = a.key  # a malformed header is not rescued by the parameter either
    elif condition == "revoked key":
        headers.update(bearer(a.revoked))
    elif condition == "non-allowlisted address":
        headers.update(bearer(a.fenced))
    elif condition == "non-allowlisted address, spoofed X-Forwarded-For":
        headers.update(bearer(a.fenced))
        headers["X-Forwarded-For"] = "203.0.113.7"
        headers["X-Real-IP"] = "203.0.113.7"
        headers["Forwarded"] = "for=203.0.113.7"
    elif condition == "key without the permission":
        headers.update(bearer(a.without[permission]))

        def expect(response: httpx.Response) -> None:
            assert response.status_code == 403, response.text
            assert response.json() == {
                "message": f"Access Denied: this API key does not have the {permission} permission"
            }
            for name in RATE_HEADERS:
                assert name in response.headers
    elif condition == "api_key parameter":
        api_key = a.key

        def expect(response: httpx.Response) -> None:
            _expected_success(endpoint, response, a)
    elif condition in (
        "another workspace's key",
        "api_key parameter with another workspace's resources",
        "bearer with another workspace's resources",
    ):
        # B's key on a request naming A's resources (or A's key naming B's): the answer of
        # an unknown resource, and only the caller's own data
        caller, target = (b, a) if condition == "another workspace's key" else (a, b)
        method, path, body = _request(endpoint, target)
        if condition.startswith("api_key"):
            api_key = caller.key
        else:
            headers.update(bearer(caller.key))

        def expect(response: httpx.Response) -> None:
            if endpoint in UNKNOWN:
                status, message = UNKNOWN[endpoint]
                assert (response.status_code, response.json()) == (status, message), response.text
            elif endpoint == "POST /users/track":  # recorded for the caller's workspace, not the other
                assert response.status_code == 201, response.text
                assert shared_db.store.user_attributes(caller.ws.workspace_id, target.users[1]) is not None
                stored = json.loads(shared_db.store.user_attributes(target.ws.workspace_id, target.users[1]))
                assert f"{target.name} only" in json.dumps(stored), stored
            else:
                _expected_success(endpoint, response, caller)

    with shared_server.client() as client:
        response = _send(client, method, path, body, headers, api_key)
    expect(response)
    # nothing of the other workspace in any answer
    own, other = (b, a) if condition == "another workspace's key" else (a, b)
    for marker in other.markers():
        assert marker not in response.text, (marker, response.text)
    for secret in a.secrets() + b.secrets():
        assert secret not in response.text


def test_unknown_and_foreign_ids_get_identical_answers(shared_server, tenants):
    a, b = tenants
    with shared_server.client() as client:
        for foreign, unknown in [
            (
                f"/sessions/data_series?length=3&app_id={b.apps[0].app_id}",
                f"/sessions/data_series?length=3&app_id={uuid.uuid4()}",
            ),
            (
                f"/sessions/data_series?length=3&segment_id={b.segments[0].segment_id}",
                f"/sessions/data_series?length=3&segment_id={uuid.uuid4()}",
            ),
            (
                f"/segments/details?segment_id={b.segments[0].segment_id}",
                f"/segments/details?segment_id={uuid.uuid4()}",
            ),
            *(
                (f"/kpi/{name}/data_series?length=3&app_id={b.apps[0].app_id}",
                 f"/kpi/{name}/data_series?length=3&app_id={uuid.uuid4()}")
                for name in KPIS
            ),
            (
                f"/events/data_series?event=x&length=3&app_id={b.apps[0].app_id}",
                f"/events/data_series?event=x&length=3&app_id={uuid.uuid4()}",
            ),
            (
                f"/events/data_series?event=x&length=3&segment_id={b.segments[0].segment_id}",
                f"/events/data_series?event=x&length=3&segment_id={uuid.uuid4()}",
            ),
        ]:
            got = client.get(foreign, headers=bearer(a.key))
            base = client.get(unknown, headers=bearer(a.key))
            assert got.status_code == base.status_code == 400
            assert got.json() == base.json()
            tally("isolation cells checked")


def test_keys_never_reach_the_logs(shared_server, tenants):
    a, b = tenants
    # keys where clients misplace them: other parameter names, in a value, in the path,
    # in other headers, percent-encoded
    marker = f"/end-of-misplaced-keys-{uuid.uuid4().hex}"
    with shared_server.client() as client:
        for key in (a.key, b.revoked, a.fenced):
            encoded = "".join(f"%{byte:02X}" for byte in key.encode())
            for path in (
                f"/sessions/data_series?length=1&apikey={key}",
                f"/segments/list?token=Bearer%20{key}",
                f"/{key}",
                f"/sessions/data_series?length=1&api_key={encoded}",
                f"/sessions/data_series?length=1&{key}=1",
                f"/sessions/data_series?length=1&API_KEY={key}",
            ):
                client.get(path, headers={"X-Api-Key": key, "Cookie": f"key={key}"})
                tally("isolation cells checked")
        client.get(marker)
    deadline = time.monotonic() + 10
    while marker not in shared_server.all_stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = shared_server.all_stderr()
    assert marker in log
    assert '"path":"/sessions/track"' in log or '"path": "/sessions/track"' in log, "no access log captured"
    for tenant in (a, b):
        for secret in tenant.secrets():
            assert secret not in log, "a key is in the server log"
            assert secret.split("_", 2)[2] not in log, "a key's secret part is in the server log"
    assert "api_key=%5Bredacted%5D" in log  # the api_key parameter was logged, and redacted
