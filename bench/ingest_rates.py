"""Part 4: ingest rates against the engine's limit, at the same table sizes.

    python bench/ingest_rates.py [--preload 1000000] [--sessions 1000000] [--repeats 3]

Every measurement starts from a copy of the same database: one workspace (3 apps, no
tracked segment) already holding ``--preload`` sessions (bulk-loaded), and inserts the
same ``--sessions`` new sessions (bench/sessions_data.py: random 24-hex ids, so inserts
land all over the B-tree, started_at spread over the last 3 days). So each method grows
the table from ``preload`` to ``preload + sessions`` rows. Methods, interleaved within
each repeat so that ratios compare figures taken minutes apart:

- ``bare executemany``: the rows into the same schema on a connection opened by the
  store itself, so with its settings (WAL, ``synchronous=FULL``, page cache, checkpoint
  interval; recorded in the results), ``BEGIN IMMEDIATE`` ... ``COMMIT`` per 1,000 rows
  (also per 10,000 rows, and per the importer's batch size, 50,000) - the engine's limit;
  and per 50,000 rows sorted by session id, as the store inserts ``import``'s batches:
  the engine's limit for the way ``import`` writes;
- HTTP: POST /sessions/track, 1,000 sessions a request, 1, 4 and 16 concurrent clients,
  against ``sessiontally serve`` (1 worker unless ``--workers``), and 4 clients against 2
  workers (``--more-workers 4:2``; the README's setting); the POSTs' p99 and slowest
  latency are kept too;
- ``sessiontally import`` of the same sessions as an NDJSON file (the command's wall
  time, Python start-up included).

Every figure includes copying what the WAL still holds back into the database at the end
(``PRAGMA wal_checkpoint(TRUNCATE)`` after the bare insert and after the last POST;
``import`` does it when it closes): a longer checkpoint interval postpones that work, and
must not be credited with it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from common import (
    Dataset,
    RssSampler,
    bulk_load,
    final_checkpoint,
    load_average,
    log,
    machine,
    remove_database,
    run_measuring_rss,
    server,
    setup_workspace,
)
from ingest_http import bodies_from_lines, post_all
from sessions_data import SessionData

from sessiontally import importer
from sessiontally.store.sqlite import SqliteStore

SORTED_BARE = f"bare executemany, {importer.BATCH_SIZE:,} per transaction, sorted by id"
STORE_PRAGMAS = ("journal_mode", "synchronous", "cache_size", "wal_autocheckpoint", "page_size")


def store_pragmas(database: str) -> dict[str, Any]:
    """The settings of the connection the store writes through (SqliteStore.writer)."""
    store = SqliteStore(database)
    conn = store.connections.writer()
    values = {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in STORE_PRAGMAS}
    store.close()
    return values


def bare_executemany(database: str, rows: list[tuple[Any, ...]], batch: int,
                     sort: bool = False) -> float:
    """Seconds to insert ``rows``, ``batch`` rows a transaction, on a connection opened by
    the store itself, so with exactly its settings (WAL, synchronous=FULL, page cache,
    checkpoint interval): the same durability, none of the service's work. ``sort``: each
    transaction's rows in session-id order (sorted inside the timed work), as the store
    inserts a batch as large as ``import``'s."""
    store = SqliteStore(database)
    conn = store.connections.writer()
    sql = ("INSERT INTO sessions (workspace_id, session_id, external_id, app_key, started_at, ended_at)"
           " VALUES (?, ?, ?, ?, ?, ?)")
    began = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        chunk = rows[start:start + batch]
        conn.executemany(sql, sorted(chunk, key=itemgetter(1)) if sort else chunk)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # the WAL copied back: see final_checkpoint
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


def count_sessions(database: str, workspace_id: int) -> int:
    conn = sqlite3.connect(database)
    (n,) = conn.execute("SELECT COUNT(*) FROM sessions WHERE workspace_id = ?", (workspace_id,)).fetchone()
    conn.close()
    return int(n)


def import_command(database: str, workspace_id: int, path: str) -> list[str]:
    return [sys.executable, "-m", "sessiontally", "import", "--database", database,
            "--workspace", str(workspace_id), path]


def parse_import_seconds(stderr: str) -> float | None:
    match = re.search(r"lines in ([0-9.]+) s", stderr)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class IngestTemplate:
    template: str  # the database every measurement starts from a copy of
    ndjson: str  # the new sessions, a line each
    workspace_id: int
    key: str  # an API key with every permission
    data: SessionData
    bodies: list[bytes]  # the new sessions as POST /sessions/track bodies of 1,000


def ingest_template(workdir: Path, name: str, preload: int, sessions: int) -> IngestTemplate:
    """``<name>-template.sqlite3``: one workspace (3 apps) holding ``preload`` bulk-loaded
    sessions; and ``sessions`` new ones (seed 13) as NDJSON and as request bodies."""
    workdir.mkdir(parents=True, exist_ok=True)
    template = str(workdir / f"{name}-template.sqlite3")
    ndjson = str(workdir / f"{name}-{sessions}.ndjson")
    remove_database(template)
    store, ws, apps, key = setup_workspace(template)
    store.close()
    if preload:
        bulk_load(template, Dataset(ws.workspace_id, tuple(a.app_key for a in apps), preload,
                                    int(time.time()) * 1_000_000, seed=11))
    data = SessionData([a.app_id for a in apps], [a.app_key for a in apps], sessions, seed=13)
    log(f"{name}: template with {preload:,} sessions; writing {sessions:,} new sessions as NDJSON")
    data.write_ndjson(ndjson)
    with open(ndjson, "rb") as f:
        bodies = list(bodies_from_lines(f, 1000))
    return IngestTemplate(template, ndjson, ws.workspace_id, key, data, bodies)


def run(workdir: Path, preload: int, sessions: int, repeats: int, clients: list[int],
        workers: int = 1, more_workers: tuple[tuple[int, int], ...] = (),
        bare_batches: tuple[int, ...] = (1000, 10_000, importer.BATCH_SIZE)) -> dict[str, Any]:
    """``more_workers``: (clients, workers) pairs measured besides ``clients`` with ``workers``."""
    made = ingest_template(workdir, "ingest", preload, sessions)
    template, ndjson, workspace_id, key, bodies = (made.template, made.ndjson, made.workspace_id,
                                                   made.key, made.bodies)
    database = str(workdir / "ingest.sqlite3")
    rows = list(made.data.rows(workspace_id))
    result: dict[str, Any] = {
        "preload": preload, "sessions": sessions, "workers": workers, "load_average_before": load_average(),
        "rates": {}, "server_rss_mib": {}, "import_rss_mib": [], "import_internal_rate": [],
        "store_pragmas": store_pragmas(template), "final_checkpoint": True,
    }
    rates: dict[str, list[float]] = result["rates"]

    def fresh() -> None:
        remove_database(database)
        shutil.copyfile(template, database)

    def check(method: str) -> None:
        n = count_sessions(database, workspace_id)
        if n != preload + sessions:
            raise AssertionError(f"{method}: {n:,} sessions stored, expected {preload + sessions:,}")

    for rep in range(repeats):
        for batch in bare_batches:
            fresh()
            seconds = bare_executemany(database, rows, batch)
            check("bare")
            rates.setdefault(f"bare executemany, {batch:,} per transaction", []).append(sessions / seconds)
        fresh()
        seconds = bare_executemany(database, rows, importer.BATCH_SIZE, sort=True)
        check("bare, sorted")
        rates.setdefault(SORTED_BARE, []).append(sessions / seconds)
        pairs = [(c, workers) for c in clients]
        for n_clients, n_workers in pairs + [pair for pair in more_workers if pair not in pairs]:
            fresh()
            latencies: list[float] = []
            with server(database, workers=n_workers) as srv, RssSampler(srv.pid, database=database) as rss:
                recorded, duplicates, seconds = post_all(srv.base, key, bodies, n_clients, latencies)
                seconds += final_checkpoint(database)
            if recorded != sessions or duplicates:
                raise AssertionError(f"HTTP: {recorded:,} recorded, {duplicates:,} duplicates")
            check("http")
            name = f"HTTP, {n_clients} client{'s' if n_clients > 1 else ''}"
            if n_workers != workers:
                name += f", {n_workers} workers"
            rates.setdefault(name, []).append(sessions / seconds)
            result["server_rss_mib"].setdefault(name, []).append(rss.hwm_sum_mib)
            result.setdefault("server_connections", {}).setdefault(name, []).append(rss.max_connections)
            latencies.sort()
            result.setdefault("post_ms", {}).setdefault(name, []).append(
                (latencies[int(len(latencies) * 0.99)] * 1000, latencies[-1] * 1000))
        fresh()
        status, seconds, maxrss, stderr = run_measuring_rss(import_command(database, workspace_id, ndjson))
        if status != 0:
            raise RuntimeError(f"import failed ({status}): {stderr[-500:]}")
        check("import")
        rates.setdefault("sessiontally import", []).append(sessions / seconds)
        result["import_rss_mib"].append(maxrss)
        internal = parse_import_seconds(stderr)
        if internal:
            result["import_internal_rate"].append(sessions / internal)
        log(f"  repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()))
    result["load_average_after"] = load_average()
    remove_database(database)
    remove_database(template)
    os.remove(ndjson)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preload", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--more-workers", nargs="*", default=["4:2"], metavar="CLIENTS:WORKERS")
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    more = tuple((int(c), int(w)) for c, w in (pair.split(":") for pair in args.more_workers))
    res = run(Path(args.workdir), args.preload, args.sessions, args.repeats, args.clients, args.workers, more)
    for name, values in res["rates"].items():
        print(f"  {name:<45} {' '.join(f'{v:,.0f}' for v in values)} sessions/s")


if __name__ == "__main__":
    main()
