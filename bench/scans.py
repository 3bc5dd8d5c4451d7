"""The baselines of "against scanning": a series computed by one GROUP BY over the raw
sessions, in SQLite (the service's own file) and in DuckDB (the same rows).

Each session's bucket is found from the series' bucket boundaries (UTC instants from
``sessiontally.buckets``, so local days with their DST lengths are exact) by a CASE
expression shaped as a balanced binary search: about log2(100) = 7 comparisons per row.
Of the formulations tried on DuckDB at 10^7 rows (this CASE; a range join to a VALUES
list of buckets; an ASOF join; ``timezone()`` + a cast to DATE), the CASE was the fastest
(0.45-0.55 s vs 1.3-2.9 s), so both engines get it. Neither has an index on started_at:
SQLite reads the workspace's rows in primary-key order (an index-free full scan of them),
DuckDB scans its columns.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from sessiontally import buckets


def series_edges_us(unit: str, length: int, ending: int, zone_name: str) -> tuple[list[str], list[int]]:
    """Labels and boundaries (microseconds) of the series the service answers."""
    series = buckets.series(unit, length, ending, buckets.load_zone(zone_name))
    edges = [b.start * 1_000_000 for b in series] + [series[-1].end * 1_000_000]
    return [b.label for b in series], edges


def bucket_case(edges: Sequence[int], column: str = "started_at") -> str:
    def node(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN {column} < {edges[mid]} THEN {node(lo, mid)} ELSE {node(mid, hi)} END"

    return node(0, len(edges) - 1)


def scan_sql(workspace_id: int, edges: Sequence[int], app_key: int = 0) -> str:
    app = f" AND app_key = {int(app_key)}" if app_key else ""
    return (
        f"SELECT {bucket_case(edges)} AS bucket, COUNT(*) FROM sessions"
        f" WHERE workspace_id = {int(workspace_id)}{app}"
        f" AND started_at >= {edges[0]} AND started_at < {edges[-1]}"
        " GROUP BY bucket ORDER BY bucket"
    )


def _counts(rows: list[tuple[int, int]], buckets_n: int) -> list[int]:
    out = [0] * buckets_n
    for bucket, count in rows:
        out[int(bucket)] = int(count)
    return out


def sqlite_scan(path: str, workspace_id: int, edges: Sequence[int]) -> tuple[float, list[int]]:
    """Seconds and counts of one scan, on a fresh connection (page cache 1 GiB; the OS
    cache holds the file)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA cache_size=-1048576")
    began = time.perf_counter()
    rows = conn.execute(scan_sql(workspace_id, edges)).fetchall()
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed, _counts(rows, len(edges) - 1)


class DuckScanner:
    def __init__(self, path: str) -> None:
        import duckdb
        from common import DUCKDB_MEMORY_LIMIT

        self.conn = duckdb.connect(path, read_only=True, config={"memory_limit": DUCKDB_MEMORY_LIMIT})
        self.threads = self.conn.execute("SELECT current_setting('threads')").fetchone()[0]

    def scan(self, workspace_id: int, edges: Sequence[int]) -> tuple[float, list[int]]:
        began = time.perf_counter()
        rows = self.conn.execute(scan_sql(workspace_id, edges)).fetchall()
        elapsed = time.perf_counter() - began
        return elapsed, _counts(rows, len(edges) - 1)

    def close(self) -> None:
        self.conn.close()
