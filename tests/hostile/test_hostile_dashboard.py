"""The dashboard's isolation matrix, on both engines, against a real server: every
endpoint for people x every way of presenting a session that must not work, and a member
of one workspace naming the other's resources.

    no cookie, garbage cookie, an API key instead of a cookie, a signed-out session, the
    session of a removed member, a session token moved to the other workspace's id,
    the other workspace's member naming this workspace's apps and segments

No answer may carry an identifier or name of the other workspace. At the end the
server's log is searched for every password and session token: none may appear.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hostile_support import bearer, iso, tally
from tracking_http_support import batch, message

from sessiontally import admin, members

pytestmark = pytest.mark.e2e

KPIS = ("dau", "mau", "new_users", "uninstalls")
SIGNED_OUT = {"message": "Your dashboard session has ended; sign in again"}
COOKIE = "sessiontally_session"


@dataclass
class Tenant:
    name: str
    ws: Any
    apps: list[Any]
    segment: Any
    email: str
    password: str
    key: str
    events: list[str]

    def markers(self) -> list[str]:
        return [a.app_id for a in self.apps] + [a.write_key for a in self.apps] + [
            self.segment.segment_id, self.segment.name, self.email, self.ws.name, *self.events]


def _tenant(db, server, label: str) -> Tenant:  # type: ignore[no-untyped-def]
    ws = db.workspace(name=f"{label}-{uuid.uuid4().hex[:8]}")
    apps = [db.store.find_app(ws.workspace_id, db.app(ws, f"{label}-app{i}", "web").app_id) for i in range(2)]
    segment = admin.create_segment(db.store, ws, f"{label}-segment-{uuid.uuid4().hex[:6]}",
                                   '{"attribute": "plan", "op": "eq", "value": "pro"}', analytics=True)
    email = f"{label}-{uuid.uuid4().hex[:6]}@example.com"
    _, password = members.add_member(db.store, ws, email)
    key = db.key(ws)
    events = [f"{label}-event-{uuid.uuid4().hex[:8]}"]
    with server.client() as client:
        sessions = [{"session_id": f"{label}-{i}", "external_id": f"{label}-u{i % 3}",
                     "app_id": apps[i % 2].app_id, "started_at": iso(time.time() - 3600 * i)}
                    for i in range(12)]
        recorded = client.post("/sessions/track", headers=bearer(key), json={"sessions": sessions})
        assert recorded.status_code == 201
        sent = [message("track", f"{label}-u{i}", iso(time.time() - 60 * i), event=events[0])
                for i in range(3)]
        assert batch(client, apps[0].write_key, sent).status_code == 200
    return Tenant(label, ws, apps, segment, email, password, key, events)


def signed_in(server, tenant: Tenant) -> httpx.Client:  # type: ignore[no-untyped-def]
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    response = client.post("/sign-in", data={"email": tenant.email, "password": tenant.password,
                                              "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture(scope="module")
def tenants(shared_db, shared_server):  # type: ignore[no-untyped-def]
    return _tenant(shared_db, shared_server, "alpha"), _tenant(shared_db, shared_server, "bravo")


def requests_naming(target: Tenant) -> dict[str, str]:
    app, segment = target.apps[0].app_id, target.segment.segment_id
    paths = {
        "GET /": "/",
        "GET /dashboard/context.json": "/dashboard/context.json",
        "GET sessions": f"/dashboard/api/sessions/data_series?length=3&app_id={app}",
        "GET sessions of a segment": f"/dashboard/api/sessions/data_series?length=3&segment_id={segment}",
        "GET events list": "/dashboard/api/events/list",
        "GET events": f"/dashboard/api/events/data_series?event={target.events[0]}&length=3&app_id={app}",
    }
    paths.update({f"GET {name}": f"/dashboard/api/kpi/{name}/data_series?length=3&app_id={app}"
                  for name in KPIS})
    return paths


CONDITIONS = ("no cookie", "garbage cookie", "API key instead", "signed out", "member removed",
              "token moved to the other workspace")


@pytest.mark.parametrize("condition", CONDITIONS)
def test_no_valid_session_sees_nothing(shared_server, shared_db, tenants, condition) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    client = httpx.Client(base_url=shared_server.url, follow_redirects=False, timeout=30)
    headers: dict[str, str] = {}
    if condition == "garbage cookie":
        client.cookies.set(COOKIE, f"{a.ws.workspace_id}.{'A' * 43}")
    elif condition == "API key instead":
        headers = bearer(a.key)
    elif condition == "signed out":
        client = signed_in(shared_server, a)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]
        assert client.post("/sign-out", data={"csrf_token": csrf}).status_code == 303
        client.cookies.set(COOKIE, client.cookies.get(COOKIE) or "")
    elif condition == "member removed":
        email = f"gone-{uuid.uuid4().hex[:6]}@example.com"
        _, password = members.add_member(shared_db.store, a.ws, email)
        gone = Tenant(a.name, a.ws, a.apps, a.segment, email, password, a.key, a.events)
        client = signed_in(shared_server, gone)
        members.remove_member(shared_db.store, a.ws, email)
    elif condition == "token moved to the other workspace":
        token = signed_in(shared_server, a).cookies[COOKIE]
        client.cookies.set(COOKIE, f"{b.ws.workspace_id}.{token.split('.', 1)[1]}")
    for what, path in requests_naming(a).items():
        tally("dashboard isolation cells checked")
        response = client.get(path, headers=headers)
        if what == "GET /":
            assert response.status_code == 303 and response.headers["location"] == "/sign-in", what
        else:
            assert (response.status_code, response.json()) == (401, SIGNED_OUT), (what, response.text)
        for marker in a.markers() + b.markers():
            assert marker not in response.text, (what, marker)


def test_a_member_never_sees_another_workspace(shared_server, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    client = signed_in(shared_server, b)
    context = client.get("/dashboard/context.json").json()
    assert {app["app_id"] for app in context["apps"]} == {app.app_id for app in b.apps}
    assert [s["segment_id"] for s in context["segments"]] == [b.segment.segment_id]
    for what, path in requests_naming(a).items():
        tally("dashboard isolation cells checked")
        response = client.get(path)
        text = response.text
        for marker in a.markers():
            assert marker not in text, (what, marker)
        if what in ("GET /", "GET /dashboard/context.json", "GET events list"):
            assert response.status_code == 200, (what, text)
            continue
        # Naming the other workspace's app or segment is exactly naming an unknown one.
        made_up = path.replace(a.apps[0].app_id, str(uuid.uuid4())).replace(
            a.segment.segment_id, str(uuid.uuid4())).replace(a.events[0], "no-such-event")
        foreign, fake = response, client.get(made_up)
        assert (foreign.status_code, foreign.json()) == (fake.status_code, fake.json()), what
        assert foreign.status_code == 400, (what, text)


def test_forged_sign_out_changes_nothing(shared_server, tenants) -> None:  # type: ignore[no-untyped-def]
    a, _ = tenants
    client = signed_in(shared_server, a)
    for forged in ({}, {"csrf_token": "x"}):
        assert client.post("/sign-out", data=forged).status_code == 403
    evil = client.post("/sign-out", data={"csrf_token": "x"}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert client.get("/dashboard/context.json").status_code == 200


def test_passwords_and_tokens_never_reach_the_logs(shared_server, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    tokens = [signed_in(shared_server, t).cookies[COOKIE] for t in (a, b)]
    time.sleep(1.0)  # the access log is flushed every half second
    log = shared_server.all_stderr()
    for secret in [a.password, b.password, *tokens, *(t.split(".", 1)[1] for t in tokens)]:
        assert secret not in log
