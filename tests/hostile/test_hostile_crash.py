"""Suite 3: crashes. The server (supervisor and its 2 workers, the whole process group) is
SIGKILLed at random moments while 4 clients ingest concurrently and retry whatever was
not acknowledged, ``SESSIONTALLY_CRASHES`` times (default 20) per engine.

After each crash, with the server down and every client waiting:

- no session id is stored twice, every acknowledged session is stored, nothing is stored
  that was not sent, and each unacknowledged batch is stored wholly or not at all;
- the raw count equals the rollup total, for all apps and for each app, and the tracked
  segment's rollup equals the stored sessions of its users.

Then the server is started again on the same database, and before the clients resume,
every series (day: all apps, each app, the segment; hour: all apps, the segment) equals a
brute-force count over the stored sessions, which is the acknowledged ones plus, for each
unacknowledged batch, all of it or none of it. At the end the clients finish their retries
and everything sent is there exactly once.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from hostile_support import Ledger, bearer, iso, started_us, tally
from oracle import labels as oracle_labels

from sessiontally import admin

pytestmark = pytest.mark.e2e

CRASHES = int(os.environ.get("SESSIONTALLY_CRASHES", "20"))
CLIENTS = 4
BATCH = 100
USERS = [f"user-{n}" for n in range(200)]  # even numbers are on the "pro" plan
ZONE = "Asia/Kathmandu"  # +05:45, no DST since 1986: day and hour labels are local date/hour
SPAN_S = 3 * 86400


class Pause:
    """Lets the main thread stop the clients between requests and know when all wait."""

    def __init__(self, clients: int) -> None:
        self.running = threading.Event()
        self.cond = threading.Condition()
        self.waiting = 0
        self.clients = clients

    def gate(self) -> None:
        if self.running.is_set():
            return
        with self.cond:
            self.waiting += 1
            self.cond.notify_all()
        self.running.wait()
        with self.cond:
            self.waiting -= 1

    def stop_and_wait(self, timeout: float = 60.0) -> None:
        self.running.clear()
        with self.cond:
            assert self.cond.wait_for(lambda: self.waiting == self.clients, timeout), "clients did not pause"


def _wait_store_quiet(db) -> None:
    """PostgreSQL: wait until no backend of the killed server is still running a statement
    (a COMMIT received before the kill completes after it)."""
    if db.engine not in ("postgres", "citus"):
        return
    import psycopg

    deadline = time.monotonic() + 30
    with psycopg.connect(db.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (busy,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'"
            ).fetchone()
            if busy == 0:
                return
            time.sleep(0.05)
    raise AssertionError("backends of the killed server still busy after 30 s")


def _labels(started: int, zone: ZoneInfo) -> tuple[str, str]:
    local = datetime.fromtimestamp(started, zone)
    offset = local.strftime("%z")
    return local.date().isoformat(), local.strftime("%Y-%m-%dT%H:00:00") + f"{offset[:3]}:{offset[3:]}"


def test_sigkill_during_concurrent_ingest_loses_nothing(server_factory, db):
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    zone = ZoneInfo(ZONE)
    ws = db.workspace(time_zone=ZONE)
    apps = [db.app(ws, f"app{i}") for i in range(3)]
    app_index = {a.app_id: i for i, a in enumerate(apps)}
    key = db.key(ws)
    segment = admin.create_segment(
        db.store, ws, "pro", '{"attribute": "plan", "op": "eq", "value": "pro"}', analytics=True
    )
    server = server_factory(db, workers=2)
    with server.client() as client:
        for start in range(0, len(USERS), 50):
            chunk = [
                {"external_id": u, "plan": "pro" if n % 2 == 0 else "free"}
                for n, u in enumerate(USERS)
                if start <= n < start + 50
            ]
            assert (
                client.post("/users/track", json={"attributes": chunk}, headers=bearer(key)).status_code
                == 201
            )

    now = time.time()
    ending = iso(now + 3600)
    ending_s = int(now + 3600)
    day_labels = oracle_labels("day", zone, 5, ending_s * 1_000_000)
    hour_labels = oracle_labels("hour", zone, 80, ending_s * 1_000_000)
    ledger = Ledger()
    facts: dict[str, tuple[int, bool, str, str]] = {}  # session id -> app, pro user, day label, hour label
    pause = Pause(CLIENTS)
    done = threading.Event()
    failures: list[BaseException] = []
    outcomes = collections.Counter()

    def client_loop(number: int) -> None:
        local = random.Random(seed + number)
        try:
            with httpx.Client(timeout=60.0) as http:
                batch = 0
                while not done.is_set():
                    pause.gate()
                    if done.is_set():
                        return
                    name = f"c{number}-b{batch}"
                    batch += 1
                    items = [
                        {
                            "session_id": f"{name}-{i}",
                            "external_id": local.choice(USERS),
                            "app_id": local.choice(apps).app_id,
                            "started_at": iso(now - local.uniform(60, SPAN_S), local.choice([0, 345, -300])),
                        }
                        for i in range(BATCH)
                    ]
                    for item in items:
                        start = started_us(item) // 1_000_000
                        facts[item["session_id"]] = (
                            app_index[item["app_id"]],
                            int(item["external_id"].split("-")[1]) % 2 == 0,
                            *_labels(start, zone),
                        )
                    ledger.sending(name, items)
                    attempt = 0
                    while True:
                        pause.gate()
                        attempt += 1
                        try:
                            response = http.post(
                                server.url + "/sessions/track", json={"sessions": items}, headers=bearer(key)
                            )
                        except httpx.TransportError:
                            continue  # the server died under it: retry once it is back
                        assert response.status_code == 201, response.text
                        body = response.json()
                        outcome = (body["sessions_processed"], body["duplicates"])
                        # all or nothing: a batch committed before a crash is wholly a duplicate
                        assert outcome in {(BATCH, 0), (0, BATCH)}, body
                        assert attempt > 1 or outcome == (BATCH, 0), body
                        outcomes["retried" if attempt > 1 else "first try"] += 1
                        if attempt > 1 and outcome == (0, BATCH):
                            outcomes["committed before the crash, unacknowledged"] += 1
                        ledger.ack(name)
                        break
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            with pause.cond:  # counts as paused for good, so that the main thread sees it
                pause.waiting += 1
                pause.cond.notify_all()

    def check_store() -> set[str]:
        stored_list = db.session_ids(ws.workspace_id)
        stored = set(stored_list)
        assert len(stored_list) == len(stored), "a session id is stored twice"
        acked, sent = ledger.acked_ids(), ledger.sent_ids()
        assert acked <= stored, f"{len(acked - stored)} acknowledged sessions lost"
        assert stored <= sent, "stored sessions that were never sent"
        with ledger.lock:
            pending = {name: [i["session_id"] for i in items] for name, items in ledger.pending.items()}
        for name, ids in pending.items():
            present = sum(1 for sid in ids if sid in stored)
            assert present in (0, len(ids)), f"batch {name} half recorded: {present}/{len(ids)}"
        outcomes["unacknowledged batches at a crash"] += len(pending)
        store = db.store
        raw = store.count_raw_sessions(ws.workspace_id)
        assert raw == len(stored) == store.rollup_total(ws.workspace_id, 0, 0)
        per_app = collections.Counter(facts[sid][0] for sid in stored)
        for i, app in enumerate(apps):
            assert store.count_raw_in_range(ws.workspace_id, app.app_key, 0, 1 << 62) == per_app[i]
            assert store.rollup_total(ws.workspace_id, app.app_key, 0) == per_app[i]
        pro = sum(1 for sid in stored if facts[sid][1])
        assert store.rollup_total(ws.workspace_id, 0, segment.segment_key) == pro
        return stored

    def check_series(stored: set[str]) -> None:
        days = collections.Counter()
        hours = collections.Counter()
        for sid in stored:
            app, is_pro, day, hour = facts[sid]
            for scope in ("all", f"app{app}", *(["segment"] if is_pro else [])):
                days[(scope, day)] += 1
                if scope in ("all", "segment"):
                    hours[(scope, hour)] += 1
        queries = [("day", "all", ""), ("day", "segment", f"&segment_id={segment.segment_id}")]
        queries += [("day", f"app{i}", f"&app_id={a.app_id}") for i, a in enumerate(apps)]
        queries += [("hour", "all", ""), ("hour", "segment", f"&segment_id={segment.segment_id}")]
        with server.client() as http:
            for unit, scope, extra in queries:
                length, wanted, counts = (5, day_labels, days) if unit == "day" else (80, hour_labels, hours)
                response = http.get(
                    f"/sessions/data_series?length={length}&unit={unit}&ending_at={ending}{extra}",
                    headers=bearer(key),
                )
                assert response.status_code == 200, response.text
                got = [(p["time"], p["sessions"]) for p in response.json()["data"]]
                assert got == [(label, counts[(scope, label)]) for label in wanted], (unit, scope)

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for crash in range(CRASHES):
        acked_before = len(ledger.acked)
        pause.running.set()
        deadline = time.monotonic() + 30
        while len(ledger.acked) < acked_before + 2 and time.monotonic() < deadline and not failures:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))  # a random moment in the middle of the ingest
        server.kill()
        pause.stop_and_wait()
        assert not failures, failures
        _wait_store_quiet(db)
        stored = check_store()
        server.start()
        check_series(stored)
        tally("crashes survived (SIGKILL of the whole group, restart, checks)")
        assert not failures, (crash, failures)

    # the clients finish their retries; then everything sent is there exactly once
    done.set()
    pause.running.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert not ledger.pending
    stored = check_store()
    assert stored == ledger.sent_ids()
    check_series(stored)
    print(f"engine {db.engine}: {CRASHES} crashes, {len(stored)} sessions, outcomes {dict(outcomes)}")
    tally(f"crash-test sessions recorded ({db.engine})", len(stored))
    tally(
        "unacknowledged batches found committed on retry",
        outcomes["committed before the crash, unacknowledged"],
    )
    assert outcomes["unacknowledged batches at a crash"] > 0, "no crash interrupted a batch"
