"""A Citus worker killed during ingest (issue 21, item 3), on the real cluster named by
``SESSIONTALLY_TEST_CITUS`` and a real server: while one worker is down (``pg_ctl stop -m
immediate``), a workspace whose shard is on the other worker keeps being served (201s and
series), a workspace whose shard is on the dead worker gets 503 with Retry-After (never a
500), and an operator's write to a reference table gets StoreUnavailable; once the worker
is started again, the same server serves it again by itself, no acknowledged session is
lost, and every batch is in the store whole or not at all (the rollup agreeing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import citus_cluster
import httpx
import psycopg
import pytest
from e2e_support import series, session, track

from sessiontally.errors import StoreUnavailable

pytestmark = [pytest.mark.e2e, pytest.mark.citus]

WORKSPACES = 8  # enough that, with shards on both workers, each worker holds one
BATCH = 20
PHASE_S = 3.0  # ingest this long before the kill, while down, and after the restart


def _worker_of(url: str, workspace_id: int) -> tuple[str, int]:
    """The worker that holds the workspace's shard of ``sessions`` (and so of every
    co-located table)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT nodename, nodeport FROM citus_shards WHERE table_name = 'sessions'::regclass"
            " AND shardid = get_shard_id_for_distribution_column('sessions', %s)",
            (workspace_id,),
        ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def _data_directory(host: str, port: int) -> Path:
    with psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres", autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    return Path(str(row[0]))


class Tenant:
    def __init__(self, name: str, made: tuple[Any, list[Any], str]) -> None:
        self.name = name
        self.ws, apps, self.key = made
        self.app_id = apps[0].app_id
        self.acknowledged: set[str] = set()
        self.batches: list[list[str]] = []  # every batch sent, acknowledged or not
        self.statuses: list[int] = []

    def send(self, client: httpx.Client) -> int:
        now = time.time()
        items = [session(self.app_id, now - 60 * i) for i in range(BATCH)]
        ids = [item["session_id"] for item in items]
        self.batches.append(ids)
        try:
            status = track(client, self.key, items).status_code
        except httpx.TimeoutException:
            status = 0  # no answer: not acknowledged
        self.statuses.append(status)
        if status == 201:
            self.acknowledged.update(ids)
        return status


def _ingest(client: httpx.Client, tenants: list[Tenant], seconds: float) -> dict[str, list[int]]:
    """Send batches to every tenant in turn for ``seconds``; the statuses per tenant."""
    seen: dict[str, list[int]] = {t.name: [] for t in tenants}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for tenant in tenants:
            seen[tenant.name].append(tenant.send(client))
    return seen


@pytest.mark.parametrize("engine", ["citus"], indirect=True)
@pytest.mark.parametrize("killed", [0, 1], ids=["first-worker", "second-worker"])
def test_a_worker_killed_during_ingest(server_factory, db, engine, killed):
    """Either worker: the first one (by node id) is where Citus serialises row locks on
    reference tables, so it is the one a careless lock would make everyone depend on."""
    tenants_by_worker: dict[tuple[str, int], Any] = {}
    for _ in range(WORKSPACES):
        ws, apps, key = db.tenant()
        tenants_by_worker.setdefault(_worker_of(db.url, ws.workspace_id), (ws, apps, key))
    assert len(tenants_by_worker) == 2, f"workspaces on one worker only: {tenants_by_worker}"
    nodes = sorted(tenants_by_worker)  # by port: the order they were added in
    dead_node, live_node = nodes[killed], nodes[1 - killed]
    live = Tenant("live", tenants_by_worker[live_node])
    dead = Tenant("dead", tenants_by_worker[dead_node])
    data = _data_directory(*dead_node)
    server = server_factory(db, workers=2)
    with server.client(timeout=20.0) as client:
        before = _ingest(client, [live, dead], PHASE_S)
        assert set(before["live"]) == {201} and set(before["dead"]) == {201}, before

        citus_cluster.stop_node(data, mode="immediate")
        try:
            during = _ingest(client, [live, dead], PHASE_S)
            live_series = series(client, live.key, "length=1&unit=day")
            dead_series = series(client, dead.key, "length=1&unit=day")
            refused = track(client, dead.key, [session(dead.app_id, time.time())])
            # Writes to a reference table need every node: an operator's, refused cleanly.
            with pytest.raises(StoreUnavailable):
                db.store.create_workspace(f"during-{time.time_ns()}", "UTC", 10)
        finally:
            citus_cluster.restart_node(data)
        assert set(during["live"]) == {201}, during["live"]
        assert set(during["dead"]) == {503}, during["dead"]
        assert live_series.status_code == 200, live_series.text
        assert dead_series.status_code == 503, dead_series.text
        assert refused.status_code == 503 and refused.headers.get("retry-after") == "1"
        assert refused.json()["message"] == "Store unavailable; try again shortly"

        # Back by itself: the same server, no restart; the first 503s may last while the
        # coordinator's connections to the worker are made again.
        deadline = time.monotonic() + 30
        while dead.send(client) != 201:
            assert time.monotonic() < deadline, f"not back after 30 s: {dead.statuses[-5:]}"
            time.sleep(0.2)
        after = _ingest(client, [live, dead], PHASE_S)
        assert set(after["live"]) == {201} and set(after["dead"]) == {201}, after

    statuses = live.statuses + dead.statuses
    assert 500 not in statuses and 0 not in statuses, sorted(set(statuses))
    for tenant in (live, dead):
        stored = set(db.session_ids(tenant.ws.workspace_id))
        assert tenant.acknowledged <= stored, f"{tenant.name}: acknowledged sessions lost"
        for batch in tenant.batches:  # whole or not at all
            present = sum(1 for sid in batch if sid in stored)
            assert present in (0, len(batch)), f"{tenant.name}: a partial batch ({present}/{BATCH})"
        assert len(stored) == db.store.count_raw_sessions(tenant.ws.workspace_id)
        assert db.store.rollup_total(tenant.ws.workspace_id, 0, 0) == len(stored)
    assert "Traceback" not in server.all_stderr()
    print(f"citus fault ({killed=}): live {len(live.acknowledged)} sessions, dead {len(dead.acknowledged)};"
          f" statuses during the outage: live {set(during['live'])} x{len(during['live'])},"
          f" dead {set(during['dead'])} x{len(during['dead'])}")
