"""POST /users/delete over HTTP (issue 20 item 2): Braze's body, the users.delete
permission, bad bodies in the contract's error shape, another workspace untouched, and
idempotency; the user's sessions, its anonymous id's derived sessions, its events and
its KPI days leave every series."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from e2e_support import assert_rate_headers, bearer, iso, json_message, session, track

from sessiontally import admin

pytestmark = pytest.mark.e2e

US = '{"attribute": "country", "op": "eq", "value": "US"}'


def delete(client: Any, key: str, body: Any, **kwargs: Any) -> Any:
    if "content" in kwargs:
        return client.post("/users/delete", headers={**bearer(key), **kwargs.pop("headers", {})}, **kwargs)
    return client.post("/users/delete", json=body, headers=bearer(key))


def today(client: Any, key: str, path: str = "/sessions/data_series", extra: str = "") -> list[Any]:
    response = client.get(f"{path}?length=2&unit=day{extra}", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [{k: v for k, v in point.items() if k != "time"} for point in response.json()["data"]]


def populate(client: Any, shared_db: Any, tenant: tuple[Any, list[Any], str], who: str) -> None:
    ws, apps, key = tenant
    now = time.time() - 120
    assert client.post("/users/track", json={"attributes": [{"external_id": who, "country": "US"}]},
                       headers=bearer(key)).status_code == 201
    response = track(client, key, [session(apps[0].app_id, now - 60 * i, external_id=who) for i in range(3)])
    assert response.status_code == 201, response.text
    batch = [{"type": "track", "event": f"Opened by {who}", "anonymousId": f"anon-{who}", "userId": who,
              "messageId": uuid.uuid4().hex, "timestamp": iso(now - 30 * i)} for i in range(2)]
    answer = client.post("/v1/batch", json={"batch": batch}, auth=(apps[0].write_key, ""))
    assert answer.status_code == 200 and "rejected" not in answer.json(), answer.text


@pytest.fixture
def tenant(shared_db):
    return shared_db.tenant()


def test_users_delete_erases_the_user_and_its_counts_once(client, shared_db, tenant):
    ws, apps, key = tenant
    tracked = admin.create_segment(shared_db.store, ws, "us", US, analytics=True)
    other = shared_db.tenant()
    populate(client, shared_db, other, "amy")
    populate(client, shared_db, tenant, "bob")
    in_segment = f"&segment_id={tracked.segment_id}"
    alone = {"sessions": today(client, key), "segment": today(client, key, extra=in_segment),
             "dau": today(client, key, "/kpi/dau/data_series"),
             "events": client.get("/events/list", headers=bearer(key)).json()}
    populate(client, shared_db, tenant, "amy")
    assert today(client, key) != alone["sessions"]
    other_before = today(client, other[2]), client.get("/events/list", headers=bearer(other[2])).json()

    response = delete(client, key, {"external_ids": ["amy", "amy", "nobody"]})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"deleted": 1, "message": "success"}
    assert_rate_headers(response)
    assert today(client, key) == alone["sessions"]
    assert today(client, key, extra=in_segment) == alone["segment"]
    assert today(client, key, "/kpi/dau/data_series") == alone["dau"]
    assert client.get("/events/list", headers=bearer(key)).json() == alone["events"]
    assert shared_db.store.user_attributes(ws.workspace_id, "amy") is None
    assert shared_db.store.user_attributes(ws.workspace_id, "bob") is not None

    again = delete(client, key, {"external_ids": ["amy"]})
    assert again.status_code == 201 and again.json() == {"deleted": 0, "message": "success"}
    # another workspace's user of the same external id is untouched
    other_after = today(client, other[2]), client.get("/events/list", headers=bearer(other[2])).json()
    assert other_after == other_before
    assert shared_db.store.user_attributes(other[0].workspace_id, "amy") is not None


def test_users_delete_needs_its_permission(client, shared_db, tenant):
    ws, apps, _ = tenant
    key = shared_db.key(ws, ["users.track", "sessions.track"])
    response = delete(client, key, {"external_ids": ["amy"]})
    assert response.status_code == 403
    assert json_message(response) == "Access Denied: this API key does not have the users.delete permission"
    assert_rate_headers(response)


@pytest.mark.parametrize(("body", "words"), [
    ([], "JSON object"),
    ({}, "'external_ids'"),
    ({"external_ids": []}, "non-empty array"),
    ({"external_ids": "amy"}, "non-empty array"),
    ({"external_ids": [1]}, "string of 1 to 997"),
    ({"external_ids": [""]}, "string of 1 to 997"),
    ({"external_ids": ["x" * 998]}, "string of 1 to 997"),
    ({"external_ids": ["a\u0000b"]}, "NUL"),
    ({"external_ids": [f"u{i}" for i in range(51)]}, "at most 50"),
    ({"user_aliases": [{"alias_name": "a", "alias_label": "b"}]}, "'user_aliases' is not supported"),
    ({"external_ids": ["amy"], "braze_ids": ["x"]}, "'braze_ids' is not supported"),
])
def test_bad_bodies_are_400_and_erase_nobody(client, shared_db, tenant, body, words):
    ws, apps, key = tenant
    response = track(client, key, [session(apps[0].app_id, time.time() - 60, external_id="amy")])
    assert response.status_code == 201
    refused = delete(client, key, body)
    assert refused.status_code == 400, refused.text
    assert words in json_message(refused)
    assert_rate_headers(refused)
    assert shared_db.store.count_raw_sessions(ws.workspace_id) == 1


def test_not_json_is_400_and_another_content_type_415(client, tenant):
    _, _, key = tenant
    broken = delete(client, key, None, content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in json_message(broken)
    text = delete(client, key, None, content=b'{"external_ids": ["a"]}',
                  headers={"Content-Type": "text/plain"})
    assert text.status_code == 415 and json_message(text)
