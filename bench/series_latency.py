"""Series latency over real HTTP at several stored-session counts.

    python bench/series_latency.py --sizes 10000 10000000 [--requests 2000]

For each size: a fresh SQLite database, bulk-loaded (bench/common.py, the fast path), a
real server, then sequential keep-alive requests for a 100-day and a 100-hour series
(all apps, and one app). Prints p50 / p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from common import bulk_load_sqlite, machine, percentile, server, setup_workspace


def measure(base: str, key: str, params: dict[str, str], requests: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    samples = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for i in range(requests + requests // 10):
            began = time.perf_counter()
            response = client.get("/sessions/data_series", params=params)
            elapsed = time.perf_counter() - began
            assert response.status_code == 200, response.text
            if i >= requests // 10:  # the first tenth warms caches up
                samples.append(elapsed * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 10_000_000])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    end_us = int(time.time() * 1e6)
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            database = str(Path(tmp) / "bench.sqlite3")
            store, ws, apps, key = setup_workspace(database)
            store.close()
            rate = bulk_load_sqlite(database, ws.workspace_id, [a.app_key for a in apps], size, end_us)
            print(f"size {size:>11,}: bulk-loaded at {rate:,.0f} sessions/s")
            with server(database) as base:
                cases = {
                    "100 days": {"length": "100", "unit": "day"},
                    "100 days, app_id": {"length": "100", "unit": "day", "app_id": apps[0].app_id},
                    "100 hours": {"length": "100", "unit": "hour"},
                }
                for name, params in cases.items():
                    samples = measure(base, key, params, args.requests)
                    print(f"  {name:<18} p50 {percentile(samples, 0.5):6.2f} ms"
                          f"  p99 {percentile(samples, 0.99):6.2f} ms  (n={len(samples)})")


if __name__ == "__main__":
    main()
