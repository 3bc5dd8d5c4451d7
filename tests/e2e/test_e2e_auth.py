"""Authentication, IP allowlists and permissions over HTTP (CONTRACT.md section 2)."""

from __future__ import annotations

import socket
import time

import pytest
from e2e_support import (
    INVALID_KEY,
    MISSING_KEY,
    assert_no_rate_headers,
    assert_rate_headers,
    bearer,
    session,
    track,
)

pytestmark = pytest.mark.e2e

SERIES = "/sessions/data_series?length=2"


def assert_invalid_key(response) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.json() == INVALID_KEY
    assert_no_rate_headers(response)


@pytest.fixture(scope="module")
def tenant(shared_db):
    return shared_db.tenant()


def test_bearer_and_api_key_parameter_both_work(client, tenant):
    _, _, key = tenant
    assert client.get(SERIES, headers=bearer(key)).status_code == 200
    assert client.get(SERIES, headers={"Authorization": f"bearer   {key}"}).status_code == 200
    assert client.get(f"{SERIES}&api_key={key}").status_code == 200
    assert client.get("/sessions/data_series", params={"length": "2", "api_key": key}).status_code == 200


def test_no_key(client):
    """No key at all is told how to send one (issue 22, item 5)."""
    for response in (client.get(SERIES), client.post("/sessions/track", json={"sessions": []})):
        assert response.status_code == 401, (response.status_code, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == MISSING_KEY
        assert_no_rate_headers(response)


def test_unknown_key(client, tenant):
    _, _, key = tenant
    for wrong in ["st_" + "A" * 43, key[:-1], key + "x", key.upper(), "x", "st_", "k" * 5000]:
        assert_invalid_key(client.get(SERIES, headers=bearer(wrong)))
    assert_invalid_key(client.get(f"{SERIES}&api_key=st_nope"))
    assert_invalid_key(client.get(f"{SERIES}&api_key="))


@pytest.mark.parametrize(
    "header",
    ["Basic {key}", "Bearer", "{key}", "Token {key}", "Bearer{key}", "Bearer: {key}",
     "Bearer {key} {key}", "Bearer\tx"],
)
def test_malformed_authorization_header(client, tenant, header):
    _, _, key = tenant
    response = client.get(SERIES, headers={"Authorization": header.format(key=key)})
    assert_invalid_key(response)


def test_malformed_header_is_not_rescued_by_the_query_parameter(client, tenant):
    _, _, key = tenant
    assert_invalid_key(client.get(f"{SERIES}&api_key={key}", headers={"Authorization": f"Basic {key}"}))


def test_revoked_key_is_refused_immediately(client, shared_db):
    ws, apps, key = shared_db.tenant()
    other_key = shared_db.key(ws)
    assert client.get(SERIES, headers=bearer(key)).status_code == 200
    assert track(client, key, [session(apps[0].app_id, time.time() - 60)]).status_code == 201
    shared_db.revoke(ws, key)
    assert_invalid_key(client.get(SERIES, headers=bearer(key)))
    assert_invalid_key(client.get(f"{SERIES}&api_key={key}"))
    assert_invalid_key(track(client, key, [session(apps[0].app_id, time.time() - 60)]))
    # the workspace's other key is untouched
    assert client.get(SERIES, headers=bearer(other_key)).status_code == 200


def test_revoking_a_key_leaves_other_workspaces_alone(client, shared_db):
    ws_a, _, key_a = shared_db.tenant()
    ws_b, _, key_b = shared_db.tenant()
    shared_db.revoke(ws_a, key_a)
    assert_invalid_key(client.get(SERIES, headers=bearer(key_a)))
    assert client.get(SERIES, headers=bearer(key_b)).status_code == 200


@pytest.mark.parametrize(
    ("allowed", "ok"),
    [
        (["10.0.0.0/8"], False),
        (["127.0.0.2"], False),
        (["::1/128"], False),
        (["2001:db8::/32"], False),
        (["127.0.0.1/32"], True),
        (["127.0.0.1"], True),
        (["127.0.0.0/8"], True),
        (["10.0.0.0/8", "127.0.0.1/32"], True),
        (["2001:db8::/32", "127.0.0.0/24"], True),
    ],
)
def test_ipv4_allowlist(client, shared_db, allowed, ok):
    ws = shared_db.workspace()
    key = shared_db.key(ws, allowed_ips=allowed)
    for response in (client.get(SERIES, headers=bearer(key)), client.get(f"{SERIES}&api_key={key}")):
        if ok:
            assert response.status_code == 200, response.text
        else:
            assert_invalid_key(response)


def test_allowlist_cannot_be_bypassed_with_forwarded_headers(client, shared_db):
    ws = shared_db.workspace()
    key = shared_db.key(ws, allowed_ips=["10.0.0.0/8"])
    for header in ({"X-Forwarded-For": "10.1.2.3"}, {"Forwarded": "for=10.1.2.3"}):
        assert_invalid_key(client.get(SERIES, headers={**bearer(key), **header}))


def test_forwarded_address_is_trusted_only_from_named_proxies(server_factory, db):
    ws = db.workspace()
    key = db.key(ws, allowed_ips=["10.0.0.0/8"])
    server = server_factory(db, env={"SESSIONTALLY_FORWARDED_ALLOW_IPS": "127.0.0.1"})
    with server.client() as c:
        forwarded = c.get(SERIES, headers={**bearer(key), "X-Forwarded-For": "10.1.2.3"})
        assert forwarded.status_code == 200, forwarded.text
        assert_invalid_key(c.get(SERIES, headers={**bearer(key), "X-Forwarded-For": "192.0.2.1"}))
        assert_invalid_key(c.get(SERIES, headers=bearer(key)))


def _ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="cannot bind ::1 on this machine")
def test_ipv6_allowlist(server_factory, db):
    ws = db.workspace()
    good = db.key(ws, allowed_ips=["::1/128"])
    good_net = db.key(ws, allowed_ips=["10.0.0.0/8", "::/64"])
    bad = db.key(ws, allowed_ips=["2001:db8::/32"])
    v4_only = db.key(ws, allowed_ips=["127.0.0.1/32"])
    server = server_factory(db, host="::1")
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
        for key in (good, good_net):
            response = c.get(SERIES, headers=bearer(key))
            assert response.status_code == 200, response.text
            assert_rate_headers(response)
        assert c.get(f"{SERIES}&api_key={good}").status_code == 200
        assert_invalid_key(c.get(SERIES, headers=bearer(bad)))
        assert_invalid_key(c.get(f"{SERIES}&api_key={bad}"))
        assert_invalid_key(c.get(SERIES, headers=bearer(v4_only)))


# ------------------------------------------------------------------------ permissions


def test_missing_permission_is_403_with_rate_headers(client, shared_db):
    ws = shared_db.workspace(rate_limit=1000)
    app = shared_db.app(ws)
    track_only = shared_db.key(ws, permissions=["sessions.track"])
    series_only = shared_db.key(ws, permissions=["sessions.data_series"])
    unrelated = shared_db.key(ws, permissions=["users.track", "segments.list", "segments.details"])

    for key in (track_only, unrelated):
        response = client.get(SERIES, headers=bearer(key))
        assert response.status_code == 403
        assert response.json() == {
            "message": "Access Denied: this API key does not have the sessions.data_series permission"
        }
        assert_rate_headers(response, 1000)
    for key in (series_only, unrelated):
        response = track(client, key, [session(app.app_id, time.time() - 10)])
        assert response.status_code == 403
        assert response.json() == {
            "message": "Access Denied: this API key does not have the sessions.track permission"
        }
        assert_rate_headers(response, 1000)
    # a 403 is decided before the body is looked at
    response = client.post("/sessions/track", content=b"not json", headers=bearer(series_only))
    assert response.status_code == 403
    # and the right permission works
    assert client.get(SERIES, headers=bearer(series_only)).status_code == 200
    assert track(client, track_only, [session(app.app_id, time.time() - 10)]).status_code == 201
