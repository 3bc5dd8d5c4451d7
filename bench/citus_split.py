"""What splitting one workspace over several nodes would cost (issue 21, item 5;
docs/operations.md, "A workspace larger than one node"). By hand, not part of run.py:

    python bench/citus_split.py [--citus URL] [--rows 200000] [--calls 300]

On the Citus cluster named by ``--citus`` (default ``SESSIONTALLY_TEST_CITUS``), in a
fresh database: two copies of the quarter-hour rollup's shape, one distributed by
``workspace_id`` (as shipped: a workspace's rows on one shard) and one by ``quarter``
(a workspace's rows over every shard, on both workers), each with ``--rows`` rows of one
workspace. Then, on each, p50/p99 of ``--calls``:

* the series read: 100 daily sums over the 100 days ending at the last quarter;
* a recording transaction's rollup upsert: 100 quarters' increments in one statement
  (one shard, against several shards and so a two-phase commit over both workers);
* a point read of one row by its full key.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SHAPE = ("(workspace_id BIGINT NOT NULL, app_key INTEGER NOT NULL, segment_key INTEGER NOT NULL,"
         " quarter BIGINT NOT NULL, sessions BIGINT NOT NULL,"
         " PRIMARY KEY (workspace_id, app_key, segment_key, quarter))")


def _timed(conn: Any, calls: int, statement: str, params: Any) -> tuple[float, float]:
    samples = []
    for n in range(calls // 10 + calls):
        began = time.perf_counter()
        with conn.transaction():
            conn.execute(statement, params(n)).fetchall() if "SELECT" in statement[:7] else \
                conn.execute(statement, params(n))
        if n >= calls // 10:
            samples.append(time.perf_counter() - began)
    samples.sort()
    return samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99)] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citus", default=os.environ.get("SESSIONTALLY_TEST_CITUS", ""))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    if not args.citus:
        raise SystemExit("--citus or SESSIONTALLY_TEST_CITUS: a coordinator (tests/citus_cluster.py)")
    os.environ["SESSIONTALLY_TEST_CITUS"] = args.citus
    import db_support
    import psycopg

    url = db_support._make_citus_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for table, column in (("by_workspace", "workspace_id"), ("by_quarter", "quarter")):
                conn.execute(f"CREATE TABLE {table} {SHAPE}")
                conn.execute("SELECT create_distributed_table(%s, %s)", (table, column))
                conn.execute(f"INSERT INTO {table} SELECT 1, 0, 0, q, 1 + q %% 7"
                             f" FROM generate_series(1, %s) AS q", (args.rows,))
                conn.execute(f"ANALYZE {table}")
            last = args.rows
            print("| measure | one shard (by workspace_id) | every shard (by quarter) |")
            print("|---|---:|---:|")
            for label, template, params in (
                ("100-day series, 100 daily sums (ms)",
                 "SELECT quarter / 96, SUM(sessions) FROM {t} WHERE workspace_id = 1 AND app_key = 0"
                 " AND segment_key = 0 AND quarter >= %s AND quarter < %s GROUP BY 1",
                 lambda n: (last - 9600 - n % 50, last - n % 50)),
                ("upsert of 100 quarters in a transaction (ms)",
                 "INSERT INTO {t} SELECT 1, 0, 0, q, 1 FROM unnest(%s::bigint[]) AS q"
                 " ON CONFLICT (workspace_id, app_key, segment_key, quarter)"
                 " DO UPDATE SET sessions = {t}.sessions + excluded.sessions",
                 lambda n: ([last - 9600 + (n * 97 + i * 96) % 9600 for i in range(100)],)),
                ("point read by the full key (ms)",
                 "SELECT sessions FROM {t} WHERE workspace_id = 1 AND app_key = 0 AND segment_key = 0"
                 " AND quarter = %s",
                 lambda n: (1 + n * 7919 % last,)),
            ):
                one = _timed(conn, args.calls, template.format(t="by_workspace"), params)
                spread = _timed(conn, args.calls, template.format(t="by_quarter"), params)
                print(f"| {label}: p50 / p99 | {one[0]:.2f} / {one[1]:.2f} | {spread[0]:.2f} / {spread[1]:.2f} |")
    finally:
        db_support._drop_citus_database(url.rpartition("/")[2])


if __name__ == "__main__":
    main()
