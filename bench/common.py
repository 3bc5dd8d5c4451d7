"""Shared helpers of the benchmarks: a real server on loopback, a fast bulk loader, stats.

Benchmarks are run by hand (never by the test suite); results go to bench/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from sessiontally import admin, keys
from sessiontally.store import open_store

QUARTER_US = 900 * 1_000_000
DAY_US = 86_400 * 1_000_000


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(database: str, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real ``sessiontally serve`` process on a free loopback port; yields its base URL."""
    port = free_port()
    environment = {**os.environ, "SESSIONTALLY_DATABASE": database, "SESSIONTALLY_LOG_LEVEL": "WARNING",
                   **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessiontally", "serve", "--port", str(port), "--workers", str(workers)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def setup_workspace(database: str, apps: int = 3, zone: str = "America/New_York"):
    """A workspace with apps and an all-permissions key; returns (store, workspace, apps, key)."""
    store = open_store(database)
    store.migrate()
    ws = admin.create_workspace(store, f"bench-{random.getrandbits(32):08x}", zone, 10**9)
    app_list = [admin.create_app(store, ws, f"app{i}") for i in range(apps)]
    key = admin.create_key(store, ws, "bench", keys.PERMISSIONS).key
    return store, ws, app_list, key


def bulk_load_sqlite(path: str, workspace_id: int, app_keys: list[int], count: int, end_us: int,
                     days: int = 100, seed: int = 1, chunk: int = 1_000_000) -> float:
    """The fast bulk path for large sizes: raw rows inserted in session-id order in large
    transactions with synchronous=OFF, then the rollup rebuilt with one GROUP BY.
    Returns sessions per second."""
    rng = random.Random(seed)
    start_us = end_us - days * DAY_US
    span = end_us - start_us
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    began = time.perf_counter()
    done = 0
    while done < count:
        n = min(chunk, count - done)
        rows = sorted(
            (workspace_id, f"{rng.getrandbits(96):024x}", f"u{rng.randrange(1_000_000)}",
             app_keys[rng.randrange(len(app_keys))], start_us + rng.randrange(span), None)
            for _ in range(n)
        )
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        done += n
    conn.execute("BEGIN")
    conn.execute("DELETE FROM session_counts WHERE workspace_id = ?", (workspace_id,))
    conn.execute(
        "INSERT INTO session_counts (workspace_id, app_key, segment_key, quarter, sessions)"
        " SELECT workspace_id, app_key, 0, started_at / ?, COUNT(*) FROM sessions"
        " WHERE workspace_id = ? GROUP BY app_key, started_at / ?",
        (QUARTER_US, workspace_id, QUARTER_US),
    )
    conn.execute(
        "INSERT INTO session_counts (workspace_id, app_key, segment_key, quarter, sessions)"
        " SELECT workspace_id, 0, 0, quarter, SUM(sessions) FROM session_counts"
        " WHERE workspace_id = ? AND app_key <> 0 AND segment_key = 0 GROUP BY quarter",
        (workspace_id,),
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return count / elapsed


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(samples: list[float]) -> tuple[float, float, float]:
    return min(samples), statistics.median(samples), max(samples)
