"""What the daily KPIs cost: at ingest, and to read.

    python bench/kpi_cost.py ingest [--sessions 200000] [--persons 20000] [--repeats 3]
    python bench/kpi_cost.py read [--sizes 10000 1000000] [--requests 300]

``ingest``: sessions recorded through ``Store.record_sessions`` in batches of 1,000
(unique ids, ``user<n>`` persons, starts uniform over 60 days), each method on a fresh
SQLite database, alternating within each repeat: as shipped (the KPI upkeep in the same
transaction), and with the upkeep turned off (``store.kpis.upkeep`` replaced by a no-op).
The ratio is the cost the KPIs add to ingest.

``read``: a workspace with N sessions from N/10 persons over 120 days, recorded as
shipped; then the p50 and p99 of a 100-day DAU and MAU series over HTTP (``GET
/kpi/dau/data_series?length=100``, one keep-alive client, sequential) and in-process
(``Store.kpi_series``), against the baseline, the same numbers by a query over the raw
rows (``COUNT(DISTINCT external_id)`` per UTC day, and per 30-day window for MAU), in the
same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from common import Client, final_checkpoint, machine, percentile, server, setup_workspace

from sessiontally import kpi
from sessiontally.store import kpis as store_kpis
from sessiontally.store import open_store
from sessiontally.store.base import NewSession

DAY_US = 86_400_000_000
BATCH = 1000


def make_sessions(count: int, persons: int, app_keys: list[int], end_us: int, days: int,
                  seed: int) -> list[NewSession]:
    rng = random.Random(seed)
    return [NewSession(f"{rng.getrandbits(96):024x}", f"user{rng.randrange(persons)}",
                       rng.choice(app_keys), end_us - rng.randrange(days * DAY_US), None)
            for _ in range(count)]


def record(database: str, workspace_id: int, sessions: list[NewSession], upkeep: bool) -> float:
    store = open_store(database)
    try:
        patch = mock.patch.object(store_kpis, "upkeep", lambda *args: None) if not upkeep else None
        if patch:
            patch.start()
        began = time.perf_counter()
        for i in range(0, len(sessions), BATCH):
            store.record_sessions(workspace_id, sessions[i:i + BATCH])
        seconds = time.perf_counter() - began
        if patch:
            patch.stop()
    finally:
        store.close()
    return seconds + final_checkpoint(database)


def ingest(args: argparse.Namespace) -> None:
    end_us = int(time.time()) * 1_000_000
    rates: dict[str, list[float]] = {"with KPI upkeep": [], "without KPI upkeep": []}
    for repeat in range(args.repeats):
        for method in rates:
            with tempfile.TemporaryDirectory() as tmp:
                database = str(Path(tmp) / "bench.sqlite3")
                store, ws, apps, _ = setup_workspace(database, apps=3, zone="America/New_York")
                store.close()
                sessions = make_sessions(args.sessions, args.persons, [a.app_key for a in apps],
                                         end_us, 60, seed=repeat)
                seconds = record(database, ws.workspace_id, sessions, method == "with KPI upkeep")
                rates[method].append(args.sessions / seconds)
                print(f"repeat {repeat + 1}: {method}: {args.sessions / seconds:,.0f} sessions/s", flush=True)
    base = statistics.median(rates["without KPI upkeep"])
    print("\n| method | sessions/s (min / median / max) | median ratio to without |\n|---|---|---|")
    for method, values in rates.items():
        mid = statistics.median(values)
        print(f"| {method} | {min(values):,.0f} / **{mid:,.0f}** / {max(values):,.0f} | {mid / base:.0%} |")


def read(args: argparse.Namespace) -> None:
    end_us = (int(time.time()) // 86_400 + 1) * DAY_US  # the end of today (UTC)
    print("\n| stored sessions | persons | KPI | p50 / p99 (ms), HTTP | p50 / p99 (ms), kpi_series |"
          " median (ms), raw query | raw / HTTP p50 |\n|---|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            database = str(Path(tmp) / "bench.sqlite3")
            store, ws, apps, key = setup_workspace(database, apps=1, zone="UTC")
            for i in range(0, size, 50_000):  # (made in pieces: 10^7 sessions do not fit at once)
                piece = make_sessions(min(50_000, size - i), max(1, size // 10), [apps[0].app_key],
                                      end_us, 120, seed=size + i)
                store.record_sessions(ws.workspace_id, piece)
            last = kpi.local_day("UTC", end_us - 1)
            first = last - 99
            conn = store.connections.reader()  # type: ignore[attr-defined]
            raw = {
                "dau": ("SELECT started_at / 86400000000 AS day, COUNT(DISTINCT external_id)"
                        " FROM sessions WHERE workspace_id = ? AND started_at >= ? AND started_at < ?"
                        " GROUP BY day", (ws.workspace_id, first * DAY_US, (last + 1) * DAY_US)),
            }
            for name, kind in (("dau", kpi.DAU), ("mau", kpi.MAU)):
                fast = []
                for _ in range(args.requests):
                    began = time.perf_counter()
                    store.kpi_series(ws.workspace_id, 0, kind, first, last)
                    fast.append(time.perf_counter() - began)
                slow = []
                for _ in range(3 if name == "dau" or size < 1_000_000 else 1):
                    began = time.perf_counter()
                    if name == "dau":
                        conn.execute(*raw["dau"]).fetchall()
                    else:  # one distinct count per 30-day window ending on each of the 100 days
                        for day in range(first, last + 1):
                            window = (ws.workspace_id, (day - 29) * DAY_US, (day + 1) * DAY_US)
                            conn.execute("SELECT COUNT(DISTINCT external_id) FROM sessions"
                                         " WHERE workspace_id = ? AND started_at >= ? AND started_at < ?",
                                         window).fetchall()
                    slow.append(time.perf_counter() - began)
                over_http = http_latencies(database, key, f"/kpi/{name}/data_series?length=100",
                                           args.requests)
                p50, p99, base = percentile(fast, 0.5), percentile(fast, 0.99), statistics.median(slow)
                h50, h99 = percentile(over_http, 0.5), percentile(over_http, 0.99)
                print(f"| {size:,} | {size // 10:,} | {name} | {h50 * 1000:.2f} / {h99 * 1000:.2f} |"
                      f" {p50 * 1000:.3f} / {p99 * 1000:.3f} | {base * 1000:,.1f} | {base / h50:,.0f}x |",
                      flush=True)
            store.close()


def http_latencies(database: str, key: str, path: str, requests: int) -> list[float]:
    """Seconds of each of ``requests`` sequential GETs of ``path`` on a real server."""
    seconds = []
    with server(database) as srv:
        client = Client(srv.base, key)
        for _ in range(requests):
            began = time.perf_counter()
            status, _ = client.get(path)
            seconds.append(time.perf_counter() - began)
            assert status == 200, status
        client.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="part", required=True)
    one = sub.add_parser("ingest")
    one.add_argument("--sessions", type=int, default=200_000)
    one.add_argument("--persons", type=int, default=20_000)
    one.add_argument("--repeats", type=int, default=3)
    two = sub.add_parser("read")
    two.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    two.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    ingest(args) if args.part == "ingest" else read(args)


if __name__ == "__main__":
    main()
