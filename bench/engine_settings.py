"""What SQLite itself does with random session ids, under different settings: a bare
``executemany`` of new rows into a ``sessions`` table (the service's schema) that already
holds ``--preload`` rows, in WAL mode, measured apart from the service.

    python bench/engine_settings.py [--preload 1000000] [--rows 200000] [variant ...]

Variants (default: the transaction sizes): ``base`` (4 KiB pages, 8 MiB page cache,
synchronous=FULL, a checkpoint every 10,000 pages - the store's settings until it moved
to 100,000 pages, kept so that figures stay comparable - 1,000 rows a transaction),
``txn10k``, ``txn50k``, ``txn100k``, ``txn200k`` (rows a transaction), ``sorted`` and
``sorted10k`` (each transaction's rows sorted by id), ``cache32`` ... ``cache256`` (page
cache in MiB),
``page1k``, ``page16k``, ``rowid`` (a rowid table with a unique index instead of
WITHOUT ROWID), ``sync_off`` (no fsync: not durable, for comparison only), ``ckpt10k`` ...
``ckpt200k`` (the WAL checkpoint interval, in pages; ``ckpt100k`` is the store's).
Every variant's time ends with the WAL copied back (``wal_checkpoint(TRUNCATE)``).

Layouts that drop the random-key B-tree of full rows (bench/RESULTS.md, "Design
measurements", "Layouts measured and not adopted"):

- ``log``: the rows appended to a rowid table with **no** uniqueness at all. Not a valid
  design (duplicates would count twice); the cost of storing the rows themselves, the
  ceiling of any layout;
- ``hashkey``: that log plus a key index of 8-byte hashes of the session id
  (``h INTEGER PRIMARY KEY, seq``), looked up and inserted row by row;
- ``lsm``: that log plus the hashed keys in leveled sorted runs (a log-structured merge
  tree on SQLite tables): new keys go to a small level 0; a level over its capacity
  (32,768 keys, x8 per level) is merged into the next in the same transaction; a batch
  is probed against every non-empty level in one statement per level;
- ``lsmrows``: no log and no hash: the rows themselves in leveled runs keyed by
  ``(workspace_id, session_id)``, merged the same way (each level is a WITHOUT ROWID
  table like ``sessions``).

Prints sessions/s, bytes written to storage per row and the CPU share (and, for ``lsm``,
microseconds per row by step). Used for the design measurements in bench/RESULTS.md
("Ingest throughput on SQLite").
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
    "txn200k": {"batch": 200_000},
    "ckpt10k": {"checkpoint": 10_000},
    "ckpt30k": {"checkpoint": 30_000},
    "ckpt50k": {"checkpoint": 50_000},
    "ckpt100k": {"checkpoint": 100_000},
    "ckpt200k": {"checkpoint": 200_000},
    "sorted": {"sort": True},
    "sorted10k": {"batch": 10_000, "sort": True},
    "cache32": {"cache_kb": 32_768},
    "cache64": {"cache_kb": 65_536},
    "cache128": {"cache_kb": 131_072},
    "cache256": {"cache_kb": 262_144},
    "page1k": {"page": 1024},
    "page16k": {"page": 16_384},
    "rowid": {"rowid": True},
    "sync_off": {"sync": "OFF"},
    "log": {"layout": "log"},
    "hashkey": {"layout": "hashkey"},
    "lsm": {"layout": "lsm"},
    "lsmrows": {"layout": "lsmrows"},
}
LOG_SCHEMA = SCHEMA.format(key="")
LSM_LEVELS, LSM_LEVEL0_KEYS, LSM_FANOUT = 5, 32_768, 8


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    hi = rng.integers(0, 2**63, n).tolist()
    lo = rng.integers(0, 2**32, n).tolist()
    return [f"{h:016x}{lo_:08x}" for h, lo_ in zip(hi, lo, strict=True)]


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def key_hash(workspace_id: int, session_id: str) -> int:
    """A 64-bit hash of (workspace, session id), as SQLite's signed INTEGER. A match must
    still be checked against the stored row (``seq``): distinct ids may share a hash."""
    digest = hashlib.blake2b(session_id.encode(), digest_size=8,
                             salt=workspace_id.to_bytes(8, "little") + bytes(8)).digest()
    return int.from_bytes(digest, "little", signed=True)


def _create(conn: sqlite3.Connection, layout: str, rowid: bool) -> None:
    if layout == "keyed" and rowid:
        conn.execute(SCHEMA.format(key=""))
        conn.execute("CREATE UNIQUE INDEX sessions_key ON sessions (workspace_id, session_id)")
    elif layout == "keyed":
        conn.execute(SCHEMA.format(key=", PRIMARY KEY (workspace_id, session_id)") + " WITHOUT ROWID")
    else:
        conn.execute(LOG_SCHEMA)
    if layout == "hashkey":
        conn.execute("CREATE TABLE session_keys (h INTEGER PRIMARY KEY, seq INTEGER NOT NULL)")
    if layout == "lsm":
        for level in range(LSM_LEVELS):
            conn.execute(f"CREATE TABLE session_keys_{level} (h INTEGER NOT NULL, seq INTEGER NOT NULL,"
                         " PRIMARY KEY (h, seq)) WITHOUT ROWID")
    if layout == "lsmrows":
        conn.execute("DROP TABLE sessions")
        for level in range(LSM_LEVELS):
            conn.execute(SCHEMA.replace("TABLE sessions", f"TABLE sessions_{level}").format(
                key=", PRIMARY KEY (workspace_id, session_id)") + " WITHOUT ROWID")


def _preload(conn: sqlite3.Connection, layout: str, ids: list[str]) -> dict[int, int]:
    """The preload rows (and their keys, in the deepest level that holds them): key
    order for the keyed layouts, arrival order for the log. Returns keys per LSM level."""
    rows = ((sid, f"user{k % 100_000}", 1_700_000_000_000_000 + k)
            for k, sid in enumerate(sorted(ids) if layout in ("keyed", "lsmrows") else ids))
    levels = dict.fromkeys(range(LSM_LEVELS), 0)
    if layout == "lsmrows":
        level = _level_for(len(ids))
        conn.executemany(f"INSERT INTO sessions_{level} VALUES (1, ?, ?, 1, ?, NULL)", rows)
        levels[level] = len(ids)
        return levels
    conn.executemany("INSERT INTO sessions VALUES (1, ?, ?, 1, ?, NULL)", rows)
    keys = sorted((key_hash(1, sid), seq) for seq, sid in enumerate(ids, start=1))
    if layout == "hashkey":
        conn.executemany("INSERT INTO session_keys VALUES (?, ?)", keys)
    if layout == "lsm":
        level = _level_for(len(keys))
        conn.executemany(f"INSERT INTO session_keys_{level} VALUES (?, ?)", keys)
        levels[level] = len(keys)
    return levels


def _level_for(keys: int) -> int:
    """The first level whose capacity holds ``keys``."""
    level, capacity = 0, LSM_LEVEL0_KEYS
    while capacity < keys and level < LSM_LEVELS - 1:
        level, capacity = level + 1, capacity * LSM_FANOUT
    return level


def _write_log(conn: sqlite3.Connection, chunk: list[tuple[Any, ...]]) -> None:
    conn.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", chunk)


def _write_hashkey(conn: sqlite3.Connection, chunk: list[tuple[Any, ...]]) -> None:
    """Row by row: insert the hashed key; a conflict is checked against the stored row."""
    (seq,) = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM sessions").fetchone()
    fresh = []
    for row in chunk:
        h = key_hash(row[0], row[1])
        if conn.execute("INSERT INTO session_keys VALUES (?, ?) ON CONFLICT DO NOTHING",
                        (h, seq + 1)).rowcount:
            seq += 1
            fresh.append((seq, *row))
        # (a conflict would be checked against the stored row: none here, the ids are new)
    conn.executemany("INSERT INTO sessions (rowid, workspace_id, session_id, external_id, app_key,"
                     " started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?)", fresh)


class _LsmRows:
    """The rows themselves in leveled runs keyed by (workspace_id, session_id)."""

    def __init__(self, levels: dict[int, int]) -> None:
        self.levels = levels

    def write(self, conn: sqlite3.Connection, chunk: list[tuple[Any, ...]]) -> None:
        batch: dict[str, tuple[Any, ...]] = {}
        for row in chunk:
            batch.setdefault(row[1], row)
        probe = json.dumps(list(batch))
        for level, keys in self.levels.items():
            if keys:
                for (sid,) in conn.execute(f"SELECT session_id FROM sessions_{level} WHERE workspace_id = 1"
                                           " AND session_id IN (SELECT value FROM json_each(?))", (probe,)):
                    del batch[sid]
        conn.executemany("INSERT INTO sessions_0 VALUES (?, ?, ?, ?, ?, ?)", list(batch.values()))
        self.levels[0] += len(batch)
        capacity = LSM_LEVEL0_KEYS
        for level in range(LSM_LEVELS - 1):
            if self.levels[level] > capacity:
                conn.execute(f"INSERT INTO sessions_{level + 1} SELECT * FROM sessions_{level}")
                conn.execute(f"DELETE FROM sessions_{level}")
                self.levels[level + 1] += self.levels[level]
                self.levels[level] = 0
            capacity *= LSM_FANOUT


class _Lsm:
    """The hashed keys in leveled runs; ``steps`` adds up seconds per step."""

    def __init__(self, levels: dict[int, int]) -> None:
        self.levels = levels
        self.steps: dict[str, float] = dict.fromkeys(("hash", "probe", "log", "level 0", "merge"), 0.0)

    def write(self, conn: sqlite3.Connection, chunk: list[tuple[Any, ...]]) -> None:
        clock = time.perf_counter
        t0 = clock()
        batch: dict[int, tuple[Any, ...]] = {}
        for row in chunk:
            batch.setdefault(key_hash(row[0], row[1]), row)
        t1 = clock()
        probe = json.dumps(list(batch))
        for level, keys in self.levels.items():
            if keys:
                for h, _seq in conn.execute(f"SELECT h, seq FROM session_keys_{level}"
                                            " WHERE h IN (SELECT value FROM json_each(?))", (probe,)):
                    batch.pop(h, None)  # (would be checked against the stored row)
        t2 = clock()
        (seq,) = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM sessions").fetchone()
        conn.executemany("INSERT INTO sessions (rowid, workspace_id, session_id, external_id, app_key,"
                         " started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(seq + k, *row) for k, row in enumerate(batch.values(), start=1)])
        t3 = clock()
        conn.executemany("INSERT INTO session_keys_0 VALUES (?, ?)",
                         [(h, seq + k) for k, h in enumerate(batch, start=1)])
        self.levels[0] += len(batch)
        t4 = clock()
        capacity = LSM_LEVEL0_KEYS
        for level in range(LSM_LEVELS - 1):
            if self.levels[level] > capacity:  # merge into the next level (sorted input)
                conn.execute(f"INSERT INTO session_keys_{level + 1} SELECT h, seq FROM session_keys_{level}")
                conn.execute(f"DELETE FROM session_keys_{level}")
                self.levels[level + 1] += self.levels[level]
                self.levels[level] = 0
            capacity *= LSM_FANOUT
        t5 = clock()
        for step, seconds in zip(self.steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            self.steps[step] += seconds


def measure(path: str, preload: int, rows: int, batch: int = 1000, sort: bool = False,
            page: int = 4096, cache_kb: int = 8192, rowid: bool = False,
            sync: str = "FULL", layout: str = "keyed", checkpoint: int = 10_000) -> dict[str, Any]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size={page}")
    _create(conn, layout, rowid)
    rng = np.random.default_rng(1)
    # The preload without durability: only the table's size matters here.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    conn.execute("BEGIN")
    levels = _preload(conn, layout, _ids(rng, preload))
    conn.execute("COMMIT")
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", f"synchronous={sync}", f"cache_size=-{cache_kb}",
                   f"wal_autocheckpoint={checkpoint}"):
        conn.execute(f"PRAGMA {pragma}")
    new = [(1, sid, f"user{u}", a, s, None) for sid, u, a, s in zip(
        _ids(rng, rows), rng.integers(0, 100_000, rows).tolist(), rng.integers(1, 4, rows).tolist(),
        rng.integers(1_700_000_000_000_000, 1_700_300_000_000_000, rows).tolist(), strict=True)]
    lsm = _Lsm(levels)
    write = {"keyed": _write_log, "log": _write_log, "hashkey": _write_hashkey, "lsm": lsm.write,
             "lsmrows": _LsmRows(levels).write}[layout]
    written, began, cpu = _write_bytes(), time.perf_counter(), time.process_time()
    for start in range(0, rows, batch):
        chunk = new[start:start + batch]
        conn.execute("BEGIN IMMEDIATE")
        write(conn, sorted(chunk) if sort else chunk)
        conn.execute("COMMIT")
    # What the WAL still holds is copied back inside the timed window: a longer checkpoint
    # interval must not be credited with the work it merely postpones.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    seconds = time.perf_counter() - began
    result: dict[str, Any] = {
        "rate": rows / seconds, "write_bytes_per_row": (_write_bytes() - written) / rows,
        "cpu_share": (time.process_time() - cpu) / seconds,
    }
    if layout == "lsm":
        result["us_per_row"] = {step: round(s / rows * 1e6, 2) for step, s in lsm.steps.items()}
    conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preload", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("variants", nargs="*", default=["base", "txn10k", "txn50k", "txn100k"],
                        help=", ".join(VARIANTS) + "; join variants with + to combine them"
                             " (ckpt100k+cache64)")
    args = parser.parse_args()
    for name in args.variants:
        settings = {k: v for part in name.split("+") for k, v in VARIANTS[part].items()}
        with tempfile.TemporaryDirectory(prefix="sessiontally-engine-") as folder:
            r = measure(os.path.join(folder, "s.sqlite3"), args.preload, args.rows, **settings)
        print(f"{name:10s} {r['rate']:10,.0f} rows/s  {r['write_bytes_per_row']:7,.0f} B/row written"
              f"  CPU {r['cpu_share']:.0%}" + (f"  µs/row {r['us_per_row']}" if "us_per_row" in r else ""),
              flush=True)


if __name__ == "__main__":
    main()
