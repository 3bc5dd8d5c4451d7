"""Observability against real ``sessiontally serve`` processes (issue 20 item 4): ``/readyz``
naming the dependency that is down (Redis killed or misnamed, PostgreSQL stopped),
``/metrics`` in Prometheus's format summed over worker processes and leaking nothing,
the startup banner naming every dependency, the access log's last line surviving a
SIGTERM, and a stop within a second."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from db_support import free_port
from e2e_support import bearer, session, track
from prometheus_client.parser import text_string_to_metric_families
from test_e2e_postgres_outage import cluster  # noqa: F401 - a fixture: a throwaway PostgreSQL
from test_e2e_redis import throwaway_redis  # noqa: F401 - a fixture: a throwaway Redis

from sessiontally import admin
from sessiontally.store import open_store

pytestmark = pytest.mark.e2e


def samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``GET /metrics``: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_of(found, route: str, status: str, method: str = "GET") -> float:
    labels = tuple(sorted({"route": route, "status": status, "method": method}.items()))
    return found.get(("sessiontally_http_requests_total", labels), 0.0)


def _ready(client: httpx.Client) -> httpx.Response:
    return client.get("/readyz")


# ------------------------------------------------------------------------- /readyz


def test_readyz_is_ready_and_names_the_store(client, shared_db):
    response = _ready(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["dependencies"]["store"] == "up"
    assert "redis" not in body["dependencies"]
    assert "X-RateLimit-Limit" not in response.headers


def test_a_wrong_redis_url_makes_readyz_503_while_healthz_stays_200(server_factory, tmp_path):
    wrong = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = server_factory(str(tmp_path / "st.sqlite3"), env={"SESSIONTALLY_REDIS_URL": wrong})
    with server.client() as c:
        assert c.get("/healthz").status_code == 200  # alive
        response = _ready(c)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["message"] == "Redis unavailable"
        assert body["down"] == ["redis"]
        assert body["dependencies"] == {"store": "up", "redis": "down"}


def test_redis_killed_then_back_is_followed_by_readyz(server_factory, tmp_path, throwaway_redis):  # noqa: F811
    server = server_factory(str(tmp_path / "st.sqlite3"), workers=2,
                            env={"SESSIONTALLY_REDIS_URL": throwaway_redis.url})
    with server.client() as c:
        assert _ready(c).json()["dependencies"] == {"store": "up", "redis": "up"}
        throwaway_redis.kill()
        down = _ready(c)
        assert down.status_code == 503 and down.json()["down"] == ["redis"], down.text
        throwaway_redis.start()
        deadline = time.monotonic() + 15
        while _ready(c).status_code != 200:
            assert time.monotonic() < deadline, "readyz did not come back with Redis"
            time.sleep(0.1)


@pytest.mark.postgres
def test_postgres_stopped_makes_readyz_503_naming_the_store(server_factory, cluster):  # noqa: F811
    store = open_store(cluster.url)
    try:
        store.migrate()
    finally:
        store.close()
    server = server_factory(cluster.url)
    with server.client() as c:
        assert _ready(c).status_code == 200
        cluster.stop("fast")
        response = _ready(c)
        assert response.status_code == 503, response.text
        assert response.json()["down"] == ["store"]
        assert response.json()["message"] == "Store unavailable"
        cluster.start()
        deadline = time.monotonic() + 30
        while _ready(c).status_code != 200:
            assert time.monotonic() < deadline, "readyz did not come back with PostgreSQL"
            time.sleep(0.25)


# ------------------------------------------------------------------------ /metrics


def test_metrics_count_requests_sessions_and_rejections_without_leaking(server_factory, db):
    ws = db.workspace(rate_limit=3)
    app = db.app(ws)
    key = db.key(ws)
    server = server_factory(db)
    secret_path = f"/nope/{uuid.uuid4().hex}"
    with server.client() as c:
        before = samples(c)
        assert track(c, key, [session(app.app_id, time.time() - 60) for _ in range(4)]).status_code == 201
        assert c.get("/sessions/data_series?length=1", headers=bearer(key)).status_code == 200
        assert c.get("/sessions/data_series?length=1", headers=bearer(key)).status_code == 200
        assert c.get("/sessions/data_series?length=1", headers=bearer(key)).status_code == 429
        assert c.get(f"{secret_path}?api_key={key}").status_code == 404
        assert c.get(f"/dashboard/static/{uuid.uuid4().hex}.js").status_code == 404
        text = c.get("/metrics").text
        after = samples(c)
    for secret in (key, key[3:], secret_path, ws.name, app.app_id):
        assert secret not in text
    assert {name for metric, labels in after for name, _ in labels
            if metric.startswith("sessiontally_")} <= {"route", "method", "status", "limit",
                                                                   "dependency", "error", "le"}
    assert requests_of(after, "/sessions/data_series", "200") - requests_of(before, "/sessions/data_series",
                                                                            "200") == 2
    assert requests_of(after, "/sessions/data_series", "429") == 1
    assert requests_of(after, "/sessions/track", "201", "POST") == 1
    assert requests_of(after, "other", "404") == 1
    assert requests_of(after, "/dashboard/static/{path:path}", "404") == 1
    assert after[("sessiontally_sessions_recorded_total", ())] == 4
    assert after[("sessiontally_rate_limit_rejections_total", (("limit", "api"),))] == 1
    histogram = ("sessiontally_http_request_duration_seconds_count", (("route", "/sessions/data_series"),))
    assert after[histogram] == 3


def test_metrics_count_tracking_messages(server_factory, tmp_path):
    database = str(tmp_path / "st.sqlite3")
    store = open_store(database)
    try:
        store.migrate()
        ws = admin.create_workspace(store, "w", "UTC", 1000)
        made = admin.create_app(store, ws, "web", "web")
    finally:
        store.close()
    server = server_factory(database)
    messages = [{"type": "track", "event": "Opened", "userId": f"u{i}", "messageId": uuid.uuid4().hex,
                 "timestamp": "2025-01-01T00:00:00Z"} for i in range(3)]
    with server.client() as c:
        response = c.post("/v1/batch", json={"batch": messages, "writeKey": made.write_key})
        assert response.status_code == 200, response.text
        after = samples(c)
    assert after[("sessiontally_events_recorded_total", ())] == 3


def _metrics_folders() -> set[Path]:
    import tempfile

    return set(Path(tempfile.gettempdir()).glob("sessiontally-metrics-*"))


def test_metrics_are_the_sum_over_two_workers(server_factory, tmp_path):
    before_folders = _metrics_folders()
    server = server_factory(str(tmp_path / "st.sqlite3"), workers=2)
    folders = _metrics_folders() - before_folders
    assert len(folders) == 1, folders
    (folder,) = folders
    sent = 40
    for _ in range(sent):  # a new connection each: the workers share them
        assert httpx.get(server.url + "/healthz?n=1").status_code == 200
    pids = {path.stem.rsplit("_", 1)[-1] for path in folder.glob("counter_*.db")}
    assert len(pids) >= 2, sorted(folder.iterdir())  # both workers counted something
    answers = []
    for _ in range(6):  # whichever worker answers, the sum over both
        found = samples(httpx.Client(base_url=server.url))
        answers.append(requests_of(found, "/healthz", "200"))
    # the start-up wait's own /healthz requests count too; every answer has all of ours
    assert min(answers) >= sent and len(set(answers)) == 1, answers
    server.stop()
    assert not folder.exists()  # removed at exit


def test_metrics_can_be_turned_off(server_factory, tmp_path):
    server = server_factory(str(tmp_path / "st.sqlite3"), env={"SESSIONTALLY_METRICS": "off"})
    with server.client() as c:
        assert c.get("/metrics").status_code == 404
    assert "metrics: off" in server.stderr()


# ------------------------------------------------------------------- banner, stop


def test_the_banner_names_every_dependency(server_factory, db, redis_url):
    server = server_factory(db, workers=2, env={"SESSIONTALLY_REDIS_URL": redis_url})
    lines = server.stderr().splitlines()
    assert lines[0].startswith(f"sessiontally serving on {server.url} ")
    text = "\n".join(lines[:8])
    if db.engine == "sqlite":
        assert f"store: SQLite {Path(db.url).resolve()}" in text
    else:
        assert "store: PostgreSQL postgresql://" in text
        password = httpx.URL(db.url).password
        assert not password or password not in text
    assert f"rate limits: Redis {redis_url} (key prefix 'sessiontally:')" in text
    assert "workers: 2" in text
    assert f"{server.url}/readyz" in text and f"{server.url}/metrics" in text
    assert f"dashboard: {server.url}/" in text


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_keeps_the_last_log_line_and_stops_within_a_second(server_factory, tmp_path, workers):
    server = server_factory(str(tmp_path / "st.sqlite3"), workers=workers)
    marker = uuid.uuid4().hex
    assert httpx.get(f"{server.url}/healthz?last={marker}").status_code == 200
    started = time.monotonic()
    server.stop()  # SIGTERM to the process group, at once
    took = time.monotonic() - started
    assert server.graceful and server.returncode in (0, -15), server.returncode
    assert marker in server.stderr(), server.stderr()[-2000:]
    assert took < 1.0, took
