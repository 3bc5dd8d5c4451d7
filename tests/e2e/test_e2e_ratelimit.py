"""Hourly rate limits over HTTP (CONTRACT.md section 2), with one and with two workers."""

from __future__ import annotations

import threading
import time

import pytest
from db_support import HOUR, avoid_hour_boundary, in_threads, next_hour, within_one_window
from e2e_support import (
    INVALID_KEY,
    OVER_LIMIT,
    assert_no_rate_headers,
    assert_rate_headers,
    bearer,
    session,
    track,
)

pytestmark = pytest.mark.e2e

SERIES = "/sessions/data_series?length=1"


def test_headers_on_every_authenticated_response_and_429_after_the_limit(client, shared_db):
    within_one_window(lambda: _limit_window(client, shared_db))


def _limit_window(client, shared_db) -> bool:
    """One try within one window; False when the window changed during it."""
    window_reset = next_hour(time.time())
    ws = shared_db.workspace(rate_limit=50)
    app = shared_db.app(ws)
    key = shared_db.key(ws)
    series_only = shared_db.key(ws, permissions=["sessions.data_series"])
    # a mix of statuses: 200, 201, 400, 403, 415 all count
    kinds = [
        lambda: client.get(SERIES, headers=bearer(key)),
        lambda: track(client, key, [session(app.app_id, time.time() - 5)]),
        lambda: client.get("/sessions/data_series?length=0", headers=bearer(key)),
        lambda: track(client, series_only, [session(app.app_id, time.time() - 5)]),
        lambda: client.post("/sessions/track", content=b"{}", headers=bearer(key)),
        lambda: client.get(f"{SERIES}&api_key={key}"),
    ]
    responses = []
    for i in range(50):
        responses.append(kinds[i % len(kinds)]())
        if i % 10 == 0:  # 401s in between do not count
            bad = client.get(SERIES, headers=bearer("st_unknown"))
            assert bad.status_code == 401 and bad.json() == INVALID_KEY
            assert_no_rate_headers(bad)
            assert client.get(SERIES).status_code == 401
    statuses = {r.status_code for r in responses}
    assert statuses == {200, 201, 400, 403, 415}, statuses
    remaining = [assert_rate_headers(r, 50) for r in responses]
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in responses}
    over = client.get(SERIES, headers=bearer(key))
    over_track = track(client, key, [session(app.app_id, time.time() - 5)])
    if resets != {window_reset} or int(over.headers["X-RateLimit-Reset"]) != window_reset:
        return False
    assert remaining == list(range(49, -1, -1))
    for response in (over, over_track):
        assert response.status_code == 429, response.text
        assert response.json() == OVER_LIMIT
        assert assert_rate_headers(response, 50) == 0
        retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= HOUR
        assert abs(time.time() + retry_after - window_reset) <= 5
    # refused requests did not record anything
    assert shared_db.store.count_raw_sessions(ws.workspace_id) == sum(
        1 for r in responses if r.status_code == 201
    )
    # 401s are still 401s, without rate-limit headers, when the workspace is over its limit
    assert client.get(SERIES, headers=bearer("st_unknown")).status_code == 401
    # another workspace is not affected
    _, _, other = shared_db.tenant(rate_limit=50)
    assert client.get(SERIES, headers=bearer(other)).status_code == 200
    return True


def test_default_limit_headers(client, shared_db):
    _, _, key = shared_db.tenant()
    response = client.get(SERIES, headers=bearer(key))
    assert response.status_code == 200
    assert assert_rate_headers(response, 250_000) == 249_999


def test_limit_is_exact_with_two_workers_and_8_threads(multi_server, shared_db):
    within_one_window(lambda: _concurrent_window(multi_server, shared_db, limit=60, threads=8, per_thread=15))


def _concurrent_window(server, shared_db, limit: int, threads: int, per_thread: int) -> bool:
    window_reset = next_hour(time.time())
    ws = shared_db.workspace(rate_limit=limit)
    app = shared_db.app(ws)
    key = shared_db.key(ws)
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    results: list[tuple[int, int, int, str | None]] = []  # status, remaining, reset, retry-after

    def worker(n: int) -> None:
        with server.client() as c:
            barrier.wait()
            for i in range(per_thread):
                if (n + i) % 3 == 0:
                    r = track(c, key, [session(app.app_id, time.time() - 5)])
                else:
                    r = c.get(SERIES, headers=bearer(key))
                c.get(SERIES, headers=bearer("st_bad"))  # a 401: never counted
                remaining = assert_rate_headers(r, limit)
                with lock:
                    results.append((r.status_code, remaining, int(r.headers["X-RateLimit-Reset"]),
                                    r.headers.get("Retry-After")))

    in_threads(threads, worker)
    if {reset for _, _, reset, _ in results} != {window_reset}:
        return False
    ok = [r for r in results if r[0] in (200, 201)]
    refused = [r for r in results if r[0] == 429]
    assert len(results) == threads * per_thread
    assert len(ok) == limit, sorted(r[0] for r in results)
    assert len(refused) == threads * per_thread - limit
    # every counted request saw its own count: remaining values are 0..limit-1, once each
    assert sorted(r[1] for r in ok) == list(range(limit))
    assert all(r[1] == 0 and r[3] is not None and int(r[3]) >= 1 for r in refused)
    assert shared_db.store.count_raw_sessions(ws.workspace_id) == sum(1 for r in ok if r[0] == 201)
    return True


def test_count_survives_a_restart_and_the_server_stops_gracefully(server_factory, db):
    avoid_hour_boundary(60)
    ws, apps, key = db.tenant(rate_limit=5)
    server = server_factory(db, workers=2)
    with server.client() as c:
        assert [c.get(SERIES, headers=bearer(key)).status_code for _ in range(3)] == [200] * 3
        assert track(c, key, [session(apps[0].app_id, time.time() - 5, "kept")]).status_code == 201
    server.restart()
    # uvicorn re-raises the signal once it has shut down, so -SIGTERM is a clean exit too
    assert server.graceful and server.returncode in (0, -15), (server.returncode, server.all_stderr())
    assert "Traceback" not in server.all_stderr()
    with server.client() as c:
        response = c.get(SERIES, headers=bearer(key))
        assert response.status_code == 200 and assert_rate_headers(response, 5) == 0
        assert c.get(SERIES, headers=bearer(key)).status_code == 429
        assert db.store.count_raw_sessions(ws.workspace_id) == 1
