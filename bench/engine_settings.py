"""What SQLite itself does with random session ids, under different settings: a bare
``executemany`` of new rows into a ``sessions`` table (the service's schema) that already
holds ``--preload`` rows, in WAL mode, measured apart from the service.

    python bench/engine_settings.py [--preload 1000000] [--rows 200000] [variant ...]

Variants (default: the transaction sizes): ``base`` (the store's settings: 4 KiB pages,
8 MiB page cache, synchronous=FULL, a checkpoint every 10,000 pages, 1,000 rows a
transaction), ``txn10k``, ``txn50k``, ``txn100k`` (rows a transaction), ``sorted10k``
(the same, each transaction's rows sorted by id), ``cache256`` (256 MiB page cache),
``page1k``, ``page16k``, ``rowid`` (a rowid table with a unique index instead of
WITHOUT ROWID), ``sync_off`` (no fsync: not durable, for comparison only).
Prints sessions/s, bytes written to storage per row and the CPU share.
Used for the design notes in docs/architecture.md ("Ingest throughput on SQLite").
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = (
    "CREATE TABLE sessions (workspace_id INTEGER NOT NULL, session_id TEXT NOT NULL,"
    " external_id TEXT NOT NULL, app_key INTEGER NOT NULL, started_at INTEGER NOT NULL,"
    " ended_at INTEGER{key})"
)
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "txn10k": {"batch": 10_000},
    "txn50k": {"batch": 50_000},
    "txn100k": {"batch": 100_000},
    "sorted10k": {"batch": 10_000, "sort": True},
    "cache256": {"cache_kb": 262_144},
    "page1k": {"page": 1024},
    "page16k": {"page": 16_384},
    "rowid": {"rowid": True},
    "sync_off": {"sync": "OFF"},
}


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    hi = rng.integers(0, 2**63, n).tolist()
    lo = rng.integers(0, 2**32, n).tolist()
    return [f"{h:016x}{lo_:08x}" for h, lo_ in zip(hi, lo, strict=True)]


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def measure(path: str, preload: int, rows: int, batch: int = 1000, sort: bool = False,
            page: int = 4096, cache_kb: int = 8192, rowid: bool = False,
            sync: str = "FULL") -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={page}")
    if rowid:
        conn.execute(SCHEMA.format(key=""))
        conn.execute("CREATE UNIQUE INDEX sessions_key ON sessions (workspace_id, session_id)")
    else:
        conn.execute(SCHEMA.format(key=", PRIMARY KEY (workspace_id, session_id)") + " WITHOUT ROWID")
    rng = np.random.default_rng(1)
    # The preload, in key order, without durability: only the table's size matters here.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO sessions VALUES (1, ?, ?, 1, ?, NULL)",
                     ((sid, f"user{k % 100_000}", 1_700_000_000_000_000 + k)
                      for k, sid in enumerate(sorted(_ids(rng, preload)))))
    conn.execute("COMMIT")
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", f"synchronous={sync}", f"cache_size=-{cache_kb}",
                   "wal_autocheckpoint=10000"):
        conn.execute(f"PRAGMA {pragma}")
    new = [(1, sid, f"user{u}", a, s, None) for sid, u, a, s in zip(
        _ids(rng, rows), rng.integers(0, 100_000, rows).tolist(), rng.integers(1, 4, rows).tolist(),
        rng.integers(1_700_000_000_000_000, 1_700_300_000_000_000, rows).tolist(), strict=True)]
    written, began, cpu = _write_bytes(), time.perf_counter(), time.process_time()
    for start in range(0, rows, batch):
        chunk = new[start:start + batch]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", sorted(chunk) if sort else chunk)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - began
    result = {"rate": rows / seconds, "write_bytes_per_row": (_write_bytes() - written) / rows,
              "cpu_share": (time.process_time() - cpu) / seconds}
    conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preload", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("variants", nargs="*", default=["base", "txn10k", "txn50k", "txn100k"],
                        help=", ".join(VARIANTS))
    args = parser.parse_args()
    for name in args.variants:
        with tempfile.TemporaryDirectory(prefix="sessiontally-engine-") as folder:
            r = measure(os.path.join(folder, "s.sqlite3"), args.preload, args.rows, **VARIANTS[name])
        print(f"{name:10s} {r['rate']:10,.0f} rows/s  {r['write_bytes_per_row']:7,.0f} B/row written"
              f"  CPU {r['cpu_share']:.0%}", flush=True)


if __name__ == "__main__":
    main()
