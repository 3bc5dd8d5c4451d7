"""Ingest rates of two versions of the code, in one run (by hand, not part of run.py): the
A/B for a change to the recording path, over real HTTP and through ``import``.

    git worktree add --detach /tmp/base <commit>
    python bench/compare_ingest.py --base /tmp/base/src --new src [--rounds 3] [--clients 4]

Every measurement starts from a copy of one template, as part 4 does (``--preload``
stored sessions, then ``--sessions`` new ones from bench/sessions_data.py). Each round
runs, one after another, ``sessiontally serve`` with ``--base`` first on its PYTHONPATH
posting the sessions (1,000 a request, ``--clients`` connections), the same with
``--new``, then ``sessiontally import`` of the same sessions with each (``--no-import``
skips it). An HTTP figure includes a final ``wal_checkpoint(TRUNCATE)`` once the posts
are done (``import`` checkpoints when it closes), so that a setting that postpones work
is charged for it; it also prints the POSTs' p99 and slowest latency. It prints each
figure, then the medians. Alternating within a round is what
makes the comparison fair on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import Dataset, bulk_load, final_checkpoint, log, remove_database, server, setup_workspace
from ingest_http import bodies_from_lines, post_all
from sessions_data import SessionData


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the src/ folder of the base version")
    parser.add_argument("--new", required=True, help="the src/ folder of the new version")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--preload", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    template, database = str(workdir / "compare-template.sqlite3"), str(workdir / "compare.sqlite3")
    ndjson = str(workdir / "compare.ndjson")
    remove_database(template)
    store, ws, apps, key = setup_workspace(template)
    store.close()
    if args.preload:
        bulk_load(template, Dataset(ws.workspace_id, tuple(a.app_key for a in apps), args.preload,
                                    int(time.time()) * 1_000_000, seed=11))
    data = SessionData([a.app_id for a in apps], [a.app_key for a in apps], args.sessions, seed=13)
    data.write_ndjson(ndjson)
    with open(ndjson, "rb") as f:
        bodies = list(bodies_from_lines(f, 1000))
    versions = {"base": str(Path(args.base).resolve()), "new": str(Path(args.new).resolve())}
    methods = [f"HTTP, {args.clients} clients"] + ([] if args.no_import else ["import"])
    rates: dict[tuple[str, str], list[float]] = {}
    worst: dict[tuple[str, str], list[tuple[float, float]]] = {}  # POST p99 and max, seconds
    inherited = os.environ.get("PYTHONPATH", "")

    def fresh() -> None:
        remove_database(database)
        shutil.copyfile(template, database)

    try:
        for round_ in range(1, args.rounds + 1):
            for method in methods:
                for name, src in versions.items():
                    os.environ["PYTHONPATH"] = src + (os.pathsep + inherited if inherited else "")
                    fresh()
                    if method == "import":
                        began = time.perf_counter()
                        argv = [sys.executable, "-m", "sessiontally", "import", "--database", database,
                                "--workspace", str(ws.workspace_id), ndjson]
                        subprocess.run(argv, check=True, capture_output=True)
                        rate = args.sessions / (time.perf_counter() - began)
                    else:
                        latencies: list[float] = []
                        with server(database) as srv:
                            recorded, _duplicates, seconds = post_all(srv.base, key, bodies, args.clients,
                                                                      latencies)
                            seconds += final_checkpoint(database)
                        if recorded != args.sessions:
                            raise AssertionError(f"{name}: {recorded:,} recorded of {args.sessions:,}")
                        rate = args.sessions / seconds
                        latencies.sort()
                        worst.setdefault((method, name), []).append(
                            (latencies[int(len(latencies) * 0.99)], latencies[-1]))
                    rates.setdefault((method, name), []).append(rate)
                    extra = ""
                    if (method, name) in worst:
                        p99, top = worst[(method, name)][-1]
                        extra = f" (POST p99 {p99 * 1000:,.0f} ms, max {top * 1000:,.0f} ms)"
                    log(f"round {round_}: {method}, {name}: {rate:,.0f} sessions/s{extra}")
    finally:
        os.environ["PYTHONPATH"] = inherited
        remove_database(database)
        remove_database(template)
        Path(ndjson).unlink(missing_ok=True)
    for method in methods:
        base, new = (statistics.median(rates[(method, name)]) for name in versions)
        print(f"{method}: base {base:,.0f}/s, new {new:,.0f}/s (medians; new/base {new / base:.2f})")


if __name__ == "__main__":
    main()
