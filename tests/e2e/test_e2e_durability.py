"""Crash safety: SIGKILL the server mid-ingest, restart it, retry, and check that every
acknowledged session is there exactly once and the rollup matches the raw sessions
(CONTRACT.md section 4: "what it reports is durable ... the client's retry completes it").
Runs on both engines (the ``db`` fixture): SQLite with ``synchronous=FULL``, PostgreSQL with
the server's ``synchronous_commit`` (on), which the store must never turn off."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from e2e_support import bearer, iso, series

pytestmark = pytest.mark.e2e

BATCH = 500
THREADS = 4
CYCLES = 3
SPAN_S = 60 * 86400  # sessions start within the last 60 days


@dataclass
class Ledger:
    """What the client knows: batches acknowledged (201) and batches still to (re)send."""

    acked: dict[str, list[dict]] = field(default_factory=dict)
    pending: dict[str, list[dict]] = field(default_factory=dict)
    outcomes: list[tuple[int, int, bool]] = field(default_factory=list)  # processed, duplicates, retry
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, name: str, items: list[dict], body: dict, retry: bool) -> None:
        with self.lock:
            self.pending.pop(name, None)
            self.acked[name] = items
            self.outcomes.append((body["sessions_processed"], body["duplicates"], retry))


def make_batch(name: str, app_id: str, rng: random.Random, now: float) -> list[dict]:
    return [
        {
            "session_id": f"{name}-{i}",
            "external_id": f"user-{rng.randrange(1000)}",
            "app_id": app_id,
            "started_at": iso(now - rng.uniform(0, SPAN_S), offset_minutes=rng.choice([0, 330, -300])),
        }
        for i in range(BATCH)
    ]


def send(client: httpx.Client, key: str, ledger: Ledger, name: str, items: list[dict],
         retry: bool = False) -> bool:
    """One attempt; True when acknowledged. Connection errors leave the batch pending."""
    with ledger.lock:
        ledger.pending[name] = items
    try:
        response = client.post("/sessions/track", json={"sessions": items}, headers=bearer(key))
    except httpx.TransportError:
        return False
    assert response.status_code == 201, response.text
    body = response.json()
    # all or nothing: a batch that was (maybe) committed before the crash is wholly a duplicate
    assert (body["sessions_processed"], body["duplicates"]) in {(BATCH, 0), (0, BATCH)}, body
    # a first attempt of fresh ids is wholly new; only a retry may find its batch already in
    assert retry or body["sessions_processed"] == BATCH, body
    ledger.ack(name, items, body, retry)
    return True


def test_sigkill_mid_ingest_then_retry_is_exactly_once(server_factory, db):
    rng = random.Random(20250601)
    ws = db.workspace(time_zone="America/New_York")
    app = db.app(ws)
    key = db.key(ws, permissions=["sessions.track", "sessions.data_series"])
    server = server_factory(db, workers=2)
    ledger = Ledger()
    now = time.time()
    sequence = iter(range(1_000_000))

    for cycle in range(CYCLES):
        acked_before = len(ledger.acked)
        stop = threading.Event()
        errors: list[BaseException] = []

        def ingest(thread: int, cycle: int = cycle, stop: threading.Event = stop,
                   errors: list[BaseException] = errors) -> None:
            try:
                with server.client(timeout=60.0) as client:
                    while not stop.is_set():
                        name = f"c{cycle}-t{thread}-b{next(sequence)}"
                        if not send(client, key, ledger, name, make_batch(name, app.app_id, rng, now)):
                            return  # the server is gone: the batch stays pending for the retry
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=ingest, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        # let some batches through, then crash in the middle of the ingest
        deadline = time.monotonic() + 30
        while len(ledger.acked) < acked_before + 4 + cycle * 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        assert all(t.is_alive() for t in threads), "ingest threads ended before the crash"
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(ledger.acked) > acked_before
        assert ledger.pending, "the crash did not interrupt any batch"

        # restart on the same database; the client retries every unacknowledged batch
        server.start()
        with server.client(timeout=60.0) as client:
            for name, items in sorted(ledger.pending.items()):
                assert send(client, key, ledger, name, items, retry=True)
            assert not ledger.pending

            sent_ids = {item["session_id"] for items in ledger.acked.values() for item in items}
            assert len(sent_ids) == len(ledger.acked) * BATCH
            raw = db.store.count_raw_sessions(ws.workspace_id)
            assert raw == len(sent_ids)
            # what the responses reported adds up: new ones plus retried ones already committed
            assert sum(p + d for p, d, _ in ledger.outcomes) == raw
            assert db.store.rollup_total(ws.workspace_id, 0, 0) == raw
            assert db.store.rollup_total(ws.workspace_id, app.app_key, 0) == raw
            response = series(client, key, "length=62&unit=day")
            assert response.status_code == 200, response.text
            assert sum(p["sessions"] for p in response.json()["data"]) == raw
            # every acknowledged session is present, exactly once (session ids are the key)
            stored = db.session_ids(ws.workspace_id)
            present = set(stored)
            assert len(stored) == len(present)
            assert present == sent_ids
    print("committed-before-crash batches:", ledger.outcomes.count((0, BATCH, True)),
          "retried:", sum(1 for o in ledger.outcomes if o[2]), "batches:", len(ledger.outcomes))
    # the crashes did interrupt some batches whose commit may or may not have happened
    assert len(ledger.outcomes) >= CYCLES * 5
