"""Rate limits in Redis (SESSIONTALLY_REDIS_URL), over HTTP against real server processes.

- Two separate ``serve`` instances (each with two workers) on one database and one Redis:
  8 concurrent client threads spread over both, and exactly the workspace's limit is
  served in the window (CONTRACT.md section 2: "exact when the service runs several
  worker processes"; issue 4: "exact across processes and across two service instances").
- Redis unreachable: a throwaway ``redis-server`` of the test's own is killed under a
  running service, which answers 503 with a JSON message (not 500, not unlimited), then
  started again on the same port: the service recovers by itself, without a restart.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from db_support import avoid_hour_boundary, free_port, in_threads, next_hour, require_redis, within_one_window
from e2e_support import assert_rate_headers, bearer, json_message, session, track

from sessiontally.errors import RateLimiterUnavailable
from sessiontally.ratelimit import RedisRateLimiter, window_of

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SERIES = "/sessions/data_series?length=1"


# ------------------------------------------------------------------ two instances


def test_limit_is_exact_across_two_instances_sharing_redis(server_factory, db, redis_url):
    env = {"SESSIONTALLY_REDIS_URL": redis_url}
    instances = [server_factory(db, workers=2, env=env), server_factory(db, workers=2, env=env)]
    within_one_window(lambda: _window_across(instances, db, redis_url, limit=60, threads=8, per_thread=16))


def _window_across(instances, db, redis_url, limit: int, threads: int, per_thread: int) -> bool:
    import redis

    window_reset = next_hour(time.time())
    ws = db.workspace(rate_limit=limit)
    app = db.app(ws)
    key = db.key(ws)
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    results: list[tuple[int, int, int, int]] = []  # instance, status, remaining, reset

    def worker(n: int) -> None:
        clients = [server.client() for server in instances]
        try:
            barrier.wait()
            for i in range(per_thread):
                which = (n + i) % len(instances)  # every thread alternates instances
                c = clients[which]
                if (n + i) % 4 == 0:
                    r = track(c, key, [session(app.app_id, time.time() - 5)])
                else:
                    r = c.get(SERIES, headers=bearer(key))
                remaining = assert_rate_headers(r, limit)
                if r.status_code == 429:
                    assert json_message(r) == "Over rate limit"
                    assert int(r.headers["Retry-After"]) >= 1
                with lock:
                    results.append((which, r.status_code, remaining,
                                    int(r.headers["X-RateLimit-Reset"])))
        finally:
            for c in clients:
                c.close()

    in_threads(threads, worker)
    if {reset for *_, reset in results} != {window_reset}:
        return False
    total = threads * per_thread
    assert len(results) == total
    ok = [r for r in results if r[1] in (200, 201)]
    refused = [r for r in results if r[1] == 429]
    assert len(ok) == limit, sorted(r[1] for r in results)
    assert len(refused) == total - limit
    # both instances served some of the limit and refused some of the rest
    assert {r[0] for r in ok} == {0, 1} and {r[0] for r in refused} == {0, 1}
    # every counted request saw its own count: remaining values are 0..limit-1, once each
    assert sorted(r[2] for r in ok) == list(range(limit))
    assert all(r[2] == 0 for r in refused)
    assert db.store.count_raw_sessions(ws.workspace_id) == sum(1 for r in ok if r[1] == 201)
    # the count lives in Redis (not in the store's rate_windows), one key per workspace-hour
    client = redis.Redis.from_url(redis_url)
    try:
        counter = client.get(f"sessiontally:rate:{ws.workspace_id}:{window_reset - 3600}")
        assert counter is not None and int(counter) == total
        assert 0 < client.ttl(f"sessiontally:rate:{ws.workspace_id}:{window_reset - 3600}") <= 3660
    finally:
        client.close()
    return True


# ------------------------------------------------------------------ Redis outage


class ThrowawayRedis:
    """A ``redis-server`` of the test's own, on a fixed port, that can be killed and
    started again on the same port."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("Redis not reachable: no redis-server binary to start a throwaway one")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None
        self.starts += 1
        log = open(self.folder / f"redis-{self.starts}.log", "wb")  # noqa: SIM115 - kept open
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / f"redis-{self.starts}.log").read_text()
            try:
                import redis

                with redis.Redis(port=self.port, socket_connect_timeout=0.5) as probe:
                    if probe.ping():
                        return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise RuntimeError("throwaway redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.kill()


@pytest.fixture
def throwaway_redis(tmp_path: Path):
    require_redis()  # redis-py, and a Redis to compare with
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.close()


def _get(server, key: str) -> httpx.Response:
    with server.client(timeout=15.0) as c:
        return c.get(SERIES, headers=bearer(key))


def test_redis_down_is_503_json_and_the_service_recovers_by_itself(
    server_factory, db, throwaway_redis
):
    avoid_hour_boundary(60)
    ws, apps, key = db.tenant(rate_limit=1000)
    server = server_factory(db, workers=2, env={"SESSIONTALLY_REDIS_URL": throwaway_redis.url})
    first = _get(server, key)
    assert first.status_code == 200, first.text
    assert assert_rate_headers(first, 1000) == 999

    throwaway_redis.kill()
    # every worker and every endpoint: 503 with a JSON message, quickly, never served
    with server.client(timeout=15.0) as c:
        for i in range(8):  # a hang would fail on the client's 15 s timeout
            if i % 2:
                r = track(c, key, [session(apps[0].app_id, time.time() - 5, f"down-{i}")])
            else:
                r = c.get(SERIES, headers=bearer(key))
            assert r.status_code == 503, (r.status_code, r.text)
            assert "unavailable" in json_message(r).lower()
            assert int(r.headers["Retry-After"]) >= 1
        # a bad key is still 401 (authentication comes first), and health is the store's
        assert c.get(SERIES, headers=bearer("st_1_" + "x" * 43)).status_code == 401
        assert c.get("/healthz").status_code == 200
    assert db.store.count_raw_sessions(ws.workspace_id) == 0  # nothing was recorded unlimited
    assert "Traceback" not in server.all_stderr()

    # Redis comes back on the same address: the same service processes serve again
    throwaway_redis.start()
    pid = server.proc.pid if server.proc else None
    deadline = time.monotonic() + 20
    statuses = []
    while time.monotonic() < deadline:
        r = _get(server, key)
        statuses.append(r.status_code)
        if r.status_code == 200 and len(statuses) >= 2 and statuses[-2] == 200:
            break
        time.sleep(0.2)
    assert statuses[-2:] == [200, 200], statuses
    assert server.proc is not None and server.proc.pid == pid and server.starts == 1
    # the new Redis starts an empty window (it keeps no data): counting goes on from there
    with server.client() as c:
        for i in range(4):  # both workers, reconnected
            r = track(c, key, [session(apps[0].app_id, time.time() - 5, f"up-{i}")])
            assert r.status_code == 201, r.text
            assert_rate_headers(r, 1000)
    assert db.store.count_raw_sessions(ws.workspace_id) == 4
    assert "Traceback" not in server.all_stderr()


def test_redis_limiter_raises_unavailable_quickly_when_nothing_listens():
    require_redis()
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(RateLimiterUnavailable):  # bounded by the 2 s connect timeout
            limiter.hit(1, 10, time.time())
    finally:
        limiter.close()


def test_redis_limiter_counts_one_window_per_workspace(redis_url):
    limiter = RedisRateLimiter(redis_url)
    try:
        now = float(window_of(time.time()) + 10)
        decisions = [limiter.hit(7, 3, now) for _ in range(4)]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert {d.reset for d in decisions} == {window_of(now) + 3600}
        assert limiter.hit(8, 3, now).remaining == 2  # another workspace
        assert limiter.hit(7, 3, now + 3600).remaining == 2  # the next hour
    finally:
        limiter.close()


def test_redis_limiter_reconnects_on_the_first_request_after_a_restart(throwaway_redis):
    limiter = RedisRateLimiter(throwaway_redis.url)
    try:
        now = time.time()
        assert limiter.hit(1, 10, now).remaining == 9  # a pooled connection, now open
        throwaway_redis.kill()
        with pytest.raises(RateLimiterUnavailable):
            limiter.hit(1, 10, now)
        throwaway_redis.start()
        # the dead pooled connection is replaced within the same call: no failed request
        assert limiter.hit(1, 10, now).remaining == 9  # a new Redis: an empty window
        assert limiter.hit(1, 10, now).remaining == 8
    finally:
        limiter.close()


def test_redis_refusing_writes_is_unavailable_not_a_crash(throwaway_redis):
    """Redis up but refusing the INCR (out of memory here; a read-only replica after a
    failover answers alike): the request cannot be counted, so it is not served."""
    import redis

    limiter = RedisRateLimiter(throwaway_redis.url)
    admin_client = redis.Redis.from_url(throwaway_redis.url)
    try:
        assert limiter.hit(1, 10, time.time()).remaining == 9
        admin_client.config_set("maxmemory-policy", "noeviction")
        admin_client.config_set("maxmemory", "1")
        with pytest.raises(RateLimiterUnavailable):
            limiter.hit(1, 10, time.time())
        admin_client.config_set("maxmemory", "0")
        assert limiter.hit(1, 10, time.time()).remaining == 8
    finally:
        admin_client.close()
        limiter.close()
