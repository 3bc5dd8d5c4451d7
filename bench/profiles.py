"""Where the time goes: py-spy profiles (Python and native frames) of the paths that
miss their targets, summarised into RESULTS.md.

    python bench/profiles.py [--size 1000000] [--seconds 15] [--ingest-sessions 1000000]

1. ``series``: ``sessiontally serve`` answering the 100-day series, under wrk (8
   connections) and then to one sequential keep-alive client; py-spy samples the server
   for ``--seconds`` each time.
2. ``ingest_http``: the server recording ``--ingest-sessions`` new sessions posted by 4
   clients (1,000 a request) into a database already holding as many (as in part 4).
3. ``import``: ``sessiontally import`` of the same sessions into the same database.
4. ``series_whatif``: series req/s under wrk as shipped, with the read cache off, and
   with the cache off and no rollup read, with 1 and 2 workers (sitecustomize patches).
5. ``bare``: the bare executemany (1,000 rows a transaction) of the same rows: not
   profiled (its time is all SQLite's); its bytes written to storage per row are measured
   (``write_bytes`` of /proc/<pid>/io), as they are for the server.

Each sample of each thread is classified (``classify``): running (on CPU, or in a system
call doing work such as pwrite or fdatasync), SQLite busy-handler sleep, waiting on a
Python lock inside a request, waiting for the GIL, or idle. Each profile is reduced to the
thread time per request (or per session) in each state, and per function (``name
(file)``, line numbers dropped) its inclusive share of the running samples and running
microseconds per request or session. Requires py-spy
(``pip install py-spy``) and permission to ptrace (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import (
    Client,
    Dataset,
    bare_server,
    bulk_load,
    log,
    machine,
    remove_database,
    series_database,
    server,
    setup_workspace,
)
from http_overhead import wrk_rps
from ingest_http import bodies_from_lines, post_all
from ingest_rates import bare_executemany, import_command
from sessions_data import SessionData

RATE = 100  # samples per second (py-spy --native pauses the process at each sample)
SERIES_PATH = "/sessions/data_series?length=100&unit=day"

# Frames shown in the summaries (regular expressions on "name (file)"), in this order.
SERIES_FRAMES = [
    r"^Starlette\.__call__ ", r"^AccessLogMiddleware\.__call__ ", r"^redacted_query ",
    r"^run_in_threadpool ", r"^guarded_read ", r"^_admit ", r"^_act ", r"^query_pairs ",
    r"^Service\.authenticate ", r"^hash_key ", r"^SqliteStore\.find_key_by_hash ",
    r"^SqliteStore\.get_workspace ", r"^Service\._touch ",
    r"^Service\.count_request ", r"^FileRateLimiter\.hit ",
    r"^Service\.data_series ", r"^parse_series_query ", r"^SqliteStore\.find_app ",
    r"^Service\.tracked_segment_key ", r"^series \(sessiontally/buckets", r"^Service\._count ",
    r"^SqliteStore\.count_by_quarters ", r"^SqliteStore\._read_series ", r"^json_response ",
    r"^sqlite3_step ",
    r"^sqlite3_prepare", r"^Response\.__call__ ",
]
INGEST_FRAMES = [
    r"^read_body ", r"^parse_json_body ", r"^loads ", r"^_ndjson ", r"^Service\.record_sessions ",
    r"^Service\.record_items ", r"^validate_batch ", r"^validate_session ", r"^_instant ",
    r"^SqliteStore\.record_sessions ", r"^SqliteStore\._record ", r"^SqliteStore\._insert_new ",
    r"^rollup_increments ", r"^GroupCommit", r"^SqliteConnections\.write ",
    r"^pysqlite_connection_executemany", r"^sqlite3_step ", r"^sqlite3BtreeInsert ",
    r"^sqlite3BtreeIndexMoveto ", r"^sqlite3BtreeCommitPhaseOne ", r"^sqlite3WalFrames ",
    r"^pwrite64 ", r"^pread64 ", r"^fdatasync ", r"^fsync ", r"^gc_collect_main ",
    r"^take_gil ",
]


IDLE_LEAVES = ("epoll_pwait", "epoll_wait", "select", "poll", "accept", "accept4")
SLEEP_LEAVES = ("usleep", "nanosleep", "clock_nanosleep")


def classify(names: list[str]) -> str:
    """What a sampled thread was doing: ``run`` (on CPU or in a system call doing work:
    reads, writes, fsync), ``busy-sleep`` (SQLite's busy handler sleeping on a lock held by
    another connection), ``lock-wait`` (a request waiting on a Python lock, e.g. another
    batch's group commit), ``gil-wait`` (runnable, waiting for the GIL), ``idle`` (a
    worker thread or the event loop with nothing to do)."""
    known = [n.split(" (", 1)[0] for n in names if not n.startswith("? (")]
    leaf = known[-1] if known else ""
    in_request = any(n.startswith(("_guarded", "Service.", "SqliteStore.", "_Batcher", "GroupCommit"))
                     for n in known)
    if leaf in SLEEP_LEAVES:
        return "busy-sleep" if any(n == "sqlite3InvokeBusyHandler" for n in known) else "idle"
    if leaf in IDLE_LEAVES:
        return "idle"
    if "lock_PyThread_acquire_lock" in known or "PyThread_acquire_lock_timed" in known:
        return "lock-wait" if in_request else "idle"
    if leaf in ("pthread_cond_timedwait", "pthread_cond_wait", "take_gil") or "take_gil" in known:
        return "gil-wait"
    return "run"


def summarise(raw_path: str, work: float, unit: str, frames: list[str], top: int = 25) -> dict[str, Any]:
    """Per function (inclusive), the share of the ``run`` samples and the thread time per
    unit of work; ``work`` requests or sessions done while sampling."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for line in Path(raw_path).read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        names = []
        for frame in stack.split(";"):
            if frame.startswith(("thread (", "process ")):
                continue
            match = re.match(r"(.*) \(([^)]*?)(?::\d+)?\)$", frame)
            name = f"{match.group(1)} ({match.group(2)})" if match else frame
            if name.startswith("0x"):
                name = "? (" + name.split("(", 1)[-1]
            names.append(name)
        state = classify(names)
        states[state] += n
        if state != "run":
            continue
        for name in set(names):
            inclusive[name] += n
        leaf[names[-1] if names else "?"] += n
    run_samples = states["run"]

    def us(samples: int) -> float:
        return 1e6 * samples / RATE / work if work else 0.0

    def row(name: str, n: int) -> dict[str, Any]:
        return {"frame": name, "share": n / run_samples if run_samples else 0.0, "us_per_unit": us(n)}

    chosen = []
    for pattern in frames:
        for name, n in inclusive.most_common():
            if re.search(pattern, name):
                chosen.append(row(name, n))
                break
    return {
        "samples": sum(states.values()), "rate_hz": RATE, "work": work, "unit": unit,
        "states": {k: {"samples": v, "us_per_unit": us(v)} for k, v in states.items()},
        "run_us_per_unit": us(run_samples),
        "frames": chosen,
        "top_inclusive": [row(name, n) for name, n in inclusive.most_common(top)],
        "top_self": [row(name, n) for name, n in leaf.most_common(top)],
    }


def spy(pid: int, out: str, seconds: float | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
    argv = ["py-spy", "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw", "--native",
            "--output", out]
    if seconds:
        argv += ["--duration", str(int(seconds))]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_spy(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, -2, 130) and "Wrote" not in (err or ""):
        raise RuntimeError(f"py-spy failed: {err[-500:]}")


def io_write_bytes(pid: int | str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _median_us(fn: Any, n: int) -> float:
    for _ in range(max(10, n // 10)):
        fn()
    times = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6


def _asgi_median_us(app: Any, path: str, key: str | None, n: int) -> float:
    """Median time of one request through an ASGI app in-process (no socket, no HTTP parsing)."""
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1")]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))

    async def one() -> int:
        status = 0
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "root_path": "",
                 "query_string": query.encode(), "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8000), "state": {}}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def loop() -> list[float]:
        times = []
        for i in range(n + n // 10):
            began = time.perf_counter()
            status = await one()
            if status != 200:
                raise RuntimeError(f"in-process {path}: {status}")
            if i >= n // 10:
                times.append(time.perf_counter() - began)
        return times

    return statistics.median(asyncio.run(loop())) * 1e6


def _rollup_rows(database: str, workspace_id: int, edges: list[int]) -> int:
    """Rollup rows a series over ``edges`` (quarters) reads: the rows in its plan's pieces."""
    from sessiontally.store.rollup import plan_series_read

    conn = sqlite3.connect(database)
    n = 0
    for _, grain, first, end in plan_series_read(tuple(edges)):
        if grain == 1:
            sql = ("SELECT COUNT(*) FROM session_counts WHERE workspace_id = ? AND app_key = 0"
                   " AND segment_key = 0 AND quarter >= ? AND quarter < ?")
            params: tuple[int, ...] = (workspace_id, first, end)
        else:
            sql = ("SELECT COUNT(*) FROM session_counts_coarse WHERE workspace_id = ? AND app_key = 0"
                   " AND segment_key = 0 AND grain = ? AND first_quarter >= ? AND first_quarter < ?")
            params = (workspace_id, grain, first, end)
        n += conn.execute(sql, params).fetchone()[0]
    conn.close()
    return n


def decompose_series(database: str, key: str, n: int = 2000) -> dict[str, Any]:
    """Where a series request's time goes, without a profiler: medians of the service's
    steps called directly, of the whole ASGI app called in-process (routing, middleware,
    thread hop, JSON), and of the bare app the same way."""
    os.environ["SESSIONTALLY_DATABASE"] = database
    # The read path (the cache is timed apart). Set for create_app below only: servers
    # started later by this process must not inherit it.
    previous = os.environ.get("SESSIONTALLY_READ_CACHE")
    os.environ["SESSIONTALLY_READ_CACHE"] = "0"
    import bare_app

    from sessiontally.api.app import create_app

    app = create_app()  # as shipped, with the access log on: its lines go to /dev/null here
    for name in ("sessiontally", "sessiontally.access"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the app
    if previous is None:
        os.environ.pop("SESSIONTALLY_READ_CACHE")
    else:
        os.environ["SESSIONTALLY_READ_CACHE"] = previous
    service = app.state.service
    pairs = [("length", "100"), ("unit", "day")]
    principal = service.authenticate(key, "127.0.0.1")
    from starlette.concurrency import run_in_threadpool

    from sessiontally import buckets

    async def hops() -> list[float]:
        times = []
        for _ in range(n):
            began = time.perf_counter()
            await run_in_threadpool(int)
            times.append(time.perf_counter() - began)
        return times

    zone = buckets.load_zone(principal.workspace.time_zone)
    edges = {}
    for unit in ("day", "hour"):
        series = buckets.series(unit, 100, int(time.time()), zone)
        edges[unit] = [b.start // 900 for b in series] + [series[-1].end // 900]
    store = service.store
    ws_id = principal.workspace.workspace_id
    def count(unit: str) -> Any:
        return lambda: store.count_by_quarters(ws_id, 0, 0, edges[unit])

    from sessiontally.store.sqlite import SqliteStore

    cached_store = SqliteStore(database)  # as shipped: the read cache on
    out = {
        "count_by_quarters_cached_us": _median_us(
            lambda: cached_store.count_by_quarters(ws_id, 0, 0, edges["day"]), n),
        "count_by_quarters_day_us": _median_us(count("day"), n),
        "count_by_quarters_hour_us": _median_us(count("hour"), n),
        "rollup_rows_day": _rollup_rows(database, ws_id, edges["day"]),
        "threadpool_hop_us": statistics.median(asyncio.run(hops())) * 1e6,
        "authenticate_us": _median_us(lambda: service.authenticate(key, "127.0.0.1"), n),
        "count_request_us": _median_us(lambda: service.count_request(principal), n),
        "data_series_us": _median_us(lambda: service.data_series(principal.workspace, pairs), n),
        "asgi_app_us": _asgi_median_us(app, SERIES_PATH, key, n),
        "bare_asgi_app_us": _asgi_median_us(bare_app.app, SERIES_PATH, None, n),
    }
    try:
        from sessiontally.api.logging import AccessLogMiddleware

        logged = AccessLogMiddleware(bare_app.app)
        out["bare_with_access_log_us"] = _asgi_median_us(logged, SERIES_PATH, None, n)
    except ImportError:
        pass
    try:
        from sessiontally.api.http import json_response

        body = {"data": service.data_series(principal.workspace, pairs), "message": "success"}
        out["json_response_us"] = _median_us(lambda: json_response(body, 200, {"X-RateLimit-Limit": "1"}), n)
    except ImportError:
        pass
    return out


def tail_attribution(database: str, key: str, workdir: Path, requests: int = 5000) -> dict[str, Any]:
    """Sequential 100-day requests with the access log on (INFO): the client's latency
    against the server's own ``duration_ms`` (from the ASGI app's entry to its last byte
    handed to uvicorn), to tell in-app tail latency from what happens outside the app
    (uvicorn, sockets, scheduling on a busy machine, the client)."""
    log_path = str(workdir / "tail-access.log")
    client_ms = []
    with server(database, env={"SESSIONTALLY_LOG_LEVEL": "INFO", "SESSIONTALLY_READ_CACHE": "0"},
                log_path=log_path) as srv:
        client = Client(srv.base, key)
        for i in range(requests + 500):
            began = time.perf_counter()
            status, _ = client.get(SERIES_PATH)
            if i >= 500:
                client_ms.append((time.perf_counter() - began) * 1000)
        client.close()
    server_ms = []
    for line in Path(log_path).read_text(errors="replace").splitlines():
        if '"duration_ms"' in line and "data_series" in line:
            try:
                server_ms.append(float(json.loads(line)["duration_ms"]))
            except (ValueError, KeyError):
                continue
    os.remove(log_path)
    server_ms = server_ms[-requests:]
    out: dict[str, Any] = {"requests": requests}
    for name, values in (("client", client_ms), ("server", server_ms)):
        if values:
            ordered = sorted(values)
            out[name] = {q: ordered[min(len(ordered) - 1, int(round(f * (len(ordered) - 1))))]
                         for q, f in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))}
            out[name]["max"] = ordered[-1]
            out[name]["over_10ms"] = sum(1 for v in values if v > 10)
    return out


def profile_series(workdir: Path, size: int, seconds: float) -> dict[str, Any]:
    database = str(workdir / "profile-series.sqlite3")
    key = series_database(database, size)
    raw = str(workdir / "profile-series.txt")
    out: dict[str, Any] = {"size": size}
    try:
        out["decomposition"] = decompose_series(database, key)
    except Exception as exc:  # the app's internals may have changed: report, do not stop
        out["decomposition"] = {"error": f"{type(exc).__name__}: {exc}"}
    out["tail"] = tail_attribution(database, key, workdir)
    with server(database, env={"SESSIONTALLY_READ_CACHE": "0"}) as srv:
        out["unprofiled_concurrent_rps"] = wrk_rps(srv.base, key, 8, seconds)
        client = Client(srv.base, key)
        samples = []
        for _ in range(2000):
            began = time.perf_counter()
            client.get(SERIES_PATH)
            samples.append(time.perf_counter() - began)
        client.close()
        out["unprofiled_sequential_p50_us"] = statistics.median(samples[200:]) * 1e6
        # Under load: wrk, 8 connections.
        wrk = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{int(seconds) + 4}s",
                                "-H", f"Authorization: Bearer {key}",
                                srv.base + SERIES_PATH], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        proc = spy(srv.pid, raw, seconds)
        proc.wait(seconds + 120)
        stop_spy(proc)
        text, _ = wrk.communicate()
        rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))  # type: ignore[union-attr]
        out["concurrent"] = summarise(raw, rps * seconds, "request", SERIES_FRAMES)
        out["concurrent"]["requests_per_s"] = rps
        # Sequential: one keep-alive connection, as in part 1.
        client = Client(srv.base, key)
        done = 0
        stop = time.perf_counter() + seconds + 4
        proc = None
        began = 0.0
        while time.perf_counter() < stop:
            status, _ = client.get(SERIES_PATH)
            assert status == 200
            done += 1
            if proc is None and done == 200:
                proc = spy(srv.pid, raw, seconds)
                time.sleep(1)  # py-spy attaches
                began, done = time.perf_counter(), 0
            if proc is not None and proc.poll() is not None:
                break
        elapsed = time.perf_counter() - began
        client.close()
        stop_spy(proc)  # type: ignore[arg-type]
        out["sequential"] = summarise(raw, done * seconds / elapsed, "request", SERIES_FRAMES)
        out["sequential"]["requests_per_s"] = done / elapsed
    remove_database(database)
    os.remove(raw)
    return out


def profile_ingest(workdir: Path, sessions: int) -> dict[str, Any]:
    template = str(workdir / "profile-ingest-template.sqlite3")
    database = str(workdir / "profile-ingest.sqlite3")
    ndjson = str(workdir / "profile-ingest.ndjson")
    remove_database(template)
    store, ws, apps, key = setup_workspace(template)
    store.close()
    bulk_load(template, Dataset(ws.workspace_id, tuple(a.app_key for a in apps), sessions,
                                int(time.time()) * 1_000_000, seed=11))
    data = SessionData([a.app_id for a in apps], [a.app_key for a in apps], sessions, seed=13)
    data.write_ndjson(ndjson)
    with open(ndjson, "rb") as f:
        bodies = list(bodies_from_lines(f, 1000))
    out: dict[str, Any] = {"preload": sessions, "sessions": sessions}

    # HTTP, 4 clients.
    remove_database(database)
    shutil.copyfile(template, database)
    raw = str(workdir / "profile-ingest-http.txt")
    with server(database) as srv:
        before = io_write_bytes(srv.pid)
        proc = spy(srv.pid, raw)
        time.sleep(1)
        _, _, seconds = post_all(srv.base, key, bodies, 4)
        stop_spy(proc)
        written = io_write_bytes(srv.pid) - before
    out["http"] = summarise(raw, sessions, "session", INGEST_FRAMES)
    out["http"]["rate"] = sessions / seconds
    out["http"]["write_bytes_per_session"] = written / sessions
    os.remove(raw)

    # sessiontally import.
    remove_database(database)
    shutil.copyfile(template, database)
    raw = str(workdir / "profile-import.txt")
    began = time.perf_counter()
    proc = subprocess.run(["py-spy", "record", "--rate", str(RATE), "--format", "raw", "--native",
                           "--output", raw,
                           "--", *import_command(database, ws.workspace_id, ndjson)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"py-spy import failed: {proc.stderr[-500:]}")
    out["import"] = summarise(raw, sessions, "session", INGEST_FRAMES)
    out["import"]["rate_under_profiler"] = sessions / (time.perf_counter() - began)
    os.remove(raw)

    # The bare executemany: bytes written per row (its time is all SQLite's).
    remove_database(database)
    shutil.copyfile(template, database)
    rows = list(data.rows(ws.workspace_id))
    before = io_write_bytes("self")
    seconds = bare_executemany(database, rows, 1000)
    written = io_write_bytes("self") - before
    out["bare"] = {"rate": sessions / seconds, "write_bytes_per_session": written / sessions}
    conn = sqlite3.connect(database)
    out["page_size"] = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    remove_database(database)
    remove_database(template)
    os.remove(ndjson)
    return out


_FREE_READ = """
import sessiontally.store.sqlite as _store


def _count_by_quarters(self, workspace_id, app_key, segment_key, boundaries):
    return [0] * (len(boundaries) - 1)


_store.SqliteStore.count_by_quarters = _count_by_quarters
"""


# What the exactness guarantees cost a cached request (valid only in a read-only benchmark):
# the rate-limit count replaced by an in-memory decision, and the read cache's
# data_version check skipped (the cache then never expires).
_NO_RATE_COUNT = """
import sessiontally.ratelimit as _rl


def _hit(self, workspace_id, limit, now):
    return _rl.decide(1, limit, _rl.window_of(now))


_rl.FileRateLimiter.hit = _hit
"""
_NO_VERSION_CHECK = """
import sessiontally.store.sqlite_connections as _connections

_kept = {}


def _read_cache(self, conn, at_request_start=False):
    return None if conn.in_transaction else _kept


_connections.SqliteConnections.read_cache = _read_cache
"""


def series_whatif(workdir: Path, size: int, duration: float, repeats: int = 2) -> dict[str, Any]:
    """Series req/s under wrk (8 connections), each with 1 and 2 workers, beside the bare
    app: as shipped; as shipped with the access log off; as shipped without the rate-limit
    count, and also without the read cache's data_version check; with the read cache off;
    with the cache off and no rollup read (zeros). The patches are sitecustomize modules
    on the server's PYTHONPATH (the code under test is not edited). Tells what each part
    of a request costs against the bare endpoint."""
    database = str(workdir / "whatif-series.sqlite3")
    key = series_database(database, size)
    pythonpath = os.environ.get("PYTHONPATH", "")
    # label: (read cache on, sitecustomize patch, access log on)
    variants: dict[str, tuple[bool, str, bool]] = {
        "as shipped": (True, "", True),
        "as shipped, access log off": (True, "", False),
        "as shipped, no rate-limit count": (True, _NO_RATE_COUNT, True),
        "as shipped, no rate-limit count, no data_version check": (
            True, _NO_RATE_COUNT + _NO_VERSION_CHECK, True),
        "read cache off": (False, "", True),
        "cache off, no rollup read": (False, _FREE_READ, True),
    }
    out: dict[str, Any] = {"size": size, "duration": duration, "by_workers": {}}
    for workers in (1, 2):
        rows: dict[str, list[float]] = {"bare app": []}
        for _ in range(repeats):
            with bare_server(workers) as bare:
                rows["bare app"].append(wrk_rps(bare.base, None, 8, duration))
            for label, (cache_on, patch, access_log) in variants.items():
                env = {} if cache_on else {"SESSIONTALLY_READ_CACHE": "0"}
                if not access_log:
                    env["SESSIONTALLY_LOG_LEVEL"] = "WARNING"
                if patch:
                    site = workdir / f"whatif-site-{abs(hash(label))}"
                    site.mkdir(exist_ok=True)
                    (site / "sitecustomize.py").write_text(patch)
                    env["PYTHONPATH"] = str(site) + (os.pathsep + pythonpath if pythonpath else "")
                with server(database, workers=workers, env=env) as srv:
                    wrk_rps(srv.base, key, 8, 2)  # warm-up
                    rows.setdefault(label, []).append(wrk_rps(srv.base, key, 8, duration))
                if patch:
                    shutil.rmtree(site)
        out["by_workers"][str(workers)] = rows
        log(f"  workers {workers}: "
            + ", ".join(f"{k} {statistics.median(v):,.0f} req/s" for k, v in rows.items()))
    remove_database(database)
    return out


def run(workdir: Path, size: int, seconds: float, ingest_sessions: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    if not shutil.which("py-spy"):
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    result: dict[str, Any] = {}
    if shutil.which("wrk"):
        log("  profiling the series endpoint under wrk")
        result["series"] = profile_series(workdir, size, seconds)
        log("  series req/s with the cache off, without the rollup read")
        result["series_whatif"] = series_whatif(workdir, size, seconds)
    log("  profiling ingest (HTTP, import)")
    result["ingest"] = profile_ingest(workdir, ingest_sessions)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--ingest-sessions", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    res = run(Path(args.workdir), args.size, args.seconds, args.ingest_sessions)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
