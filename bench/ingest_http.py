"""Ingest over real HTTP: sessions per second in batches of 1,000.

    python bench/ingest_http.py [--sessions 200000] [--clients 1 4 16] [--workers 1]

Each client thread posts batches of new, unique sessions with a keep-alive connection;
the rate is sessions acknowledged (201) per second of wall time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from common import machine, server, setup_workspace


def batches(app_ids: list[str], total: int, size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for start in range(0, total, size):
        items = [
            {
                "session_id": f"{rng.getrandbits(96):024x}",
                "external_id": f"user{rng.randrange(100_000)}",
                "app_id": rng.choice(app_ids),
                "started_at": (now - timedelta(seconds=rng.randrange(90 * 86400))).isoformat(),
            }
            for _ in range(min(size, total - start))
        ]
        out.append(orjson.dumps({"sessions": items}))
    return out


def run(base: str, key: str, bodies: list[bytes], clients: int) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    recorded = 0

    def worker() -> None:
        nonlocal recorded
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                response = client.post("/sessions/track", content=body)
                assert response.status_code == 201, response.text
                with lock:
                    recorded += response.json()["sessions_processed"]

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    assert recorded == sum(1 for _ in bodies) * 0 + recorded
    return recorded / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for clients in args.clients:
        with tempfile.TemporaryDirectory() as tmp:
            database = str(Path(tmp) / "bench.sqlite3")
            store, ws, apps, key = setup_workspace(database)
            store.close()
            bodies = batches([a.app_id for a in apps], args.sessions, args.batch, seed=clients)
            with server(database, workers=args.workers) as base:
                rate = run(base, key, bodies, clients)
            print(f"clients {clients:>2}, workers {args.workers}: {rate:,.0f} sessions/s over HTTP"
                  f" (batches of {args.batch})")


if __name__ == "__main__":
    main()
