"""Suite 4: retry storms, on both engines, against a server with two worker processes.

8 clients each send every batch 3 times, all at once (each client in its own shuffled
order, so that copies of one batch race each other on different connections and
workers). Some sessions also appear in two different batches. Then:

- every answer is a 201 whose ``sessions_processed + duplicates`` is its batch size;
- over all answers, ``sessions_processed`` adds up to the number of distinct sessions,
  and for each distinct session exactly one answer counted it as new (per batch, the new
  counts of its 24 copies add up to the sessions it was the first to bring);
- the store holds each session once, the rollup equals the raw count (all apps, each
  app), and the series equal a brute-force count.
"""

from __future__ import annotations

import collections
import random
import threading
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from db_support import in_threads
from hostile_support import bearer, iso, tally

pytestmark = pytest.mark.e2e

CLIENTS = 8
COPIES = 3
BATCHES = 16
BATCH = 100
SHARED = 10  # sessions of each batch that also appear in the next batch


def test_retry_storm_counts_exactly(multi_server, shared_db):
    rng = random.Random()
    db = shared_db
    ws = db.workspace(time_zone="America/New_York")
    apps = [db.app(ws, f"app{i}") for i in range(2)]
    key = db.key(ws)
    now = time.time()
    run = uuid.uuid4().hex[:8]
    pool = [
        {
            "session_id": f"{run}-{n}",
            "external_id": f"user-{n % 97}",
            "app_id": apps[n % 2].app_id,
            "started_at": iso(now - rng.uniform(60, 20 * 86400), rng.choice([0, -300, 330])),
        }
        for n in range(BATCHES * BATCH)
    ]
    batches = []
    for b in range(BATCHES):
        own = pool[b * BATCH : (b + 1) * BATCH]
        following = pool[((b + 1) % BATCHES) * BATCH :][:SHARED]  # overlaps with the next batch
        batches.append(own[: BATCH - SHARED] + following)
    distinct = {item["session_id"]: item for batch in batches for item in batch}

    answers: list[tuple[int, int, int]] = []  # batch, processed, duplicates
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        order = [b for b in range(BATCHES) for _ in range(COPIES)]
        random.Random(number).shuffle(order)
        with httpx.Client(base_url=multi_server.url, timeout=120) as http:
            barrier.wait()
            for b in order:
                response = http.post(
                    "/sessions/track", json={"sessions": batches[b]}, headers=bearer(key)
                )
                assert response.status_code == 201, response.text
                body = response.json()
                with lock:
                    answers.append((b, body["sessions_processed"], body["duplicates"]))

    in_threads(CLIENTS, client)
    tally("retry-storm requests", len(answers))

    assert len(answers) == CLIENTS * COPIES * BATCHES
    assert all(p + d == BATCH for _, p, d in answers), [a for a in answers if a[1] + a[2] != BATCH][:5]
    assert sum(p for _, p, _ in answers) == len(distinct)
    per_batch = collections.Counter()
    for b, p, _ in answers:
        per_batch[b] += p
    assert sum(per_batch.values()) == len(distinct)
    # a batch's copies bring at most its own sessions, and at least those no other batch has
    for b in range(BATCHES):
        assert BATCH - 2 * SHARED <= per_batch[b] <= BATCH, (b, per_batch[b])

    stored = db.session_ids(ws.workspace_id)
    assert len(stored) == len(set(stored)) == len(distinct)
    assert set(stored) == set(distinct)
    assert (
        db.store.count_raw_sessions(ws.workspace_id)
        == db.store.rollup_total(ws.workspace_id, 0, 0)
        == len(distinct)
    )
    for app in apps:
        expected = sum(1 for item in distinct.values() if item["app_id"] == app.app_id)
        assert db.store.rollup_total(ws.workspace_id, app.app_key, 0) == expected

    zone = ZoneInfo("America/New_York")
    days = collections.Counter(
        datetime.fromisoformat(item["started_at"]).astimezone(zone).date().isoformat()
        for item in distinct.values()
    )
    with multi_server.client() as http:
        response = http.get(
            f"/sessions/data_series?length=25&unit=day&ending_at={iso(now)}", headers=bearer(key)
        )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [(p["time"], p["sessions"]) for p in data] == [(p["time"], days[p["time"]]) for p in data]
    assert sum(p["sessions"] for p in data) == len(distinct)
