"""Crashes under the tracking API (docs/api.md "The tracking API": "once every valid message
is durable"), on both engines, with the server (supervisor and its 2 workers) SIGKILLed:

- right after a 200 from ``/v1/batch``: after a restart, every acknowledged event is
  stored and the derived sessions are exactly those of the events;
- at random moments while 3 clients send batches of 100 messages and retry, with the same
  messageIds, whatever got no answer (``SESSIONTALLY_TRACKING_CRASHES``, default 5):
  after each crash every acknowledged batch is stored, every other batch is stored wholly
  or not at all, and the series equal a brute-force sessionization of the stored events;
  at the end everything sent is there exactly once and the series are exact.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hostile_support import bearer, tally
from tracking_http_support import basic, snapshot

pytestmark = pytest.mark.e2e

CRASHES = int(os.environ.get("SESSIONTALLY_TRACKING_CRASHES", "5"))
CLIENTS = 3
BATCH = 100
TIMEOUT_S = 1800
BASE = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
SPAN_S = 2 * 86400
ENDING = "2025-06-02T23:00:00Z"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _events(rng: random.Random, count: int, apps: int) -> list[dict[str, Any]]:
    """Activity of 60 persons over two days: bursts with gaps on both sides of the timeout."""
    out = []
    for n in range(count):
        person = f"p{rng.randrange(60)}"
        at = BASE + rng.randrange(SPAN_S // 600) * 600 + rng.choice([0, 60, 1200, 1800, 1801, 2400])
        out.append(
            {
                "type": rng.choice(["track", "page", "screen"]),
                "anonymousId": person,
                "event": "Played",
                "messageId": f"m{n}",
                "timestamp": _iso(min(at, BASE + SPAN_S - 1)),
                "_app": rng.randrange(apps),
            }
        )
    return out


def _sessions(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(app, start) of every session, brute force (CONTRACT section 11)."""
    times: dict[tuple[int, str], list[int]] = collections.defaultdict(list)
    for event in events:
        at = int(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp())
        times[(event["_app"], event["anonymousId"])].append(at)
    starts = []
    for (app, _), values in times.items():
        values.sort()
        starts.append((app, values[0]))
        starts += [(app, b) for a, b in zip(values, values[1:], strict=False) if b - a > TIMEOUT_S]
    return starts


def _expected(starts: list[tuple[int, int]], app: int | None, unit: str) -> list[tuple[str, int]]:
    counts = collections.Counter(
        _iso(s - s % (86400 if unit == "day" else 3600))[: 10 if unit == "day" else 13]
        for a, s in starts
        if app is None or a == app
    )
    if unit == "day":
        labels = ["2025-05-31", "2025-06-01", "2025-06-02"]
        return [(label, counts[label]) for label in labels]
    labels = [_iso(BASE + h * 3600)[:13] for h in range(48)]
    return [(label + ":00:00+00:00", counts[label]) for label in labels]


def _check_series(url: str, key: str, apps: list[Any], starts: list[tuple[int, int]]) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        for unit, length in (("day", 3), ("hour", 48)):
            for index in (None, *range(len(apps))):
                query = f"length={length}&unit={unit}&ending_at={ENDING}"
                if index is not None:
                    query += f"&app_id={apps[index].app_id}"
                response = http.get("/sessions/data_series?" + query, headers=bearer(key))
                assert response.status_code == 200, response.text
                got = [(p["time"], p["sessions"]) for p in response.json()["data"]]
                assert got == _expected(starts, index, unit), (unit, index)


def _wire(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _wait_store_quiet(db) -> None:
    """PostgreSQL: wait until no backend of the killed server is still running a statement."""
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


def test_sigkill_right_after_a_200_loses_nothing(server_factory, db):
    ws = db.workspace()
    apps = [db.app(ws, f"app{i}") for i in range(2)]
    key = db.key(ws)
    server = server_factory(db, workers=2)
    events = _events(random.Random(7), 600, len(apps))
    with server.client() as client:
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            for app_index, app in enumerate(apps):
                mine = [_wire(e) for e in chunk if e["_app"] == app_index]
                response = client.post("/v1/batch", json={"batch": mine}, headers=basic(app.write_key))
                assert response.status_code == 200 and response.json() == {"success": True}, response.text
    server.kill()  # at once, after the last 200
    _wait_store_quiet(db)
    stored = snapshot(db.url, ws.workspace_id)
    assert sorted(stored.event_ids()) == sorted(e["messageId"] for e in events)
    assert len(stored.derived) == len(_sessions(events))
    server.start()
    _check_series(server.url, key, apps, _sessions(events))
    tally("tracking crashes survived (SIGKILL after the 200)")


def test_sigkill_during_ingest_and_retries_complete_exactly_once(server_factory, db):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ws = db.workspace()
    apps = [db.app(ws, f"app{i}") for i in range(2)]
    key = db.key(ws)
    server = server_factory(db, workers=2)
    events = _events(rng, CLIENTS * BATCH * 6 * CRASHES, len(apps))
    # each batch holds one app's messages, in random order (late events included)
    batches: list[tuple[int, list[dict[str, Any]]]] = []
    for app_index in range(len(apps)):
        mine = [e for e in events if e["_app"] == app_index]
        rng.shuffle(mine)
        batches += [(app_index, mine[i : i + BATCH]) for i in range(0, len(mine), BATCH)]
    rng.shuffle(batches)
    work = [batches[n::CLIENTS] for n in range(CLIENTS)]
    acked: set[int] = set()  # id() of acknowledged batches
    lock = threading.Lock()
    retried = collections.Counter()
    failures: list[BaseException] = []
    up = threading.Event()
    up.set()

    def client_loop(number: int) -> None:
        try:
            with httpx.Client(timeout=60) as http:
                for app_index, chunk in work[number]:
                    body = {"batch": [_wire(e) for e in chunk]}
                    attempt = 0
                    while True:
                        up.wait()
                        attempt += 1
                        try:
                            response = http.post(
                                server.url + "/v1/batch", json=body, headers=basic(apps[app_index].write_key)
                            )
                        except httpx.TransportError:
                            time.sleep(0.02)
                            continue  # no answer: retry the same messages once it is back
                        assert response.status_code == 200, response.text
                        assert response.json() == {"success": True}
                        with lock:
                            acked.add(id(chunk))
                            retried["retried" if attempt > 1 else "first try"] += 1
                        break
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    def check_stored() -> list[dict[str, Any]]:
        stored_ids = set(snapshot(db.url, ws.workspace_id).event_ids())
        with lock:
            done = set(acked)
        present = []
        for _, chunk in batches:
            ids = {e["messageId"] for e in chunk}
            if id(chunk) in done:
                assert ids <= stored_ids, "an acknowledged batch is not stored"
            found = len(ids & stored_ids)
            assert found in (0, len(ids)), f"a batch is half stored: {found}/{len(ids)}"
            if found:
                present += chunk
        assert len(stored_ids) == len(present), "stored events that were never sent"
        return present

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for _ in range(CRASHES):
        before = len(acked)
        deadline = time.monotonic() + 30
        while len(acked) < before + 2 and time.monotonic() < deadline and not failures:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.2))  # a random moment of the ingest
        up.clear()
        server.kill()
        _wait_store_quiet(db)
        assert not failures, failures
        present = check_stored()
        server.start()
        _check_series(server.url, key, apps, _sessions(present))
        up.set()
        tally("tracking crashes survived (SIGKILL during ingest, restart, checks)")
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    assert len(acked) == len(batches)
    present = check_stored()
    assert sorted(e["messageId"] for e in present) == sorted(e["messageId"] for e in events)
    _check_series(server.url, key, apps, _sessions(events))
    print(f"engine {db.engine}: seed {seed}, {CRASHES} crashes, {len(events)} events, {dict(retried)}")
