"""Operators' changes against a running server (CONTRACT section 14), on both engines: a
workspace's rate limit changed with ``sessiontally workspace update`` applies to the next
requests, without a restart; ``workspace delete`` stops its keys and write keys at once and
leaves no row of it, while another workspace keeps working."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from db_support import next_hour, within_one_window
from e2e_support import INVALID_KEY, OVER_LIMIT, bearer, session, track
from test_store_deletions import rows_of
from tracking_http_support import batch, message

from sessiontally.cli import main

if TYPE_CHECKING:
    from conftest import TestDatabase

pytestmark = pytest.mark.e2e

SERIES = "/sessions/data_series?length=1"


def cli(db: TestDatabase, *args: str) -> str:
    result = CliRunner().invoke(main, ["--database", db.url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_lower_rate_limit_applies_to_the_next_requests(db, server_factory) -> None:
    server = server_factory(db)
    with server.client() as client:
        within_one_window(lambda: _lower_the_limit(db, client))


def _lower_the_limit(db: TestDatabase, client) -> bool:
    window_reset = next_hour(time.time())
    ws = db.workspace(rate_limit=1000)
    key = db.key(ws)
    for _ in range(5):  # the key admitted and kept by the server meanwhile
        response = client.get(SERIES, headers=bearer(key))
        assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == "1000"

    cli(db, "workspace", "update", str(ws.workspace_id), "--rate-limit", "8")

    statuses = []
    for _ in range(5):
        response = client.get(SERIES, headers=bearer(key))
        statuses.append(response.status_code)
        assert response.headers["X-RateLimit-Limit"] == "8"
    if int(response.headers["X-RateLimit-Reset"]) != window_reset:
        return False  # a new hour began meanwhile: its count started again
    assert statuses == [200, 200, 200, 429, 429]
    assert response.json() == OVER_LIMIT

    cli(db, "workspace", "update", str(ws.workspace_id), "--rate-limit", "20")  # and up again
    assert client.get(SERIES, headers=bearer(key)).status_code == 200
    return True


def test_a_deleted_workspaces_keys_stop_at_once_and_its_rows_are_gone(db, server_factory) -> None:
    server = server_factory(db)
    gone, (gone_app,), gone_key = db.tenant()
    kept, (kept_app,), kept_key = db.tenant()
    cli(db, "member", "add", "--workspace", gone.name, "amy@example.com")
    with server.client() as client:
        for app, key in ((gone_app, gone_key), (kept_app, kept_key)):
            assert track(client, key, [session(app.app_id, time.time() - 60)]).status_code == 201
            assert batch(client, app.write_key, [message("track", "p1")]).status_code == 200
            assert client.get(SERIES, headers=bearer(key)).status_code == 200
        kept_series = client.get(SERIES, headers=bearer(kept_key)).json()
        assert rows_of(db, gone.workspace_id)

        cli(db, "workspace", "delete", gone.name, "--yes")

        refused = client.get(SERIES, headers=bearer(gone_key))
        assert (refused.status_code, refused.json()) == (401, INVALID_KEY)
        assert track(client, gone_key, [session(gone_app.app_id, time.time())]).status_code == 401
        assert batch(client, gone_app.write_key, [message("track", "p2")]).status_code == 401
        assert rows_of(db, gone.workspace_id) == {}
        assert db.store.find_member("amy@example.com") is None

        assert client.get(SERIES, headers=bearer(kept_key)).json() == kept_series
        assert batch(client, kept_app.write_key, [message("track", "p3")]).status_code == 200
