"""What recording one session costs in-process, in CPU instructions (by hand, not part of
run.py): the A/B measure for a change to the ingest path's own work.

    python bench/ingest_cost.py [--sessions 20000]

Two measures, each on the same generated sessions (bench/sessions_data.py):

- ``import``: ``sessiontally import`` of an NDJSON file into a fresh database (the
  importer, the service's validation and the store's recording transaction, SQLite
  included), under ``valgrind --tool=callgrind``, less the same run on an empty file,
  over the number of sessions. Like request_cost.py, the count does not move with what
  else the shared machine is doing; it leaves out the kernel's work (fsync, page I/O)
  and the cache misses of a large table, which part 4 of run.py measures in seconds;
- ``stages``: microseconds per session of each pure-Python stage before the database
  (JSON parsing, validation, building the rows, the rollup's increments), timed
  in-process without valgrind: where the Python part of the cost is.

Needs valgrind (``apt-get install valgrind``) for the first measure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def _import(database: str, workspace_id: int, path: str) -> None:
    from sessiontally import importer
    from sessiontally.store import open_store

    store = open_store(database)
    workspace = store.get_workspace(workspace_id)
    assert workspace is not None
    summary = importer.import_file(store, workspace, path)
    if summary.rejected:
        raise RuntimeError(f"{summary.rejected} lines rejected")
    store.close()


def _workspace(folder: str) -> tuple[str, int, list[str], list[int]]:
    sys.path.insert(0, str(BENCH))
    from common import setup_workspace

    database = str(Path(folder) / "template.sqlite3")
    store, ws, apps, _key = setup_workspace(database)
    store.close()
    return database, ws.workspace_id, [a.app_id for a in apps], [a.app_key for a in apps]


def instructions_per_session(sessions: int) -> int:
    from common import callgrind_instructions
    from sessions_data import SessionData

    totals = []
    with tempfile.TemporaryDirectory(prefix="sessiontally-ingest-cost-") as folder:
        template, workspace_id, app_ids, app_keys = _workspace(folder)
        data = str(Path(folder) / "sessions.ndjson")
        SessionData(app_ids, app_keys, sessions, seed=13).write_ndjson(data)
        empty = str(Path(folder) / "empty.ndjson")
        Path(empty).write_bytes(b"")
        for n, path in ((0, empty), (sessions, data)):
            database = str(Path(folder) / f"run-{n}.sqlite3")
            shutil.copyfile(template, database)
            totals.append(callgrind_instructions(
                [sys.executable, __file__, "--child", database, str(workspace_id), path]))
    return (totals[1] - totals[0]) // sessions


def stages(sessions: int) -> dict[str, float]:
    import orjson
    from sessions_data import SessionData

    from sessiontally import ingest
    from sessiontally.store.base import NewSession
    from sessiontally.store.rollup import coarse_increments, rollup_increments

    with tempfile.TemporaryDirectory(prefix="sessiontally-ingest-cost-") as folder:
        path = str(Path(folder) / "sessions.ndjson")
        app_ids = ["a0", "a1", "a2"]
        SessionData(app_ids, [1, 2, 3], sessions, seed=13).write_ndjson(path)
        lines = Path(path).read_bytes().splitlines()
    app_keys = {app_id: key for key, app_id in enumerate(app_ids, start=1)}
    now_us = int(time.time() * 1_000_000)
    clock = time.process_time
    t0 = clock()
    items = [orjson.loads(line) for line in lines]
    t1 = clock()
    valid, _errors = ingest.validate_batch(items, now_us)
    t2 = clock()
    rows = [NewSession(s.session_id, s.external_id, app_keys[s.app_id], s.started_at, s.ended_at)
            for _index, s in valid]
    t3 = clock()
    coarse_increments(rollup_increments(rows))
    t4 = clock()
    per = 1e6 / len(lines)
    return {"parse": (t1 - t0) * per, "validate": (t2 - t1) * per, "rows": (t3 - t2) * per,
            "rollup": (t4 - t3) * per}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        database, workspace_id, path = sys.argv[2:5]
        _import(database, int(workspace_id), path)
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--stage-sessions", type=int, default=200_000)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    best = min((stages(args.stage_sessions) for _ in range(3)), key=lambda s: sum(s.values()))
    print("stages (µs per session, best of 3): "
          + ", ".join(f"{name} {us:.2f}" for name, us in best.items())
          + f"; total {sum(best.values()):.2f}", flush=True)
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    print(f"import: {instructions_per_session(args.sessions):,} instructions per session", flush=True)


if __name__ == "__main__":
    main()
