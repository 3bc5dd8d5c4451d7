"""Parts 1 and 2: series latency over real HTTP, and the same series by scanning.

    python bench/series_latency.py --sizes 10000 1000000 [--requests 2000] [--repeats 3]

For each size: a fresh SQLite database with one workspace (America/New_York, 3 apps, one
tracked segment), bulk-loaded with ``size`` sessions over the last 100 days (the fast
path of common.bulk_load; the same rows into a DuckDB file in the same pass), then:

1. a real ``sessiontally serve`` (1 worker); one keep-alive connection sends sequential
   GET /sessions/data_series requests, for a 100-day and a 100-hour series, each with and
   without ``app_id`` and ``segment_id`` (8 cases), all ending at the data's last second
   (``ending_at``). Each repeat runs every case: ``requests / 10`` warm-up requests, then
   ``requests`` timed ones, of which p50 and p99 are taken. Every answer is checked
   against the counts expected from the generated rows.
2. with the server stopped, the 100-day all-apps series by one GROUP BY over the raw rows
   (bench/scans.py), in SQLite on the same file and in DuckDB; each result is checked
   equal to the HTTP answer.

The results are returned as a dict (bench/run.py writes them to RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from common import (
    QUARTER_US,
    Client,
    Dataset,
    LoadTooSlow,
    bulk_load,
    create_tracked_segment,
    load_average,
    log,
    machine,
    percentile,
    remove_database,
    server,
    setup_workspace,
    summary,
)
from scans import DuckScanner, series_edges_us, sqlite_scan

ZONE = "America/New_York"


def measure(client: Client, path: str, requests: int, expected: list[int]) -> list[float]:
    samples = []
    warmup = max(1, requests // 10)
    for i in range(warmup + requests):
        began = time.perf_counter()
        status, body = client.get(path)
        elapsed = time.perf_counter() - began
        if status != 200:
            raise AssertionError(f"{path}: {status} {body[:300]!r}")
        if i == 0:
            got = [point["sessions"] for point in orjson.loads(body)["data"]]
            if got != expected:
                raise AssertionError(f"{path}: counts differ from the generated rows")
        if i >= warmup:
            samples.append(elapsed * 1000)
    return samples


def expected_counts(report: Any, app_key: int, segment: bool, edges: list[int]) -> list[int]:
    rollup = report.rollup
    per_app = rollup.counts[1 if segment else 0]
    row = per_app.sum(axis=0) if app_key == 0 else per_app[app_key]
    out = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        a, b = lo // QUARTER_US - rollup.q0, hi // QUARTER_US - rollup.q0
        out.append(int(row[max(a, 0):max(b, 0)].sum()))
    return out


__all__ = ["LoadTooSlow", "run_size"]


def run_size(size: int, workdir: Path, requests: int, repeats: int, duckdb: bool = True,
             keep: bool = False, load_budget_s: float = 25 * 60) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    database = str(workdir / f"series-{size}.sqlite3")
    duck_path = str(workdir / f"series-{size}.duckdb")
    remove_database(database)
    remove_database(duck_path)
    result: dict[str, Any] = {"size": size, "load_average_before": load_average()}
    store, ws, apps, key = setup_workspace(database, zone=ZONE)
    segment = create_tracked_segment(store, ws)
    store.close()
    end_s = int(time.time())
    ds = Dataset(ws.workspace_id, tuple(a.app_key for a in apps), size, end_s * 1_000_000)
    log(f"size {size:,}: loading (SQLite{' + DuckDB' if duckdb else ''})")
    try:
        report = bulk_load(database, ds, segment.segment_key, duck_path if duckdb else None,
                           progress=size >= 10_000_000, budget_s=load_budget_s)
    except LoadTooSlow:
        remove_database(database)
        remove_database(duck_path)
        raise
    result["load"] = {
        "sqlite_rows_per_s": size / (report.sqlite_seconds + report.generate_seconds),
        "sqlite_seconds": report.sqlite_seconds + report.generate_seconds,
        "duckdb_seconds": report.duckdb_seconds,
        "sqlite_bytes": report.sqlite_bytes,
        "duckdb_bytes": report.duckdb_bytes,
        "rollup_rows": report.rollup_rows,
    }
    log(f"  loaded: SQLite {result['load']['sqlite_rows_per_s']:,.0f} rows/s "
        f"({report.sqlite_bytes / 2**30:.2f} GiB), DuckDB {report.duckdb_seconds:.1f} s")

    ending_at = datetime.fromtimestamp(end_s - 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cases: dict[str, dict[str, str]] = {}
    expected: dict[str, list[int]] = {}
    for unit in ("day", "hour"):
        _, edges = series_edges_us(unit, 100, end_s - 1, ZONE)
        for with_app in (False, True):
            for with_segment in (False, True):
                name = (f"100 {unit}s" + (", app_id" if with_app else "")
                        + (", segment_id" if with_segment else ""))
                params = {"length": "100", "unit": unit, "ending_at": ending_at}
                if with_app:
                    params["app_id"] = apps[0].app_id
                if with_segment:
                    params["segment_id"] = segment.segment_id
                cases[name] = params
                expected[name] = expected_counts(report, apps[0].app_key if with_app else 0,
                                                 with_segment, edges)
    latency: dict[str, dict[str, list[float]]] = {name: {"p50": [], "p99": []} for name in cases}
    # The read cache off: every request reads the rollup (what this part measures).
    with server(database, env={"SESSIONTALLY_READ_CACHE": "0"}) as srv:
        client = Client(srv.base, key)
        for rep in range(repeats):
            for name, params in cases.items():
                path = "/sessions/data_series?" + urlencode(params)
                samples = measure(client, path, requests, expected[name])
                latency[name]["p50"].append(percentile(samples, 0.5))
                latency[name]["p99"].append(percentile(samples, 0.99))
            log(f"  repeat {rep + 1}: " + ", ".join(
                f"{name} {latency[name]['p50'][-1]:.2f}/{latency[name]['p99'][-1]:.2f}" for name in cases))
        client.close()
    # As shipped, the same query repeated with no write in between: from the read cache.
    cached: dict[str, list[float]] = {"p50": [], "p99": []}
    with server(database) as srv:
        client = Client(srv.base, key)
        path = "/sessions/data_series?" + urlencode(cases["100 days"])
        for _ in range(repeats):
            samples = measure(client, path, requests, expected["100 days"])
            cached["p50"].append(percentile(samples, 0.5))
            cached["p99"].append(percentile(samples, 0.99))
        client.close()
    log(f"  100 days from the cache: p50 {cached['p50']}, p99 {cached['p99']}")
    result["latency"] = latency
    result["cached_100_days"] = cached
    result["requests"] = requests

    # Part 2: the 100-day, all-apps series by scanning.
    _, edges = series_edges_us("day", 100, end_s - 1, ZONE)
    want = expected["100 days"]
    sqlite_times = []
    for _ in range(repeats):
        seconds, counts = sqlite_scan(database, ws.workspace_id, edges)
        if counts != want:
            raise AssertionError("SQLite scan differs from the service's answer")
        sqlite_times.append(seconds)
    log(f"  SQLite scan: {', '.join(f'{t:.3f}' for t in sqlite_times)} s")
    result["sqlite_scan_s"] = sqlite_times
    if duckdb:
        scanner = DuckScanner(duck_path)
        scanner.scan(ws.workspace_id, edges)  # warm-up: reads the file into DuckDB's buffers
        duck_times = []
        for _ in range(repeats):
            seconds, counts = scanner.scan(ws.workspace_id, edges)
            if counts != want:
                raise AssertionError("DuckDB scan differs from the service's answer")
            duck_times.append(seconds)
        result["duckdb_threads"] = scanner.threads
        scanner.close()
        log(f"  DuckDB scan: {', '.join(f'{t:.3f}' for t in duck_times)} s")
        result["duckdb_scan_s"] = duck_times
    result["load_average_after"] = load_average()
    if not keep:
        remove_database(database)
        remove_database(duck_path)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database files")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    out = []
    for size in args.sizes:
        res = run_size(size, Path(args.workdir), args.requests, args.repeats, not args.no_duckdb, args.keep)
        out.append(res)
        for name, lat in res["latency"].items():
            p50, p99 = summary(lat["p50"]), summary(lat["p99"])
            print(f"  {name:<28} p50 {p50[1]:6.2f} ms ({p50[0]:.2f}-{p50[2]:.2f})"
                  f"  p99 {p99[1]:6.2f} ms ({p99[0]:.2f}-{p99[2]:.2f})")
    print(json.dumps(out, indent=1, default=str)[:2000])
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True) if not os.listdir(args.workdir) else None


if __name__ == "__main__":
    main()
