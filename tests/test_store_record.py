"""Recording batches (both engines): each new session id is stored and counted once,
whatever mix of new, known and repeated ids a batch holds; the first write wins."""

from __future__ import annotations

import random

from sessiontally.store import Store
from sessiontally.store.base import NewSession

APP_ID = "00000000-0000-4000-8000-000000000001"
T0 = 1_750_000_000 * 1_000_000


def _session(sid: str, user: str, app_key: int, minute: int) -> NewSession:
    return NewSession(sid, user, app_key, T0 + minute * 60_000_000, None)


def test_batches_of_new_known_and_repeated_ids_count_each_id_once(store: Store) -> None:
    ws = store.create_workspace("record", "UTC", 1000).workspace_id
    app = store.create_app(ws, APP_ID, "a", None).app_key
    rng = random.Random(11)
    first_user: dict[str, str] = {}
    recorded = duplicates = 0
    for batch_number in range(12):
        # new ids only, then mixes of new and known, one of only known ids, and repeats
        # within a batch
        size = rng.randrange(1, 60)
        pool = list(first_user) if batch_number % 4 == 3 and first_user else None
        batch = []
        for i in range(size):
            sid = rng.choice(pool) if pool else (
                rng.choice(list(first_user)) if first_user and batch_number and rng.random() < 0.3
                else f"b{batch_number}-{i % max(1, size - 3)}")
            batch.append(_session(sid, f"user-{batch_number}-{i}", app, rng.randrange(600)))
        expected_new = []
        for s in batch:
            if s.session_id not in first_user:
                first_user[s.session_id] = s.external_id
                expected_new.append(s)
        outcome = store.record_sessions(ws, batch)
        assert (outcome.recorded, outcome.duplicates) == (len(expected_new), len(batch) - len(expected_new))
        recorded += outcome.recorded
        duplicates += outcome.duplicates
    assert store.count_raw_sessions(ws) == len(first_user) == recorded
    assert store.rollup_total(ws, 0, 0) == recorded
    assert store.rollup_total(ws, app, 0) == recorded
    assert duplicates > 0
