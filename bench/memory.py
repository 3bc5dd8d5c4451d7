"""Part 5: peak memory of the server while ingesting, and of ``sessiontally import``.

    python bench/memory.py [--sessions 10000000] [--small 1000000] [--clients 16] [--repeats 1]

- Server: a fresh database; ``sessiontally serve`` (1 worker); ``--clients`` concurrent
  keep-alive clients post ``--sessions`` new sessions in batches of 1,000, streamed from an
  NDJSON file (bench/sessions_data.py). The server's process tree is sampled every 0.2 s
  (/proc/<pid>/status): the peak of the summed VmRSS, and the sum of the processes'
  VmHWM (their own peaks).
- Import: ``sessiontally import`` of an NDJSON file of ``--sessions`` lines and of one of
  ``--small`` lines (the first lines of the same data), each into a fresh database; the
  peak RSS is the kernel's ``ru_maxrss`` of the command (``wait4``, from a small launcher
  process: see common.run_measuring_rss).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from common import (
    RssSampler,
    load_average,
    log,
    machine,
    remove_database,
    run_measuring_rss,
    server,
    setup_workspace,
)
from ingest_http import bodies_from_lines, post_all
from ingest_rates import count_sessions, import_command, parse_import_seconds
from sessions_data import SessionData


def run(workdir: Path, sessions: int, small: int, clients: int, repeats: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    database = str(workdir / "memory.sqlite3")
    big_file = str(workdir / f"memory-{sessions}.ndjson")
    small_file = str(workdir / f"memory-{small}.ndjson")
    remove_database(database)
    store, ws, apps, _ = setup_workspace(database)
    store.close()
    data = SessionData([a.app_id for a in apps], [a.app_key for a in apps], sessions, seed=17)
    log(f"memory: writing {sessions:,} sessions as NDJSON")
    data.write_ndjson(big_file)
    with open(big_file, "rb") as src, open(small_file, "wb") as dst:
        for i, line in enumerate(src):
            if i >= small:
                break
            dst.write(line)
    result: dict[str, Any] = {"sessions": sessions, "small": small, "clients": clients,
                              "load_average_before": load_average(), "server": [], "import": {}}

    for _ in range(repeats):
        # Every fresh database gets a workspace whose apps have the file's app ids.
        for label, path, count in (("small", small_file, small), ("large", big_file, sessions)):
            workspace_id = _fresh_with_apps(database, apps)
            status, seconds, maxrss, stderr = run_measuring_rss(import_command(database, workspace_id, path))
            if status != 0:
                raise RuntimeError(f"import failed ({status}): {stderr[-500:]}")
            if count_sessions(database, workspace_id) != count:
                raise AssertionError("import: wrong number of sessions stored")
            internal = parse_import_seconds(stderr)
            result["import"].setdefault(label, []).append(
                {"lines": count, "rss_mib": maxrss, "seconds": seconds,
                 "rate": count / seconds, "internal_rate": count / internal if internal else None})
            log(f"  import of {count:,} lines: peak RSS {maxrss:.0f} MiB, {count / seconds:,.0f} sessions/s")
        workspace_id = _fresh_with_apps(database, apps)
        key = _key(database, workspace_id)
        began = time.perf_counter()
        with server(database) as srv, RssSampler(srv.pid, database=database) as rss, \
                open(big_file, "rb") as lines:
            recorded, duplicates, seconds = post_all(srv.base, key, bodies_from_lines(lines, 1000), clients)
        if recorded != sessions:
            raise AssertionError(f"server: {recorded:,} recorded")
        result["server"].append({"peak_rss_sum_mib": rss.peak_sum_mib, "hwm_sum_mib": rss.hwm_sum_mib,
                                 "processes": len(rss.hwm), "threads": rss.max_threads,
                                 "connections": rss.max_connections, "seconds": seconds,
                                 "rate": sessions / seconds})
        log(f"  server ingesting {sessions:,} over HTTP: peak RSS {rss.peak_sum_mib:.0f} MiB "
            f"(VmHWM sum {rss.hwm_sum_mib:.0f} MiB, {rss.max_threads} threads, {rss.max_connections} "
            f"connections), {sessions / seconds:,.0f} sessions/s, "
            f"{time.perf_counter() - began:.0f} s")
    result["load_average_after"] = load_average()
    remove_database(database)
    os.remove(big_file)
    os.remove(small_file)
    return result


def _fresh_with_apps(database: str, apps: list[Any]) -> int:
    """A fresh database whose workspace has apps with the given app ids (those of the file)."""
    from sessiontally import admin
    from sessiontally.store import open_store

    remove_database(database)
    store = open_store(database)
    store.migrate()
    ws = admin.create_workspace(store, "memory", "America/New_York", 10**9)
    for app in apps:
        store.create_app(ws.workspace_id, app.app_id, app.name, app.platform)
    store.close()
    return ws.workspace_id


def _key(database: str, workspace_id: int) -> str:
    from sessiontally import admin, keys
    from sessiontally.store import open_store

    store = open_store(database)
    ws = store.get_workspace(workspace_id)
    assert ws is not None
    key = admin.create_key(store, ws, "bench", keys.PERMISSIONS).key
    store.close()
    return key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    run(Path(args.workdir), args.sessions, args.small, args.clients, args.repeats)


if __name__ == "__main__":
    main()
