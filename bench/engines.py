"""PostgreSQL beside SQLite, measured in one run (issue 4's figures).

    python bench/engines.py [--size 10000000] [--requests 1000] [--ingest 100000] [--repeats 3]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

For each engine, in the same run: the same generated data set (bench/common.Dataset) is
bulk-loaded (SQLite: bench/common.bulk_load; PostgreSQL: COPY of the raw rows and of the
rollup computed on the arrays), a real `sessiontally serve` (1 worker) answers a 100-day
and a 100-hour series over HTTP (p50 / p99 on one keep-alive connection), then 4 client
threads post `--ingest` new sessions in batches of 1,000 (sessions/s acknowledged). The
engines alternate within each repeat. Prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from pathlib import Path

import orjson
import psycopg
from common import (
    COARSE_FROM_QUARTERS,
    Client,
    Dataset,
    RollupAccumulator,
    bulk_load,
    load_average,
    machine,
    percentile,
    remove_database,
    server,
    setup_workspace,
)

DAY_US = 86_400 * 1_000_000


def load_postgres(url: str, ds: Dataset) -> float:
    """COPY the data set's raw rows and rollup into PostgreSQL; returns seconds."""
    began = time.perf_counter()
    acc = RollupAccumulator(ds, None)
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy(
            "COPY sessions (workspace_id, session_id, external_id, app_key, started_at) FROM STDIN"
        ) as copy:
            for chunk in ds.chunks():
                acc.add(chunk)
                for hi, lo, usr, app, started in zip(
                    chunk["hi"].tolist(), chunk["lo"].tolist(), chunk["usr"].tolist(),
                    chunk["app"].tolist(), chunk["started"].tolist(), strict=True,
                ):
                    copy.write_row((ds.workspace_id, f"{hi:016x}{lo:08x}", f"u{usr}", app, started))
        with conn.cursor() as cur, cur.copy(
            "COPY session_counts (workspace_id, app_key, segment_key, quarter, sessions) FROM STDIN"
        ) as copy:
            for row in acc.rows(ds.workspace_id):
                copy.write_row(row)
        conn.execute(COARSE_FROM_QUARTERS.replace("?", "%s"), (ds.workspace_id,))
        conn.execute("ANALYZE sessions")
        conn.execute("ANALYZE session_counts")
        conn.execute("ANALYZE session_counts_coarse")
        conn.commit()
    return time.perf_counter() - began


def series_latency(base: str, key: str, params: str, requests: int) -> tuple[float, float]:
    client = Client(base, key)
    samples = []
    try:
        for i in range(requests + requests // 10):
            began = time.perf_counter()
            status, body = client.get(f"/sessions/data_series?{params}")
            elapsed = (time.perf_counter() - began) * 1000
            assert status == 200, body
            if i >= requests // 10:
                samples.append(elapsed)
    finally:
        client.close()
    return percentile(samples, 0.5), percentile(samples, 0.99)


def ingest(base: str, key: str, app_ids: list[str], total: int, clients: int = 4) -> float:
    now = time.time()
    bodies = []
    for start in range(0, total, 1000):
        items = [
            {
                "session_id": uuid.uuid4().hex,
                "external_id": f"user{(start + i) % 50_000}",
                "app_id": app_ids[(start + i) % len(app_ids)],
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                            time.gmtime(now - ((start + i) * 7919) % (3 * 86_400))),
            }
            for i in range(min(1000, total - start))
        ]
        bodies.append(orjson.dumps({"sessions": items}))
    queue = list(reversed(bodies))
    lock = threading.Lock()
    recorded = 0

    def worker() -> None:
        nonlocal recorded
        client = Client(base, key)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                status, answer = client.post_json("/sessions/track", body)
                assert status == 201, answer
                with lock:
                    recorded += orjson.loads(answer)["sessions_processed"]
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return recorded / (time.perf_counter() - began)


def fresh_postgres(admin_url: str) -> tuple[str, str]:
    name = f"st_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


def drop_postgres(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--ingest", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench-engines")
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    end_us = int(time.time() * 1e6)
    cases = {"100 days": "length=100&unit=day", "100 hours": "length=100&unit=hour"}
    results: dict[str, dict[str, list[float]]] = {"sqlite": {}, "postgres": {}}
    loads: dict[str, float] = {}
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = load_average()

    sqlite_path = str(Path(args.workdir) / "engines.sqlite3")
    remove_database(sqlite_path)
    pg_name, pg_url = fresh_postgres(args.postgres)
    databases = {"sqlite": sqlite_path, "postgres": pg_url}
    try:
        setups = {}
        for engine, database in databases.items():
            store, ws, apps, key = setup_workspace(database)
            store.close()
            ds = Dataset(ws.workspace_id, tuple(a.app_key for a in apps), args.size, end_us)
            began = time.perf_counter()
            if engine == "sqlite":
                bulk_load(database, ds, None)
            else:
                load_postgres(database, ds)
            loads[engine] = time.perf_counter() - began
            setups[engine] = (key, [a.app_id for a in apps])
            print(f"{engine}: loaded {args.size:,} sessions in {loads[engine]:.0f} s", flush=True)
        for repeat in range(args.repeats):
            for engine, database in databases.items():
                key, app_ids = setups[engine]
                with server(database) as srv:
                    for name, params in cases.items():
                        p50, p99 = series_latency(srv.base, key, params, args.requests)
                        results[engine].setdefault(f"{name} p50", []).append(p50)
                        results[engine].setdefault(f"{name} p99", []).append(p99)
                    rate = ingest(srv.base, key, app_ids, args.ingest)
                    results[engine].setdefault("ingest", []).append(rate)
                print(f"repeat {repeat + 1} {engine}: "
                      + ", ".join(f"{k} {v[-1]:.2f}" for k, v in results[engine].items()), flush=True)
    finally:
        remove_database(sqlite_path)
        drop_postgres(args.postgres, pg_name)

    def three(values: list[float], fmt: str) -> str:
        return " / ".join([fmt.format(min(values)), "**" + fmt.format(statistics.median(values)) + "**",
                           fmt.format(max(values))])

    lines = [
        "## PostgreSQL beside SQLite",
        "",
        f"- Command: `python bench/engines.py --size {args.size} --requests {args.requests}"
        f" --ingest {args.ingest} --repeats {args.repeats}`",
        f"- Date: {started}; machine: {machine()}; PostgreSQL 15 on the same machine (defaults,"
        " synchronous_commit on)",
        f"- Load average before: {load_before}, after: {load_average()} (shared, noisy machine)",
        f"- Both stores hold the same {args.size:,} generated sessions (bench/common.Dataset, 100 days,"
        f" 3 apps; SQLite bulk path {loads['sqlite']:.0f} s, PostgreSQL COPY {loads['postgres']:.0f} s),"
        " 1 server worker each; the engines alternate within each repeat. Series: sequential requests on one"
        f" keep-alive connection ({args.requests} timed after a warm-up). Ingest: 4 client threads,"
        " batches of 1,000 new sessions (random UUID ids, started_at over the last 3 days),"
        f" {args.ingest:,} per repeat, on top of the loaded data.",
        "",
        "| figure (min / **median** / max) | SQLite | PostgreSQL |",
        "|---|---|---|",
    ]
    for metric, fmt, label in (("100 days p50", "{:.2f}", "100-day series p50 (ms)"),
                               ("100 days p99", "{:.2f}", "100-day series p99 (ms)"),
                               ("100 hours p50", "{:.2f}", "100-hour series p50 (ms)"),
                               ("100 hours p99", "{:.2f}", "100-hour series p99 (ms)"),
                               ("ingest", "{:,.0f}", "ingest over HTTP (sessions/s)")):
        lines.append(f"| {label} | {three(results['sqlite'][metric], fmt)} |"
                     f" {three(results['postgres'][metric], fmt)} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
