"""Ingest over real HTTP: sessions per second in batches of 1,000.

    python bench/ingest_http.py [--sessions 200000] [--clients 1 4 16] [--workers 1]

Each client thread posts batches of new, unique sessions on its own keep-alive
connection; the rate is sessions acknowledged (201, ``sessions_processed``) per second of
wall time. The bodies are prepared before the clock starts (or streamed from an NDJSON
file, for runs too large to hold in memory). bench/ingest_rates.py compares these rates
with ``sessiontally import`` and with a bare ``executemany`` at the same table sizes.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
from common import Client, machine, server, setup_workspace
from sessions_data import SessionData


def bodies_from_lines(lines: Iterable[bytes], batch: int) -> Iterator[bytes]:
    """``{"sessions": [...]}`` bodies of ``batch`` NDJSON lines each."""
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line.rstrip(b"\n"))
        if len(chunk) == batch:
            yield b'{"sessions":[' + b",".join(chunk) + b"]}"
            chunk = []
    if chunk:
        yield b'{"sessions":[' + b",".join(chunk) + b"]}"


def post_all(base: str, key: str, bodies: Iterable[bytes], clients: int,
             latencies: list[float] | None = None) -> tuple[int, int, float]:
    """Post every body with ``clients`` concurrent keep-alive connections; returns
    (sessions recorded, duplicates, seconds). Each POST's seconds go to ``latencies``."""
    source = iter(bodies)
    lock = threading.Lock()
    totals = {"recorded": 0, "duplicates": 0}
    failures: list[str] = []

    def worker() -> None:
        client = Client(base, key, timeout=300)
        try:
            while True:
                with lock:
                    body = next(source, None)
                if body is None or failures:
                    return
                sent = time.perf_counter()
                status, raw = client.post_json("/sessions/track", body)
                if latencies is not None:
                    latencies.append(time.perf_counter() - sent)  # list.append is atomic
                if status != 201:
                    failures.append(f"{status} {raw[:300]!r}")
                    return
                answer = orjson.loads(raw)
                with lock:
                    totals["recorded"] += answer["sessions_processed"]
                    totals["duplicates"] += answer["duplicates"]
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"POST /sessions/track failed: {failures[0]}")
    return totals["recorded"], totals["duplicates"], elapsed


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
            data = SessionData([a.app_id for a in apps], [a.app_key for a in apps], args.sessions,
                               seed=clients)
            bodies = list(bodies_from_lines(data.lines(), args.batch))
            with server(database, workers=args.workers) as srv:
                recorded, _, seconds = post_all(srv.base, key, bodies, clients)
            print(f"clients {clients:>2}, workers {args.workers}: {recorded / seconds:,.0f} sessions/s"
                  f" over HTTP (batches of {args.batch})")


if __name__ == "__main__":
    main()
