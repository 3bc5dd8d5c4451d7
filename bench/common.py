"""Shared helpers of the benchmarks: a real server on loopback, a keep-alive HTTP client,
a deterministic data generator with fast bulk loaders (SQLite and DuckDB), memory
sampling and statistics.

Benchmarks are run by hand (never by the test suite); ``python bench/run.py`` runs them
all and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import platform
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sessiontally import admin, keys
from sessiontally.store import open_store

QUARTER_US = 900 * 1_000_000
DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000
SEGMENT_FILTER = '{"attribute": "country", "op": "eq", "value": "US"}'
SEGMENT_EVERY = 4  # in generated data, users whose number is a multiple of 4 match the segment


# ---------------------------------------------------------------------------- machine


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str
    host: str
    port: int
    proc: subprocess.Popen  # type: ignore[type-arg]

    @property
    def pid(self) -> int:
        return self.proc.pid


def _wait_healthy(host: str, port: int, path: str, proc: subprocess.Popen, timeout: float = 60) -> None:  # type: ignore[type-arg]
    deadline = time.time() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError(f"server did not start (exit status {proc.poll()})")
        time.sleep(0.1)


@contextmanager
def _process(argv: list[str], env: dict[str, str], health: str,
             log_path: str | None = None) -> Iterator[Server]:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    errors = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    try:
        try:
            _wait_healthy("127.0.0.1", port, health, proc)
        except RuntimeError as exc:
            errors.seek(0)
            raise RuntimeError(f"{exc}: {errors.read()[-2000:].decode(errors='replace')}") from None
        yield Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, proc)
    finally:
        errors.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def server(database: str, workers: int = 1, env: dict[str, str] | None = None,
           log_path: str | None = None) -> Iterator[Server]:
    """A real ``sessiontally serve`` process on a free loopback port, configured as shipped
    (so with its JSON access log on; its stderr, where the log goes, is kept in
    ``log_path`` if given, else in a temporary file)."""
    environment = {**os.environ, "SESSIONTALLY_DATABASE": database}
    environment.pop("SESSIONTALLY_LOG_LEVEL", None)  # the shipped default, unless env sets one
    environment.update(env or {})
    argv = [sys.executable, "-m", "sessiontally", "serve", "--port", "{port}", "--workers", str(workers)]
    with _process(argv, environment, "/healthz", log_path) as srv:
        yield srv


@contextmanager
def bare_server(workers: int = 1) -> Iterator[Server]:
    """bench/bare_app.py (a constant JSON) under uvicorn with the options of ``serve``."""
    bench_dir = str(Path(__file__).resolve().parent)
    environment = {**os.environ, "PYTHONPATH": bench_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", "{port}",
            "--workers", str(workers), "--no-access-log", "--log-level", "warning", "--no-server-header"]
    with _process(argv, environment, "/healthz") as srv:
        yield srv


class Client:
    """A minimal keep-alive HTTP/1.1 client (http.client): low, steady client overhead."""

    def __init__(self, base: str, key: str | None = None, timeout: float = 120) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body,
                          headers={**self.headers, "Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


# -------------------------------------------------------------------------- workspace


def setup_workspace(database: str, apps: int = 3, zone: str = "America/New_York"):
    """A workspace with apps and an all-permissions key; returns (store, workspace, apps, key)."""
    store = open_store(database)
    store.migrate()
    ws = admin.create_workspace(store, f"bench-{random.getrandbits(32):08x}", zone, 10**9)
    app_list = [admin.create_app(store, ws, f"app{i}") for i in range(apps)]
    key = admin.create_key(store, ws, "bench", keys.PERMISSIONS).key
    return store, ws, app_list, key


def create_tracked_segment(store, ws):  # type: ignore[no-untyped-def]
    """A segment with analytics tracking on (its rollup rows come from the bulk loader)."""
    return admin.create_segment(store, ws, "US users", SEGMENT_FILTER, analytics=True)


def series_database(database: str, size: int) -> str:
    """A fresh database of ``size`` sessions ending now, with a tracked segment, loaded by
    the bulk path; returns the all-permissions key."""
    remove_database(database)
    store, ws, apps, key = setup_workspace(database)
    segment = create_tracked_segment(store, ws)
    store.close()
    bulk_load(database, Dataset(ws.workspace_id, tuple(a.app_key for a in apps), size,
                                int(time.time()) * 1_000_000), segment.segment_key)
    return key


# ------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class Dataset:
    """Deterministic synthetic sessions of one workspace (same seed -> same rows).

    - ``session_id``: 24 hex digits, ``%016x`` of a 63-bit number then ``%08x`` of a 32-bit
      one. Chunk ``c`` of ``k`` draws its first number uniformly in the ``c``-th
      ``1/k`` of the 63-bit range and sorts the chunk, so the ids are uniform random yet
      generated in key order (the B-tree is appended to, never split in the middle).
    - ``external_id``: ``u<n>``, ``n`` uniform in ``[0, users)``; users whose ``n`` is a
      multiple of SEGMENT_EVERY are the tracked segment's members.
    - ``app_key``: uniform over ``app_keys``; ``started_at``: uniform in
      ``[end_us - days, end_us)``; ``ended_at``: NULL.

    Chunks are generated with numpy (about 0.4 s per 10^6 rows).
    """

    workspace_id: int
    app_keys: tuple[int, ...]
    count: int
    end_us: int
    days: int = 100
    seed: int = 1
    users: int = 1_000_000
    chunk: int = 1_000_000

    @property
    def start_us(self) -> int:
        return self.end_us - self.days * DAY_US

    def chunks(self) -> Iterator[dict[str, np.ndarray]]:
        k = max(1, math.ceil(self.count / self.chunk))
        width = (2**63 - 1) // k
        for c in range(k):
            n = min(self.chunk, self.count - c * self.chunk)
            rng = np.random.default_rng([self.seed, c])
            hi = np.sort(rng.integers(c * width, (c + 1) * width, n, dtype=np.int64))
            lo = rng.integers(0, 2**32, n, dtype=np.int64)
            user = rng.integers(0, self.users, n, dtype=np.int64)
            app = np.asarray(self.app_keys, dtype=np.int64)[rng.integers(0, len(self.app_keys), n)]
            started = self.start_us + rng.integers(0, self.end_us - self.start_us, n, dtype=np.int64)
            yield {"hi": hi, "lo": lo, "usr": user, "app": app, "started": started}


class RollupAccumulator:
    """The GROUP BY of the rollup, done on the generated arrays: sessions per (app_key,
    segment_key, quarter), for the apps, "all apps" (0), "all users" (0) and the segment."""

    def __init__(self, ds: Dataset, segment_key: int | None) -> None:
        self.q0 = ds.start_us // QUARTER_US
        self.quarters = (ds.end_us - 1) // QUARTER_US - self.q0 + 1
        self.app_keys = ds.app_keys
        self.segment_key = segment_key
        self.counts = np.zeros((2, max(ds.app_keys) + 1, self.quarters), dtype=np.int64)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        q = chunk["started"] // QUARTER_US - self.q0
        width = self.counts.shape[1] * self.quarters
        flat = chunk["app"] * self.quarters + q
        self.counts[0] += np.bincount(flat, minlength=width).reshape(self.counts.shape[1:])
        member = chunk["usr"] % SEGMENT_EVERY == 0
        self.counts[1] += np.bincount(flat[member], minlength=width).reshape(self.counts.shape[1:])

    def rows(self, workspace_id: int) -> list[tuple[int, int, int, int, int]]:
        out = []
        segments = [(0, 0)] + ([(1, self.segment_key)] if self.segment_key else [])
        for index, segment_key in segments:
            per_app = self.counts[index]
            everything = per_app.sum(axis=0)
            for app_key in [0, *self.app_keys]:
                row = everything if app_key == 0 else per_app[app_key]
                for q in np.nonzero(row)[0].tolist():
                    out.append((workspace_id, app_key, segment_key, self.q0 + q, int(row[q])))
        out.sort()
        return out


@dataclass
class LoadReport:
    rows: int
    sqlite_seconds: float = 0.0
    duckdb_seconds: float = 0.0
    generate_seconds: float = 0.0
    rollup_rows: int = 0
    sqlite_bytes: int = 0
    duckdb_bytes: int = 0
    rollup: RollupAccumulator | None = None


DUCKDB_MEMORY_LIMIT = "4GB"  # a shared machine: DuckDB's default is 80% of the RAM
DUCKDB_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sessions (workspace_id INTEGER NOT NULL, session_id VARCHAR NOT NULL,"
    " external_id VARCHAR NOT NULL, app_key INTEGER NOT NULL, started_at BIGINT NOT NULL,"
    " ended_at BIGINT)"
)


class LoadTooSlow(RuntimeError):
    """The projected load time exceeds the budget (the message gives the measured rate)."""


def bulk_load(sqlite_path: str | None, ds: Dataset, segment_key: int | None = None,
              duckdb_path: str | None = None, progress: bool = False,
              budget_s: float | None = None) -> LoadReport:
    """The fast bulk path for large sizes.

    SQLite: the raw rows are inserted in key order (see Dataset) with ``executemany`` in
    one transaction per chunk of 10^6, with ``journal_mode=OFF`` and ``synchronous=OFF``
    (a crash during the load loses the file, which is acceptable for a bulk load); then the
    rollup rows, aggregated from the same arrays with numpy (a GROUP BY of (app, quarter)
    and of (app, segment member, quarter)), are inserted. The file is switched back to WAL.
    DuckDB (optional): the same chunks are appended to a ``sessions`` table of the same
    columns, formatted by DuckDB from the same arrays.
    """
    rollup = RollupAccumulator(ds, segment_key)
    report = LoadReport(ds.count, rollup=rollup)
    conn = None
    if sqlite_path:
        conn = sqlite3.connect(sqlite_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1048576")
    duck = None
    if duckdb_path:
        import duckdb

        duck = duckdb.connect(duckdb_path, config={"memory_limit": DUCKDB_MEMORY_LIMIT})
        duck.execute(DUCKDB_SCHEMA)
    insert = ("INSERT INTO sessions (workspace_id, session_id, external_id, app_key, started_at, ended_at)"
              " VALUES (?, printf('%016x%08x', ?, ?), 'u' || ?, ?, ?, NULL)")
    done = 0
    last_note = time.perf_counter()
    began = time.perf_counter()
    for chunk in ds.chunks():
        t0 = time.perf_counter()
        rollup.add(chunk)
        n = len(chunk["hi"])
        t1 = time.perf_counter()
        report.generate_seconds += t1 - t0
        if conn is not None:
            rows = zip([ds.workspace_id] * n, chunk["hi"].tolist(), chunk["lo"].tolist(),
                       chunk["usr"].tolist(), chunk["app"].tolist(), chunk["started"].tolist(),
                       strict=True)
            conn.execute("BEGIN")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
        t2 = time.perf_counter()
        report.sqlite_seconds += t2 - t1
        if duck is not None:
            duck.execute(
                f"INSERT INTO sessions SELECT {int(ds.workspace_id)}, printf('%016x%08x', hi, lo),"
                " 'u' || usr, app, started, NULL FROM chunk"
            )
        report.duckdb_seconds += time.perf_counter() - t2
        done += n
        elapsed = time.perf_counter() - began
        if budget_s and done >= 3 * ds.chunk and elapsed * ds.count / done > budget_s:
            raise LoadTooSlow(f"loading ran at {done / elapsed:,.0f} rows/s: {ds.count:,} rows would take"
                              f" {elapsed * ds.count / done / 60:.0f} min, over the budget of"
                              f" {budget_s / 60:.0f} min")
        if progress and time.perf_counter() - last_note > 30:
            last_note = time.perf_counter()
            rate = done / (last_note - began)
            log(f"  loaded {done:,} / {ds.count:,} rows ({rate:,.0f} rows/s)")
    t0 = time.perf_counter()
    if conn is not None:
        rows = rollup.rows(ds.workspace_id)
        report.rollup_rows = len(rows)
        conn.execute("BEGIN")
        conn.execute("DELETE FROM session_counts WHERE workspace_id = ?", (ds.workspace_id,))
        conn.executemany("INSERT INTO session_counts (workspace_id, app_key, segment_key, quarter, sessions)"
                         " VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("DELETE FROM session_counts_coarse WHERE workspace_id = ?", (ds.workspace_id,))
        conn.execute(COARSE_FROM_QUARTERS, (ds.workspace_id,))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        report.sqlite_bytes = os.path.getsize(sqlite_path)  # type: ignore[arg-type]
    report.sqlite_seconds += time.perf_counter() - t0
    if duck is not None:
        t0 = time.perf_counter()
        duck.execute("CHECKPOINT")
        duck.close()
        report.duckdb_seconds += time.perf_counter() - t0
        report.duckdb_bytes = os.path.getsize(duckdb_path)  # type: ignore[arg-type]
    return report


# The rollup's hour and day levels (store/rollup.py) from its quarters, as migration 0003
# builds them; the same statement on both engines.
COARSE_FROM_QUARTERS = (
    "INSERT INTO session_counts_coarse (workspace_id, app_key, segment_key, grain, first_quarter,"
    " sessions) SELECT c.workspace_id, c.app_key, c.segment_key, g.grain,"
    " c.quarter / g.grain * g.grain, SUM(c.sessions)"
    " FROM session_counts c CROSS JOIN (SELECT 4 AS grain UNION ALL SELECT 96) g"
    " WHERE c.workspace_id = ?"
    " GROUP BY c.workspace_id, c.app_key, c.segment_key, g.grain, c.quarter / g.grain * g.grain"
)


def bulk_load_sqlite(path: str, workspace_id: int, app_keys: list[int], count: int, end_us: int,
                     days: int = 100, seed: int = 1, chunk: int = 1_000_000,
                     segment_key: int | None = None) -> float:
    """The SQLite bulk path alone (see bulk_load); returns rows per second."""
    ds = Dataset(workspace_id, tuple(app_keys), count, end_us, days, seed, chunk=chunk)
    report = bulk_load(path, ds, segment_key)
    return count / (report.sqlite_seconds + report.generate_seconds)


def add_version_arguments(parser: argparse.ArgumentParser) -> None:
    """``--base`` and ``--new``: the two src/ folders an A/B script compares."""
    parser.add_argument("--base", required=True, help="the src/ folder of the base version")
    parser.add_argument("--new", required=True, help="the src/ folder of the new version")


def version_sources(args: argparse.Namespace) -> dict[str, str]:
    """{"base": ..., "new": ...}: the two src/ folders, absolute (each goes on a PYTHONPATH)."""
    return {"base": str(Path(args.base).resolve()), "new": str(Path(args.new).resolve())}


def callgrind_instructions(argv: list[str]) -> int:
    """The instructions ``valgrind --tool=callgrind`` counts while running ``argv`` (a
    count that does not move with the machine's load; valgrind must be installed)."""
    with tempfile.TemporaryDirectory(prefix="sessiontally-callgrind-") as out:
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out", *argv],
                              capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if not match:
        raise RuntimeError(f"cannot read callgrind's total:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def final_checkpoint(database: str) -> float:
    """Seconds to copy what the WAL still holds back into the database, with nothing else
    using it: counted with an ingest, so that a longer checkpoint interval is not credited
    with the copy it merely postpones."""
    began = time.perf_counter()
    conn = sqlite3.connect(database, timeout=60)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
    return time.perf_counter() - began


def remove_database(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", "-ratecounters", "-writers",
                   "-ratelimit", "-ratelimit-wal", "-ratelimit-shm",
                   ".wal"):
        with suppress(FileNotFoundError):
            os.remove(path + suffix)


# ----------------------------------------------------------------------------- memory


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _open_count(pid: int, path: str) -> int:
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    n += 1
    except OSError:
        pass
    return n


class RssSampler:
    """Samples the memory of a process tree every ``interval`` seconds in a thread.

    ``peak_sum_mib``: the largest sum of VmRSS over the tree seen in a sample;
    ``hwm_sum_mib``: the sum over processes of their VmHWM (each one's own peak; an upper
    bound of the tree's true peak, exact when there is one process); ``max_threads``; and
    with ``database``, ``max_connections``: the most descriptors open on that file at once
    (SQLite opens the main file once per connection).
    """

    def __init__(self, pid: int, interval: float = 0.2, database: str | None = None) -> None:
        self.pid = pid
        self.interval = interval
        self.database = os.path.realpath(database) if database else None
        self.max_threads = 0
        self.max_connections = 0  # open descriptors on the database file: one per SQLite connection
        self.peak_sum_kib = 0
        self.hwm: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = 0
        threads = connections = 0
        for p in process_tree(self.pid):
            threads += _status_kib(p, "Threads")
            if self.database:
                connections += _open_count(p, self.database)
            total += _status_kib(p, "VmRSS")
            hwm = _status_kib(p, "VmHWM")
            if hwm:
                self.hwm[p] = max(self.hwm.get(p, 0), hwm)
        self.peak_sum_kib = max(self.peak_sum_kib, total)
        self.max_threads = max(self.max_threads, threads)
        self.max_connections = max(self.max_connections, connections)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_sum_mib(self) -> float:
        return self.peak_sum_kib / 1024

    @property
    def hwm_sum_mib(self) -> float:
        return sum(self.hwm.values()) / 1024


_LAUNCHER = (
    "import os, subprocess, sys\n"
    "proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(proc.pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')\n"
)


def run_measuring_rss(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float, str]:
    """Run a command to completion; returns (exit status, seconds, peak RSS in MiB, stderr).

    The peak is the kernel's ``ru_maxrss`` of the command (wait4), taken by a small
    launcher process: Linux counts in a child's maxrss the memory image it was forked
    with, so measured from this (large) process it would report this process's size."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as result:
        began = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, result.name, *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - began
        status, maxrss_kib = (int(x) for x in Path(result.name).read_text().split())
    if proc.returncode != 0:
        status = status or proc.returncode
    return status, elapsed, maxrss_kib / 1024, proc.stderr.decode(errors="replace")


# ------------------------------------------------------------------------------ stats


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(samples: Sequence[float]) -> tuple[float, float, float]:
    return min(samples), statistics.median(samples), max(samples)
