"""Sustained load: N minutes of mixed ingest and queries against a real server on loopback.

    python scripts/soak.py [--minutes 10] [--database URL] [--workers 2]
                           [--ingest-clients 3] [--query-clients 2] [--batch 500]
                           [--ingest-rate SESSIONS_PER_S] [--json FILE]

Starts ``sessiontally serve`` (its own process group) on a fresh database (a temporary
SQLite file unless ``--database`` names one, e.g. an empty PostgreSQL database), creates a
workspace in America/New_York with 3 apps, a key and a tracked segment, then for
``--minutes`` runs at once:

- ingest clients posting batches of new sessions (a retry of an already acknowledged
  batch now and then, which must come back wholly as duplicates);
- query clients asking ``/sessions/data_series`` (day and hour, per app, per segment, in
  other zones), ``/segments/list`` and ``/segments/details``;
- one client setting user attributes through ``/users/track``.

Any answer other than the expected status, and any transport error, is an error. The
resident memory (RSS) of the server's processes (supervisor plus workers) is sampled
every 5 s. At the end, with the load stopped, every app's daily series over the whole
span, the all-apps series and the hourly series of the last 4 days must equal the oracle
(what the client had acknowledged), and the store's raw count must equal the rollup
total. Exit status 0 only when there were no errors and every count matched.

Traffic goes to 127.0.0.1 only, and the run is bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from sessiontally import admin
from sessiontally.store import open_store

ZONE = "America/New_York"
SPAN_DAYS = 30
ALL_PERMISSIONS = (
    "sessions.data_series",
    "sessions.track",
    "users.track",
    "segments.list",
    "segments.details",
)
SEGMENT_FILTER = '{"attribute": "plan", "op": "eq", "value": "pro"}'


class Oracle:
    """What the client knows was acknowledged: sessions per (app, local day) and per local
    hour, never per session (runs of millions of sessions stay small)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.by_app_day: collections.Counter[tuple[int, str]] = collections.Counter()
        self.by_hour: collections.Counter[int] = collections.Counter()  # UTC epoch hour start
        self.sessions = 0
        self.lock = threading.Lock()

    def add(self, batch: list[tuple[int, float]]) -> None:
        with self.lock:
            for app, started in batch:
                day = datetime.fromtimestamp(started, self.zone).date().isoformat()
                self.by_app_day[(app, day)] += 1
                self.by_hour[int(started) - int(started) % 3600] += 1
            self.sessions += len(batch)


class Stats:
    def __init__(self) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def ok(self, kind: str) -> None:
        with self.lock:
            self.requests[kind] += 1

    def error(self, text: str) -> None:
        with self.lock:
            self.requests["error"] += 1
            if len(self.errors) < 50:
                self.errors.append(text[:300])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_rss_kib(pgid: int) -> int:
    """Resident memory of every process in the process group, in KiB."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ProcessLookupError, ValueError):
            continue
    return total


def iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--database", default=None, help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ingest-clients", type=int, default=3)
    parser.add_argument("--query-clients", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--ingest-rate",
        type=float,
        default=0.0,
        help="cap on sessions per second over all ingest clients (0: as fast as it goes)",
    )
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--json", default=None, help="write the summary to this file too")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, log)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sessiontally-soak-"))
    database = args.database or str(folder / "soak.sqlite3")
    store = open_store(database)
    store.migrate()
    ws = admin.create_workspace(store, f"soak-{int(time.time())}", ZONE, 10_000_000)
    apps = [admin.create_app(store, ws, f"app{i}") for i in range(3)]
    key = admin.create_key(store, ws, "soak", ALL_PERMISSIONS).key
    segment = admin.create_segment(store, ws, "pro", SEGMENT_FILTER, analytics=True)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONTALLY_")}
    env["SESSIONTALLY_DATABASE"] = database
    env["SESSIONTALLY_LOG_LEVEL"] = "WARNING"  # the access log of millions of requests is not the point
    log_path = folder / "server.stderr"
    script = Path(sys.executable).parent / "sessiontally"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sessiontally"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            print("server did not start:\n" + log_path.read_text(), file=sys.stderr)
            return 2
        time.sleep(0.1)

    zone = ZoneInfo(ZONE)
    oracle = Oracle(zone)
    stats = Stats()
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {key}"}
    rss: list[tuple[float, int]] = []
    batch_no = iter(range(10**12))
    batch_no_lock = threading.Lock()
    budget = threading.Semaphore(0)

    def next_batch() -> int:
        with batch_no_lock:
            return next(batch_no)

    def ingest(worker: int) -> None:
        rng = random.Random(args.seed * 100 + worker)
        acked: list[bytes] = []
        with httpx.Client(base_url=base, timeout=120, headers=headers) as client:
            while not stop.is_set():
                if args.ingest_rate and not budget.acquire(timeout=0.5):
                    continue
                if acked and rng.random() < 0.03:  # a client retrying an acknowledged batch
                    body = rng.choice(acked)
                    try:
                        response = client.post(
                            "/sessions/track", content=body, headers={"Content-Type": "application/json"}
                        )
                    except httpx.HTTPError as exc:
                        stats.error(f"retry: {type(exc).__name__}: {exc}")
                        continue
                    if response.status_code != 201 or response.json()["sessions_processed"] != 0:
                        stats.error(f"retry answered {response.status_code} {response.text[:200]}")
                    else:
                        stats.ok("track (retry)")
                    continue
                n = next_batch()
                items, known = [], []
                for i in range(args.batch):
                    app = rng.randrange(len(apps))
                    started = time.time() - rng.uniform(60, SPAN_DAYS * 86400 - 7200)
                    started = float(int(started))
                    items.append(
                        {
                            "session_id": f"b{n}-{i}",
                            "external_id": f"user-{rng.randrange(5000)}",
                            "app_id": apps[app].app_id,
                            "started_at": iso(started),
                        }
                    )
                    known.append((app, started))
                body = json.dumps({"sessions": items}).encode()
                try:
                    response = client.post(
                        "/sessions/track", content=body, headers={"Content-Type": "application/json"}
                    )
                except httpx.HTTPError as exc:
                    stats.error(f"track: {type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 201 or response.json()["sessions_processed"] != len(items):
                    stats.error(f"track answered {response.status_code} {response.text[:200]}")
                    continue
                oracle.add(known)
                stats.ok("track")
                if len(acked) < 20:
                    acked.append(body)
                elif rng.random() < 0.05:
                    acked[rng.randrange(20)] = body

    def query(worker: int) -> None:
        rng = random.Random(args.seed * 1000 + worker)
        with httpx.Client(base_url=base, timeout=120, headers=headers) as client:
            while not stop.is_set():
                choice = rng.random()
                if choice < 0.7:
                    params: dict[str, Any] = {
                        "length": rng.randint(1, 100),
                        "unit": rng.choice(["day", "hour"]),
                    }
                    if rng.random() < 0.3:
                        params["app_id"] = rng.choice(apps).app_id
                    if rng.random() < 0.2:
                        params["segment_id"] = segment.segment_id
                    if rng.random() < 0.2:
                        params["time_zone"] = rng.choice(["UTC", "Asia/Kathmandu", "Australia/Lord_Howe"])
                    if rng.random() < 0.3:
                        params["ending_at"] = iso(time.time() - rng.uniform(0, SPAN_DAYS * 86400))
                    path, kind, expected = "/sessions/data_series", "series", 200
                elif choice < 0.85:
                    path, params, kind, expected = "/segments/list", {"page": 0}, "segments.list", 200
                else:
                    path, params = "/segments/details", {"segment_id": segment.segment_id}
                    kind, expected = "segments.details", 200
                try:
                    response = client.get(path, params=params)
                except httpx.HTTPError as exc:
                    stats.error(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
                if response.status_code != expected:
                    stats.error(f"{kind} answered {response.status_code} {response.text[:200]}")
                else:
                    stats.ok(kind)

    def users() -> None:
        rng = random.Random(args.seed + 7)
        with httpx.Client(base_url=base, timeout=120, headers=headers) as client:
            while not stop.is_set():
                body = {
                    "attributes": [
                        {
                            "external_id": f"user-{rng.randrange(5000)}",
                            "plan": rng.choice(["pro", "free", None]),
                            "visits": rng.randrange(1000),
                        }
                        for _ in range(50)
                    ]
                }
                try:
                    response = client.post("/users/track", json=body)
                except httpx.HTTPError as exc:
                    stats.error(f"users: {type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 201:
                    stats.error(f"users answered {response.status_code} {response.text[:200]}")
                else:
                    stats.ok("users.track")
                stop.wait(0.2)

    def sample_memory() -> None:
        while not stop.is_set():
            rss.append((time.monotonic() - started_at, group_rss_kib(server.pid)))
            stop.wait(5.0)

    def pace() -> None:  # releases one batch of budget at the requested session rate
        interval = args.batch / args.ingest_rate
        while not stop.is_set():
            budget.release()
            stop.wait(interval)

    started_at = time.monotonic()
    threads = [threading.Thread(target=ingest, args=(i,)) for i in range(args.ingest_clients)]
    threads += [threading.Thread(target=query, args=(i,)) for i in range(args.query_clients)]
    threads += [threading.Thread(target=users), threading.Thread(target=sample_memory)]
    if args.ingest_rate:
        threads.append(threading.Thread(target=pace))
    for thread in threads:
        thread.start()
    end = started_at + args.minutes * 60
    try:
        while time.monotonic() < end:
            time.sleep(min(30.0, max(0.0, end - time.monotonic())))
            elapsed = time.monotonic() - started_at
            print(
                f"[{elapsed:6.0f} s] sessions {oracle.sessions:,}  "
                f"requests {sum(stats.requests.values()):,}  "
                f"errors {stats.requests['error']}  rss {rss[-1][1] / 1024 if rss else 0:.0f} MiB",
                flush=True,
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - started_at
    rss.append((elapsed, group_rss_kib(server.pid)))

    # ---------------------------------------------------------------- final counts
    mismatches: list[str] = []
    today = datetime.now(zone).date()
    days = [(today - timedelta(days=k)).isoformat() for k in range(SPAN_DAYS + 1)][::-1]
    with httpx.Client(base_url=base, timeout=120, headers=headers) as client:
        for app_index in [None, *range(len(apps))]:
            params = {"length": len(days), "unit": "day"}
            if app_index is not None:
                params["app_id"] = apps[app_index].app_id
            response = client.get("/sessions/data_series", params=params)
            got = {p["time"]: p["sessions"] for p in response.json()["data"]}
            for day in days:
                want = (
                    sum(oracle.by_app_day[(a, day)] for a in range(len(apps)))
                    if app_index is None
                    else oracle.by_app_day[(app_index, day)]
                )
                if got.get(day) != want:
                    mismatches.append(f"app {app_index} day {day}: series {got.get(day)} oracle {want}")
        response = client.get(
            "/sessions/data_series", params={"length": 96, "unit": "hour", "time_zone": "UTC"}
        )
        for point in response.json()["data"]:
            hour = int(datetime.fromisoformat(point["time"]).timestamp())
            if point["sessions"] != oracle.by_hour[hour]:
                mismatches.append(
                    f"hour {point['time']}: series {point['sessions']} oracle {oracle.by_hour[hour]}"
                )
    raw = store.count_raw_sessions(ws.workspace_id)
    rollup = store.rollup_total(ws.workspace_id, 0, 0)
    if not raw == rollup == oracle.sessions:
        mismatches.append(f"raw {raw}, rollup {rollup}, oracle {oracle.sessions}")

    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    store.close()

    steady = [kib for t, kib in rss if t >= 60] or [kib for _, kib in rss]
    summary = {
        "minutes": round(elapsed / 60, 2),
        "database": "sqlite"
        if args.database is None or not args.database.startswith("postgres")
        else "postgresql",
        "workers": args.workers,
        "requests": dict(stats.requests),
        "requests_total": sum(stats.requests.values()),
        "sessions_acknowledged": oracle.sessions,
        "sessions_per_s": round(oracle.sessions / elapsed),
        "requests_per_s": round(sum(stats.requests.values()) / elapsed),
        "errors": stats.requests["error"],
        "error_samples": stats.errors,
        "rss_mib": {
            "start": round(rss[0][1] / 1024, 1),
            "after_1_min": round(steady[0] / 1024, 1),
            "end": round(rss[-1][1] / 1024, 1),
            "max": round(max(k for _, k in rss) / 1024, 1),
        },
        "rss_samples": len(rss),
        "final_check": {
            "raw": raw,
            "rollup": rollup,
            "oracle": oracle.sessions,
            "series_checked": (len(apps) + 1) * len(days) + 96,
            "mismatches": mismatches[:20],
        },
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    ok = not stats.requests["error"] and not mismatches
    if ok and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"database and server log kept in {folder}")
    print("SOAK PASSED" if ok else "SOAK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
