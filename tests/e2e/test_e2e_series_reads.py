"""How the server reads a series, over HTTP on both engines: the SQLite store answers on
the event loop with a cache of series answers (store/sqlite.py), so these check that a
cached answer never outlives a write (from the same server, from another process, from
another worker), that a series needing a raw scan (a zone rule off the quarter-hour grid)
still comes back exact, and that last-seen is still written (off the event loop)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from e2e_support import iso, series, session, track

from sessiontally.store.base import NewSession

pytestmark = pytest.mark.e2e

DAY_S = 86_400


def counts(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [point["sessions"] for point in response.json()["data"]]


@pytest.fixture
def tenant(shared_db):  # type: ignore[no-untyped-def]
    return shared_db.tenant(time_zone="UTC")


def test_a_repeated_series_sees_each_new_session(client, tenant) -> None:  # type: ignore[no-untyped-def]
    _, (app,), key = tenant
    now = time.time()
    query = f"length=3&unit=day&ending_at={iso(now)}"
    assert counts(series(client, key, query)) == [0, 0, 0]
    for expected in range(1, 4):
        assert track(client, key, [session(app.app_id, now - 1)]).status_code == 201
        assert counts(series(client, key, query))[-1] == expected
        assert counts(series(client, key, query))[-1] == expected  # asked twice: cached, same


def test_a_write_by_another_process_is_seen_at_once(client, tenant, shared_db) -> None:  # type: ignore[no-untyped-def]
    ws, (app,), key = tenant
    now = time.time()
    query = f"length=2&unit=hour&ending_at={iso(now)}"
    before = counts(series(client, key, query))
    started = int((now - 1) * 1_000_000)
    for n in range(1, 4):  # this test process writes through its own store, as `import` would
        fresh = NewSession(f"p{n}", "u", app.app_key, started, None)
        shared_db.store.record_sessions(ws.workspace_id, [fresh])
        assert counts(series(client, key, query)) == [before[0], before[1] + n]


def test_workers_never_serve_a_stale_answer(multi_server, tenant) -> None:  # type: ignore[no-untyped-def]
    """Two worker processes, each with its own cache: every read after a write (whichever
    worker took either) counts it."""
    _, (app,), key = tenant
    now = time.time()
    query = f"length=1&unit=day&ending_at={iso(now)}"
    with multi_server.client() as c:
        for n in range(1, 21):
            assert track(c, key, [session(app.app_id, now - 1)]).status_code == 201
            for _ in range(3):
                assert counts(series(c, key, query)) == [n]


def test_a_zone_rule_off_the_grid_is_counted_from_the_raw_rows(client, shared_db) -> None:  # type: ignore[no-untyped-def]
    """America/St_Johns changed at 00:01 local from 1987 to 2011: those day buckets start
    at xx:31 UTC. The server counts them from the raw sessions (in a worker thread on
    SQLite); sessions one minute either side of the boundary land where zoneinfo says."""
    ws, (app,), key = shared_db.tenant(time_zone="America/St_Johns")
    zone = ZoneInfo("America/St_Johns")
    change = int(datetime(1995, 10, 29, 2, 31, tzinfo=UTC).timestamp())  # 00:01 NDT -> 23:01 NST
    starts = [change + delta for delta in (-DAY_S, -120, -60, -1, 0, 59, 60, 3600, DAY_S)]
    items = [session(app.app_id, t) for t in starts]
    assert track(client, key, items).status_code == 201
    ending = change + 2 * DAY_S
    body = series(client, key, f"length=5&unit=day&ending_at={iso(ending)}").json()["data"]
    last = datetime.fromtimestamp(ending, zone).date()
    days = [last - timedelta(days=n) for n in range(4, -1, -1)]
    assert [p["time"] for p in body] == [d.isoformat() for d in days]
    # A day runs from its first instant to the next day's (docs/architecture.md): here
    # 1995-10-29 begins at 00:00 NDT, before the clocks go back to 23:01 on the 28th.
    edges = [first_instant(zone, d) for d in [*days, last + timedelta(days=1)]]
    assert edges[3] == change - 60
    expected = [sum(1 for t in starts if lo <= t < hi) for lo, hi in zip(edges, edges[1:], strict=False)]
    assert [p["sessions"] for p in body] == expected == [0, 0, 2, 7, 0]


def first_instant(zone: ZoneInfo, day: date) -> int:
    """Brute force, minute by minute: the first instant whose local wall time is at or
    after ``day``'s midnight (every change of this zone falls on a whole minute)."""
    midnight = datetime.combine(day, datetime.min.time())
    t = int(datetime.combine(day, datetime.min.time(), UTC).timestamp()) - 86_400
    while datetime.fromtimestamp(t, zone).replace(tzinfo=None) < midnight:
        t += 60
    return t


def test_last_seen_is_written_after_a_request(client, shared_db) -> None:  # type: ignore[no-untyped-def]
    ws, _, key = shared_db.tenant()
    before = int(time.time())
    assert series(client, key, "length=1").status_code == 200
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline:
        record = shared_db.store.find_key_by_hash(ws.workspace_id, _hash(key))
        seen = record.last_seen_at if record else None
        if seen is not None:
            break
        time.sleep(0.05)
    assert seen is not None and seen >= before


def _hash(key: str) -> bytes:
    from sessiontally.keys import hash_key

    return hash_key(key)
