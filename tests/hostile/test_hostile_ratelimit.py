"""Suite 6: rate limits under concurrency, and the hourly rollover without waiting an hour.

Over HTTP (both engines): 8 concurrent clients against 2 server processes (a server with
two workers, and two separate servers on the same database) send twice the workspace's
limit, mixing endpoints and statuses: exactly ``limit`` requests get through, the rest are
429 ``{"message": "Over rate limit"}`` with ``Retry-After``, the ``X-RateLimit-Remaining``
values handed out are exactly ``limit-1 .. 0`` once each, and 401s are not counted.

With an injected clock (``hit(workspace_id, limit, now)``): the limiters themselves
(SQLite sidecar, PostgreSQL, Redis), each shared by two OS processes with 4 threads each,
allow exactly ``limit`` hits in the last millisecond of an hour and exactly ``limit`` again
from the first instant of the next one, with ``reset`` at the next full hour.
"""

from __future__ import annotations

import collections
import multiprocessing
import threading
import time

import httpx
import pytest
from db_support import HOUR, in_threads, next_hour, within_one_window
from hostile_support import INVALID_KEY, OVER_LIMIT, bearer, iso, limiter_worker, tally

pytestmark = pytest.mark.e2e

WINDOW = 527_778 * HOUR  # 2030-03-17T17:00:00Z, a window start
LIMIT = 40
CLIENTS = 8
PER_CLIENT = 10  # 80 requests: twice the limit


def _two_processes(
    kind: str, url: str, workspace_id: int, limit: int, now: float, hits_each: int
) -> list[tuple[bool, int, int]]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        results = pool.starmap(limiter_worker, [(kind, url, workspace_id, limit, now, hits_each, 4)] * 2)
    return [decision for result in results for decision in result]


def _assert_exact_window(decisions: list[tuple[bool, int, int]], limit: int, reset: int) -> None:
    allowed = [d for d in decisions if d[0]]
    assert len(allowed) == limit, (len(allowed), limit)
    assert sorted(d[1] for d in allowed) == list(range(limit))  # each remaining value once
    assert all(d[1] == 0 for d in decisions if not d[0])
    assert {d[2] for d in decisions} == {reset}


def _rollover(kind: str, url: str, workspace_id: int) -> None:
    # the last millisecond of one hour: 2 processes x 4 threads, 2 x 40 hits for a limit of 40
    _assert_exact_window(
        _two_processes(kind, url, workspace_id, LIMIT, WINDOW + HOUR - 0.001, 40), LIMIT, WINDOW + HOUR
    )
    # the first instant of the next hour: a fresh window, exactly the limit again
    _assert_exact_window(
        _two_processes(kind, url, workspace_id, LIMIT, WINDOW + HOUR, 40), LIMIT, WINDOW + 2 * HOUR
    )
    # and the hour after that, one more time, with a smaller burst all allowed
    later = _two_processes(kind, url, workspace_id, LIMIT, WINDOW + 2 * HOUR + 1800.5, 10)
    assert all(d[0] for d in later) and len(later) == 20
    assert sorted(d[1] for d in later) == list(range(LIMIT - 20, LIMIT))
    tally("rate-limit hits with an injected clock", 80 + 80 + 20)


def test_window_rolls_over_at_the_hour_with_two_processes(db, tmp_path):
    ws = db.workspace()
    if db.engine == "sqlite":
        _rollover("sqlite", str(tmp_path / "limits.sqlite3"), ws.workspace_id)
    else:
        _rollover("postgres", db.url, ws.workspace_id)


@pytest.mark.redis
def test_window_rolls_over_at_the_hour_with_two_processes_on_redis(redis_url):
    _rollover("redis", redis_url, 4242)


# ------------------------------------------------------------------------ over HTTP


def _one_window(urls: list[str], db) -> bool:
    """One try within one rate-limit window; False if the hour turned during it."""
    ws = db.workspace(rate_limit=LIMIT)
    app = db.app(ws)
    key = db.key(ws)
    series_only = db.key(ws, permissions=["sessions.data_series"])
    reset_expected = next_hour(time.time())
    kinds = [
        lambda c, i: c.get("/sessions/data_series?length=2", headers=bearer(key)),
        lambda c, i: c.post(
            "/sessions/track",
            headers=bearer(key),
            json={
                "sessions": [
                    {
                        "session_id": f"s{i}-{time.monotonic_ns()}",
                        "external_id": "u",
                        "app_id": app.app_id,
                        "started_at": iso(time.time() - 60),
                    }
                ]
            },
        ),
        lambda c, i: c.post(
            "/users/track", headers=bearer(key), json={"attributes": [{"external_id": f"u{i}"}]}
        ),
        lambda c, i: c.get("/segments/list", headers=bearer(key)),
        lambda c, i: c.get("/sessions/data_series?length=0", headers=bearer(key)),  # 400 counts too
        lambda c, i: c.post("/users/track", headers=bearer(series_only), json={}),  # 403 counts too
        lambda c, i: c.get(f"/segments/list?api_key={key}"),
    ]
    responses: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def run(n: int) -> None:
        with httpx.Client(base_url=urls[n % len(urls)], timeout=60) as client:
            start.wait()
            for i in range(PER_CLIENT):
                response = kinds[(n + i) % len(kinds)](client, n * 100 + i)
                unauthenticated = client.get("/sessions/data_series?length=1", headers=bearer(key + "x"))
                assert unauthenticated.status_code == 401 and unauthenticated.json() == INVALID_KEY
                with lock:
                    responses.append(response)

    in_threads(CLIENTS, run)
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in responses}
    if resets != {reset_expected}:
        return False  # the hour turned during the burst: try again in the new window
    tally("rate-limited requests over HTTP", len(responses))
    statuses = collections.Counter(r.status_code for r in responses)
    passed = [r for r in responses if r.status_code != 429]
    limited = [r for r in responses if r.status_code == 429]
    assert len(passed) == LIMIT, statuses
    assert len(limited) == CLIENTS * PER_CLIENT - LIMIT, statuses
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in passed) == list(range(LIMIT))
    for r in limited:
        assert r.json() == OVER_LIMIT
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(r.headers["Retry-After"]) <= HOUR
        assert r.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert {200, 201}.issubset(statuses) and 429 in statuses, statuses
    return True


def test_exact_limit_with_8_clients_on_one_server_with_two_workers(multi_server, shared_db):
    within_one_window(lambda: _one_window([multi_server.url], shared_db), margin_s=60)


def test_exact_limit_with_8_clients_on_two_servers_sharing_the_store(server_factory, db):
    first = server_factory(db, workers=1)
    second = server_factory(db, workers=1)
    within_one_window(lambda: _one_window([first.url, second.url], db), margin_s=60)
