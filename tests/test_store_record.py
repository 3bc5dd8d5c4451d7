"""Recording batches (both engines): each new session id is stored and counted once,
whatever mix of new, known and repeated ids a batch holds; the first write wins."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sessiontally.store import Store
from sessiontally.store.base import NewSession

T0 = 1_750_000_000 * 1_000_000


def test_batches_of_new_known_and_repeated_ids_count_each_id_once(store: Store) -> None:
    ws = store.create_workspace("record", "UTC", 1000).workspace_id
    apps = [store.create_app(ws, f"00000000-0000-4000-8000-00000000000{n}", f"a{n}", None).app_key
            for n in (1, 2)]
    rng = random.Random(11)
    first_app: dict[str, int] = {}  # session id -> the app of its first write
    saw_mixed = False
    for batch_number in range(16):
        known = list(first_app)
        batch = []
        for i in range(rng.randrange(1, 60)):
            kind = rng.random()
            if batch_number % 4 == 3 and known:
                sid = rng.choice(known)  # a batch of known ids only (a retry)
            elif known and kind < 0.3:
                sid = rng.choice(known)
            elif batch and kind < 0.4:
                sid = rng.choice(batch).session_id  # repeated within the batch
            else:
                sid = f"b{batch_number}-{i}"
            # a repeat comes from the other app: the counts tell which write won
            app = apps[rng.randrange(2)] if sid not in first_app else apps[1 - apps.index(first_app[sid])]
            batch.append(NewSession(sid, f"user{i}", app, T0 + rng.randrange(600) * 60_000_000, None))
        new = 0
        for s in batch:
            if s.session_id not in first_app:
                first_app[s.session_id] = s.app_key
                new += 1
        saw_mixed |= 0 < new < len(batch)
        outcome = store.record_sessions(ws, batch)
        assert (outcome.recorded, outcome.duplicates) == (new, len(batch) - new)
    assert saw_mixed
    assert store.count_raw_sessions(ws) == len(first_app)
    assert store.rollup_total(ws, 0, 0) == len(first_app)
    wins = Counter(first_app.values())
    for app in apps:
        assert store.rollup_total(ws, app, 0) == wins[app]
        assert store.count_raw_in_range(ws, app, 0, 2**62) == wins[app]


@pytest.mark.parametrize("size", [1_300, 25_000])
def test_a_large_batch_keeps_the_first_write_of_each_id(store: Store, size: int) -> None:
    """A large batch, with repeats far from their first occurrence and ids recorded by an
    earlier batch: each repeat is a duplicate, and only the first write's app is counted.
    (SQLite inserts a batch of 20,000 or more in id order, not in the batch's.)"""
    ws = store.create_workspace("large", "UTC", 1000).workspace_id
    first, other = (store.create_app(ws, f"00000000-0000-4000-8000-00000000000{n}", f"a{n}", None).app_key
                    for n in (1, 2))
    known = [NewSession(f"known-{i}", "u", first, T0, None) for i in range(100)]
    assert store.record_sessions(ws, known).recorded == 100
    batch: list[NewSession] = []
    for i in range(size):
        if i % 7 == 6:
            sid = batch[i // 2].session_id  # repeated from far earlier in the batch
        elif i % 11 == 10:
            sid = known[i % 100].session_id
        else:
            sid = f"new-{i}"
        batch.append(NewSession(sid, "u", other if i % 7 == 6 or i % 11 == 10 else first, T0, None))
    new = len({s.session_id for s in batch} - {s.session_id for s in known})
    outcome = store.record_sessions(ws, batch)
    assert (outcome.recorded, outcome.duplicates) == (new, size - new)
    assert store.count_raw_sessions(ws) == 100 + new
    assert store.rollup_total(ws, first, 0) == 100 + new  # no repeat's write was counted
    assert store.rollup_total(ws, other, 0) == 0
