"""What erasure's indexes and stored segment keys cost at ingest (by hand, an A/B of two
versions of the code, in process, on SQLite):

    git archive <base commit> src | tar -x -C /tmp/base
    for v in /tmp/base/src src; do python bench/erasure_cost.py $v seg; done   # repeat a few times

Records 100,000 sessions (batches of 1,000, 20,000 users, starts over 60 days) through
``Store.record_sessions``, then 40,000 track events (batches of 100 of one anonymous
person carrying a userId) through ``Store.record_events``, on a fresh database; with
``seg``, one tracked segment matches 75 of the users. Prints sessions/s and events/s.
Alternate the two versions several times: one run is noisy.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time

sys.path.insert(0, sys.argv[1])  # the version measured: its src folder

from sessiontally import admin, audience  # noqa: E402
from sessiontally.store import open_store  # noqa: E402
from sessiontally.store.base import NewEvent, NewSession  # noqa: E402

SESSIONS, EVENTS = 100_000, 40_000
T = 1_750_000_000_000_000
PRO = '{"attribute": "plan", "op": "eq", "value": "pro"}'


def main() -> None:
    store = open_store(os.path.join(tempfile.mkdtemp(), "db.sqlite3"))
    store.migrate()
    ws = admin.create_workspace(store, "w", "UTC")
    app = admin.create_app(store, ws, "a")
    if sys.argv[2] == "seg":
        admin.create_segment(store, ws, "pro", PRO, "", (), True)
        audience.track_users(store, ws, {"attributes": [
            {"external_id": f"user{i}", "plan": "pro"} for i in range(75)]}, 0)
    classify = audience.SegmentClassifier()
    rnd = random.Random(1)
    began = time.perf_counter()
    for _ in range(SESSIONS // 1000):
        store.record_sessions(ws.workspace_id, [
            NewSession(f"{rnd.getrandbits(64):x}", f"user{rnd.randrange(20000)}", app.app_key,
                       T + rnd.randrange(60 * 86400) * 1_000_000, None) for _ in range(1000)], classify)
    sessions_s = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(EVENTS // 100):
        person, at = rnd.randrange(5000), T + rnd.randrange(60 * 86400) * 1_000_000
        store.record_events(ws.workspace_id, app, [
            NewEvent(f"{rnd.getrandbits(64):x}", "track", "Opened", f"anon{person}", f"user{person % 100}",
                     at + i * 10_000_000, at) for i in range(100)], T + 70 * 86400 * 1_000_000, classify)
    events_s = time.perf_counter() - began
    print(f"{SESSIONS / sessions_s:.0f} sessions/s {EVENTS / events_s:.0f} events/s")


if __name__ == "__main__":
    main()
