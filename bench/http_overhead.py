"""Part 3: requests per second of GET /sessions/data_series against a bare endpoint.

    python bench/http_overhead.py [--size 1000000] [--duration 10] [--connections 8] [--repeats 3]

Two servers on the same stack (uvicorn with the same options and worker count, Starlette,
orjson bodies): ``sessiontally serve`` on a database of ``--size`` sessions, and
bench/bare_app.py, which answers the same path with a constant body of the same shape
and size as a 100-day series. The same load generator drives both, alternately within
each repeat: ``wrk`` (1 thread, ``--connections`` keep-alive connections, ``--duration``
seconds) when it is installed (``apt-get install wrk``), else Python threads with
keep-alive http.client connections (far weaker: the client then competes with the
server for the GIL-free cores). The series asked is the 100-day one, all apps, from two
servers on the same database: one as shipped, which answers a repeated query from its
read cache while the database is unchanged, and one with the cache off
(``SESSIONTALLY_READ_CACHE=0``), which reads the rollup on every request.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    Client,
    bare_server,
    load_average,
    log,
    machine,
    remove_database,
    series_database,
    server,
)

PATH = "/sessions/data_series?length=100&unit=day"


def wrk_rps(base: str, key: str | None, connections: int, duration: float) -> float:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s"]
    if key:
        argv += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(argv + [base + PATH], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def threads_rps(base: str, key: str | None, connections: int, duration: float) -> float:
    stop = time.perf_counter() + duration
    counts = [0] * connections

    def worker(i: int) -> None:
        client = Client(base, key)
        while time.perf_counter() < stop:
            status, _ = client.get(PATH)
            if status != 200:
                raise RuntimeError(f"status {status}")
            counts[i] += 1
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - began)


def run(workdir: Path, size: int, duration: float, connections: int, repeats: int,
        workers_list: tuple[int, ...] = (1,)) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    database = str(workdir / "overhead.sqlite3")
    key = series_database(database, size)
    method = "wrk" if shutil.which("wrk") else "python-threads"
    measure = wrk_rps if method == "wrk" else threads_rps
    result: dict[str, Any] = {"size": size, "duration": duration, "connections": connections,
                              "method": method, "load_average_before": load_average(), "by_workers": {}}
    for workers in workers_list:
        rows: dict[str, list[float]] = {"bare": [], "series": [], "ratio": [],
                                        "series_uncached": [], "ratio_uncached": []}
        with (bare_server(workers) as bare, server(database, workers=workers) as srv,
              server(database, workers=workers, env={"SESSIONTALLY_READ_CACHE": "0"}) as cold):
            for base in (bare.base, srv.base, cold.base):
                measure(base, key, connections, 2)  # warm-up
            for rep in range(repeats):
                bare_rps = measure(bare.base, key, connections, duration)
                series_rps = measure(srv.base, key, connections, duration)
                cold_rps = measure(cold.base, key, connections, duration)
                rows["bare"].append(bare_rps)
                rows["series"].append(series_rps)
                rows["ratio"].append(series_rps / bare_rps)
                rows["series_uncached"].append(cold_rps)
                rows["ratio_uncached"].append(cold_rps / bare_rps)
                log(f"  workers {workers}, repeat {rep + 1}: bare {bare_rps:,.0f} req/s, series "
                    f"{series_rps:,.0f} req/s ({series_rps / bare_rps:.1%}), cache off "
                    f"{cold_rps:,.0f} req/s ({cold_rps / bare_rps:.1%})")
        result["by_workers"][str(workers)] = rows
    result["load_average_after"] = load_average()
    remove_database(database)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    run(Path(args.workdir), args.size, args.duration, args.connections, args.repeats, tuple(args.workers))


if __name__ == "__main__":
    main()
