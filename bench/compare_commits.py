"""Series req/s and p50 of two versions of the code against the bare endpoint, in one run
(by hand, not part of run.py): the A/B for a change to the request path, over real HTTP.

    git worktree add --detach /tmp/base <commit>
    python bench/compare_commits.py --base /tmp/base/src --new src [--workers 1] [--rounds 3]

Each round runs, one after another, the bare app, ``sessiontally serve`` with ``--base``
first on its PYTHONPATH, and the same with ``--new``, each for ``--duration`` seconds under
wrk (8 connections, after a short warm-up), on one 10^4-session database, asking the
100-day series (answered from the read cache); then ``--requests`` of the same series one
after another on one keep-alive connection, for each version's p50 latency. It prints each
round's req/s, each version's share of the bare endpoint's and its p50, then the medians.
Alternating within a round is what makes the comparison fair on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import (
    Client,
    add_version_arguments,
    bare_server,
    remove_database,
    series_database,
    server,
    version_sources,
)
from http_overhead import PATH, wrk_rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_arguments(parser)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    database = str(Path(args.workdir) / "compare.sqlite3")
    key = series_database(database, 10_000)
    versions = version_sources(args)
    rows: dict[str, list[float]] = {"bare": [], "base": [], "new": []}
    p50s: dict[str, list[float]] = {"base": [], "new": []}
    try:
        for round_ in range(1, args.rounds + 1):
            with bare_server(args.workers) as bare:
                wrk_rps(bare.base, None, 8, 1)
                rows["bare"].append(wrk_rps(bare.base, None, 8, args.duration))
            for label, src in versions.items():
                with server(database, workers=args.workers, env={"PYTHONPATH": src}) as srv:
                    wrk_rps(srv.base, key, 8, 2)
                    rows[label].append(wrk_rps(srv.base, key, 8, args.duration))
                    p50s[label].append(sequential_p50(srv.base, key, args.requests))
            shares = ", ".join(f"{label} {rows[label][-1] / rows['bare'][-1]:.1%}, p50 "
                               f"{p50s[label][-1]:.3f} ms" for label in versions)
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:,.0f} req/s" for k, v in rows.items())
                  + f" ({shares})", flush=True)
    finally:
        remove_database(database)
    medians = {k: statistics.median(v) for k, v in rows.items()}
    print("medians: " + ", ".join(f"{k} {v:,.0f} req/s" for k, v in medians.items())
          + " (" + ", ".join(f"{label} {medians[label] / medians['bare']:.1%}" for label in versions) + ")")
    p50 = {label: statistics.median(p50s[label]) for label in versions}
    print("p50: " + ", ".join(f"{label} {p50[label]:.3f} ms" for label in versions)
          + f" (new/base {p50['new'] / p50['base']:.3f})")


def sequential_p50(base: str, key: str, requests: int) -> float:
    """The median milliseconds of ``requests`` series requests sent one after another."""
    client = Client(base, key)
    try:
        samples = []
        for i in range(requests + requests // 10):
            began = time.perf_counter()
            status, body = client.get(PATH)
            elapsed = time.perf_counter() - began
            if status != 200:
                raise AssertionError(f"{PATH}: {status} {body[:300]!r}")
            if i >= requests // 10:  # the first tenth warms up
                samples.append(elapsed * 1000)
        return statistics.median(samples)
    finally:
        client.close()


if __name__ == "__main__":
    main()
