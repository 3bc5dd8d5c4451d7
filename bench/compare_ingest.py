"""Ingest rates of two versions of the code, in one run (by hand, not part of run.py): the
A/B for a change to the recording path, over real HTTP and through ``import``.

    git worktree add --detach /tmp/base <commit>
    python bench/compare_ingest.py --base /tmp/base/src --new src [--rounds 3] [--clients 4]

Every measurement starts from a copy of one template, as part 4 does (``--preload``
stored sessions, then ``--sessions`` new ones from bench/sessions_data.py). Each round
runs, one after another, ``sessiontally serve`` with ``--base`` first on its PYTHONPATH
posting the sessions (1,000 a request, ``--clients`` connections), the same with
``--new``, then ``sessiontally import`` of the same sessions with each (``--no-import``
or ``--no-http`` skips one). An HTTP figure includes a final ``wal_checkpoint(TRUNCATE)``
once the posts are done (``import`` checkpoints when it closes), so that a setting that
postpones work is charged for it; it also prints the POSTs' p99 and slowest latency. It
prints each figure, then the medians. Alternating within a round is what makes the
comparison fair on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import add_version_arguments, final_checkpoint, log, remove_database, server, version_sources
from ingest_http import post_all
from ingest_rates import IngestTemplate, import_command, ingest_template


def http_rate(made: IngestTemplate, database: str, src: str, clients: int,
              workers: int) -> tuple[float, float, float]:
    """Sessions/s posting every body (the final WAL copy-back charged), and the POSTs' p99
    and slowest seconds."""
    latencies: list[float] = []
    with server(database, workers=workers, env={"PYTHONPATH": src}) as srv:
        recorded, _duplicates, seconds = post_all(srv.base, made.key, made.bodies, clients, latencies)
        seconds += final_checkpoint(database)
    if recorded != made.data.count:
        raise AssertionError(f"{src}: {recorded:,} recorded of {made.data.count:,}")
    latencies.sort()
    return recorded / seconds, latencies[int(len(latencies) * 0.99)], latencies[-1]


def import_rate(made: IngestTemplate, database: str, src: str) -> float:
    """Sessions/s of ``sessiontally import`` (its wall time: it copies the WAL back on close)."""
    began = time.perf_counter()
    subprocess.run(import_command(database, made.workspace_id, made.ndjson), check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": src})
    return made.data.count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--preload", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1, help="server processes of --new")
    parser.add_argument("--base-workers", type=int, help="server processes of --base"
                        " (default: --workers); --base and --new may then be the same tree")
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--no-http", action="store_true", help="measure only import")
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    made = ingest_template(Path(args.workdir), "compare", args.preload, args.sessions)
    database = str(Path(args.workdir) / "compare.sqlite3")
    versions = version_sources(args)
    workers = {"base": args.base_workers or args.workers, "new": args.workers}
    methods = (([] if args.no_http else [f"HTTP, {args.clients} clients"])
               + ([] if args.no_import else ["import"]))
    rates: dict[tuple[str, str], list[float]] = {}
    try:
        for round_ in range(1, args.rounds + 1):
            for method in methods:
                for name, src in versions.items():
                    remove_database(database)
                    shutil.copyfile(made.template, database)
                    if method == "import":
                        rate, extra = import_rate(made, database, src), ""
                    else:
                        rate, p99, slowest = http_rate(made, database, src, args.clients, workers[name])
                        extra = f" (POST p99 {p99 * 1000:,.0f} ms, max {slowest * 1000:,.0f} ms)"
                    rates.setdefault((method, name), []).append(rate)
                    log(f"round {round_}: {method}, {name}: {rate:,.0f} sessions/s{extra}")
    finally:
        remove_database(database)
        remove_database(made.template)
        Path(made.ndjson).unlink(missing_ok=True)
    for method in methods:
        base, new = (statistics.median(rates[(method, name)]) for name in versions)
        print(f"{method}: base {base:,.0f}/s, new {new:,.0f}/s (medians; new/base {new / base:.2f})")


if __name__ == "__main__":
    main()
