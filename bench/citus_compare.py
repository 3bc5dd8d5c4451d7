"""Citus (a coordinator and two workers) against single-node PostgreSQL, in the same run
(issue 21, item 4). By hand, not part of run.py:

    python bench/citus_compare.py [--postgres URL] [--citus URL] [--sessions 40000]
                                  [--clients 4] [--requests 600] [--calls 2000]

``--postgres``: a server where a database is made (default ``SESSIONTALLY_TEST_POSTGRES``,
else the machine's on 5432). ``--citus``: a coordinator made by tests/citus_cluster.py
(default ``SESSIONTALLY_TEST_CITUS``; without one, a cluster is started in a temporary
folder and stopped after). On each, a fresh database with four workspaces (one app and
one key each; on Citus they land on both workers), then:

1. ingest: ``--clients`` threads, each on its own workspace, POST /sessions/track in
   batches of 100 new sessions spread over the last 100 days, to a real ``serve`` with 2
   workers, until ``--sessions`` are recorded: sessions/s, and the POSTs' p50/p99;
2. series: one keep-alive client, sequential GET /sessions/data_series (100 days) over
   the four workspaces in turn, ``--requests`` timed after a tenth as many warm-up ones:
   p50/p99 (each answer's total is checked against what was recorded);
3. the coordinator's hop, in-process with the store: p50 of ``--calls`` calls each of a
   point read routed to one shard (``find_key_by_hash``), a read of the reference table
   (``get_workspace``, local on the coordinator) and a one-session recording transaction
   (``record_sessions``); the difference to PostgreSQL is what the hop costs.

Prints a Markdown table and writes ``bench/results-citus.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from common import Client, log, percentile, server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sessiontally import admin, keys  # noqa: E402
from sessiontally.store import open_store  # noqa: E402
from sessiontally.store.base import NewSession  # noqa: E402

DAY_S = 86_400
BATCH = 100
WORKSPACES = 4


def _postgres_database(admin_url: str) -> str:
    import psycopg

    name = f"st_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rpartition('/')[0]}/{name}"


def _drop(admin_urls: list[str], name: str) -> None:
    import psycopg

    for url in admin_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tenants(url: str) -> list[tuple[Any, Any, str]]:
    store = open_store(url)
    store.migrate()
    made = []
    for i in range(WORKSPACES):
        ws = admin.create_workspace(store, f"bench-{i}", "UTC", 10**9)
        app = admin.create_app(store, ws, "app")
        made.append((ws, app, admin.create_key(store, ws, "bench", keys.PERMISSIONS).key))
    store.close()
    return made


def _ago(now: int, spread: int) -> str:
    """An instant within the 90 days before ``now``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - spread % (90 * DAY_S)))


def _ingest(base: str, tenants: list[tuple[Any, Any, str]], sessions: int, clients: int) -> dict[str, Any]:
    per_client = sessions // clients
    latencies: list[float] = []
    lock = threading.Lock()
    now = int(time.time())

    def work(n: int) -> None:
        _, app, key = tenants[n % len(tenants)]
        client = Client(base, key)
        mine: list[float] = []
        try:
            for start in range(0, per_client, BATCH):
                items = [{"session_id": uuid.uuid4().hex, "external_id": f"u{(start + i) % 5000}",
                          "app_id": app.app_id, "started_at": _ago(now, start * 7919 + i * 104729)}
                         for i in range(min(BATCH, per_client - start))]
                began = time.perf_counter()
                status, body = client.post_json("/sessions/track", orjson.dumps({"sessions": items}))
                mine.append(time.perf_counter() - began)
                assert status == 201, body
        finally:
            client.close()
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {"sessions_per_s": per_client * clients / elapsed, "post_p50_ms": percentile(latencies, 0.5) * 1e3,
            "post_p99_ms": percentile(latencies, 0.99) * 1e3, "sessions": per_client * clients}


def _series(
    base: str, tenants: list[tuple[Any, Any, str]], requests: int, expected: dict[int, int]
) -> dict[str, Any]:
    clients = [Client(base, key) for _, _, key in tenants]
    ending = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))
    path = f"/sessions/data_series?length=100&unit=day&ending_at={ending}"
    samples: list[float] = []
    try:
        for n in range(requests // 10 + requests):
            i = n % len(tenants)
            began = time.perf_counter()
            status, body = clients[i].get(path)
            elapsed = time.perf_counter() - began
            assert status == 200, body
            if n >= requests // 10:
                samples.append(elapsed)
                total = sum(point["sessions"] for point in orjson.loads(body)["data"])
                assert total == expected[tenants[i][0].workspace_id], (total, expected)
    finally:
        for client in clients:
            client.close()
    return {"p50_ms": percentile(samples, 0.5) * 1e3, "p99_ms": percentile(samples, 0.99) * 1e3}


def _hop(url: str, tenants: list[tuple[Any, Any, str]], calls: int) -> dict[str, float]:
    store = open_store(url)
    ws, app, key = tenants[0]
    key_hash = keys.hash_key(key)
    found = store.find_key_by_hash(ws.workspace_id, key_hash)

    def p50(call: Any) -> float:
        for _ in range(calls // 10):
            call()
        samples = []
        for _ in range(calls):
            began = time.perf_counter()
            call()
            samples.append(time.perf_counter() - began)
        return percentile(samples, 0.5) * 1e6

    now_us = int(time.time()) * 1_000_000
    result = {
        "point_read_us": p50(lambda: store.find_key_by_hash(ws.workspace_id, key_hash)),
        "reference_read_us": p50(lambda: store.get_workspace(ws.workspace_id)),
        "record_one_us": p50(lambda: store.record_sessions(ws.workspace_id, [NewSession(
            uuid.uuid4().hex, "hop-user", app.app_key, now_us, None)])),
    }
    assert found is not None
    store.close()
    return result


def measure(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    log(f"{name}: {url.rpartition('@')[2]}")
    tenants = _tenants(url)
    with server(url, workers=2) as srv:
        ingest = _ingest(srv.base, tenants, args.sessions, args.clients)
        log(f"{name}: ingest {ingest['sessions_per_s']:,.0f} sessions/s")
        store = open_store(url)
        expected = {ws.workspace_id: store.count_raw_sessions(ws.workspace_id) for ws, _, _ in tenants}
        store.close()
        series = _series(srv.base, tenants, args.requests, expected)
        log(f"{name}: series p50 {series['p50_ms']:.2f} ms, p99 {series['p99_ms']:.2f} ms")
    hop = _hop(url, tenants, args.calls)
    log(f"{name}: in-process {hop}")
    return {"ingest": ingest, "series": series, "hop": hop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get(
        "SESSIONTALLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--citus", default=os.environ.get("SESSIONTALLY_TEST_CITUS", ""))
    parser.add_argument("--sessions", type=int, default=40_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    import citus_cluster

    folder = None
    if not args.citus:
        folder = Path(tempfile.mkdtemp(prefix="sessiontally-bench-citus-"))
        args.citus = citus_cluster.start(folder)
    os.environ["SESSIONTALLY_TEST_CITUS"] = args.citus
    import db_support  # (reads SESSIONTALLY_TEST_CITUS when imported)

    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "load_average": os.getloadavg(), "args": vars(args)}
    try:
        pg_url = _postgres_database(args.postgres)
        try:
            results["postgres"] = measure("postgres", pg_url, args)
        finally:
            _drop([args.postgres], pg_url.rpartition("/")[2])
        citus_url = db_support._make_citus_database()
        try:
            results["citus"] = measure("citus", citus_url, args)
        finally:
            db_support._drop_citus_database(citus_url.rpartition("/")[2])
    finally:
        if folder is not None:
            citus_cluster.stop(folder)
    (Path(__file__).parent / "results-citus.json").write_text(json.dumps(results, indent=1) + "\n")
    pg, ci = results["postgres"], results["citus"]
    rows = [
        ("ingest over HTTP (sessions/s)", "ingest", "sessions_per_s", "{:,.0f}"),
        ("POST /sessions/track p50 (ms, 100 sessions)", "ingest", "post_p50_ms", "{:.1f}"),
        ("POST /sessions/track p99 (ms)", "ingest", "post_p99_ms", "{:.1f}"),
        ("100-day series p50 (ms)", "series", "p50_ms", "{:.2f}"),
        ("100-day series p99 (ms)", "series", "p99_ms", "{:.2f}"),
        ("point read, one shard (µs, in-process p50)", "hop", "point_read_us", "{:.0f}"),
        ("reference-table read (µs)", "hop", "reference_read_us", "{:.0f}"),
        ("one-session recording transaction (µs)", "hop", "record_one_us", "{:.0f}"),
    ]
    print("| measure | PostgreSQL (1 node) | Citus (coordinator + 2 workers) |")
    print("|---|---:|---:|")
    for label, part, field, fmt in rows:
        print(f"| {label} | {fmt.format(pg[part][field])} | {fmt.format(ci[part][field])} |")


if __name__ == "__main__":
    main()
