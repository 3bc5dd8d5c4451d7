"""The service's remembered answers (service.py): a repeated series query and a repeated
key are answered from the store's answer cache, exactly while the stored data and, for a
series ending "now", the clock's bucket are unchanged."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from segment_support import FakeClock, service_for

from sessiontally import admin
from sessiontally.errors import InvalidInput, Unauthenticated, WouldBlock
from sessiontally.service import Service
from sessiontally.store.base import NewSession, Workspace
from sessiontally.store.sqlite import SqliteStore

APP_ID = "00000000-0000-4000-8000-000000000001"
ZONE = "America/New_York"
# 2026-03-08 is a DST change in New York (a day of 23 hours), in the series below.
NOON = datetime(2026, 3, 9, 12, 0, tzinfo=ZoneInfo(ZONE)).timestamp()


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = SqliteStore(tmp_path / "service.sqlite3")
    store.migrate()
    ws = admin.create_workspace(store, "w", ZONE, 1000)
    app = store.create_app(ws.workspace_id, APP_ID, "a", None)
    clock = FakeClock(NOON)
    yield service_for(store, clock), store, ws, app.app_key, clock
    store.close()


def _record(store: SqliteStore, ws: Workspace, app_key: int, sid: str, at: float) -> None:
    store.record_sessions(ws.workspace_id, [NewSession(sid, "u", app_key, int(at * 1_000_000), None)])


DAYS = (("length", "3"), ("unit", "day"))


def _count_computations(service: Service) -> list[object]:
    """From now on, a list that grows by one each time the service computes an answer
    instead of using a kept one."""
    computed: list[object] = []
    original = service._series_answer
    service._series_answer = lambda *a: computed.append(a) or original(*a)  # type: ignore[method-assign]
    return computed


def test_a_repeated_query_is_answered_without_reading_again(served) -> None:  # type: ignore[no-untyped-def]
    service, store, ws, app_key, _ = served
    _record(store, ws, app_key, "a", NOON - 60)
    first = service.data_series(ws, DAYS)
    reads = []
    original = store.count_by_quarters
    store.count_by_quarters = lambda *a: reads.append(a) or original(*a)  # type: ignore[method-assign]
    assert service.data_series(ws, list(DAYS)) == first  # a list of pairs is the same query
    assert reads == []
    assert orjson.loads(orjson.dumps(service.data_series_json(ws, DAYS))) == first
    assert [p["sessions"] for p in first] == [0, 0, 1]


def test_a_write_is_seen_by_the_next_query(served) -> None:  # type: ignore[no-untyped-def]
    service, store, ws, app_key, _ = served
    assert [p["sessions"] for p in service.data_series(ws, DAYS)] == [0, 0, 0]
    _record(store, ws, app_key, "a", NOON - 60)
    assert [p["sessions"] for p in service.data_series(ws, DAYS)] == [0, 0, 1]
    other = SqliteStore(store.path)  # another process's store
    try:
        _record(other, ws, app_key, "b", NOON - 86_400)
    finally:
        other.close()
    assert [p["sessions"] for p in service.data_series(ws, DAYS)] == [0, 1, 1]


def test_a_series_ending_now_moves_with_the_clock(served) -> None:  # type: ignore[no-untyped-def]
    """Remembered only while the clock stays in the last bucket: at local midnight the
    answer is a new day, and a clock set back gets the earlier day again."""
    service, store, ws, app_key, clock = served
    midnight = datetime(2026, 3, 10, tzinfo=ZoneInfo(ZONE)).timestamp()
    _record(store, ws, app_key, "a", midnight + 60)
    before = service.data_series(ws, DAYS)
    assert before[-1]["time"] == "2026-03-09"
    computed = _count_computations(service)
    clock.now = midnight - 0.001
    assert service.data_series(ws, DAYS) == before
    assert computed == []
    clock.now = midnight
    after = service.data_series(ws, DAYS)
    assert [p["time"] for p in after] == ["2026-03-08", "2026-03-09", "2026-03-10"]
    assert [p["sessions"] for p in after] == [0, 0, 1]
    clock.now = NOON
    assert service.data_series(ws, DAYS)[-1]["time"] == "2026-03-09"


def test_a_series_with_ending_at_does_not_depend_on_the_clock(served) -> None:  # type: ignore[no-untyped-def]
    service, _, ws, _, clock = served
    query = (*DAYS, ("ending_at", "2026-03-08"))
    first = service.data_series(ws, query)
    computed = _count_computations(service)
    clock.now = NOON + 30 * 86_400
    assert service.data_series(ws, query) == first
    assert computed == []
    assert [p["time"] for p in first] == ["2026-03-06", "2026-03-07", "2026-03-08"]


def _kept(service: Service) -> dict[tuple[object, ...], object]:
    """The answers the service keeps in this thread for the data as they are now."""
    cache = service.answers.under(service.store.change_token())
    assert cache is not None
    return cache


def _kept_answers(service: Service) -> list[object]:
    cache = _kept(service)
    return [key for key in cache if key[0] == "series-answer"]


def test_refusals_and_deferred_scans_are_not_remembered(served) -> None:  # type: ignore[no-untyped-def]
    service, store, ws, _, _ = served
    with pytest.raises(InvalidInput):
        service.data_series(ws, (("length", "0"), ("unit", "day")))
    # Monrovia's days of 1971 start at 00:44:30 UTC, off the quarter-hour grid: a raw scan,
    # which an event loop defers to a thread (WouldBlock)
    off_grid = (*DAYS, ("time_zone", "Africa/Monrovia"), ("ending_at", "1971-06-01"))
    with pytest.raises(WouldBlock):
        service.data_series(ws, off_grid, may_scan=False)
    assert _kept_answers(service) == []
    assert [p["sessions"] for p in service.data_series(ws, off_grid)] == [0, 0, 0]  # in a thread
    assert len(_kept_answers(service)) == 1


def test_the_key_parameter_is_not_part_of_a_kept_answer(served) -> None:  # type: ignore[no-untyped-def]
    service, store, ws, _, _ = served
    secret = "st_1_" + "s" * 40
    first = service.data_series_json(ws, (*DAYS, ("api_key", secret)))
    assert orjson.loads(orjson.dumps(service.data_series_json(ws, DAYS))) == orjson.loads(orjson.dumps(first))
    assert len(_kept_answers(service)) == 1
    assert secret not in repr(_kept(service))


def test_callers_cannot_change_a_kept_answer(served) -> None:  # type: ignore[no-untyped-def]
    service, _, ws, _, _ = served
    service.data_series(ws, DAYS)[0]["sessions"] = 99
    assert service.data_series(ws, DAYS)[0]["sessions"] == 0


def test_a_key_is_remembered_per_client_address(served) -> None:  # type: ignore[no-untyped-def]
    """An allowlisted key admitted from one address is still refused from another, and a
    refused key is refused again (refusals are not kept)."""
    service, store, ws, _, _ = served
    key = admin.create_key(store, ws, "k", ["sessions.data_series"], allowed_ips=["10.0.0.0/8"]).key
    for _ in range(2):
        assert service.authenticate(key, "10.1.2.3").key.name == "k"
        with pytest.raises(Unauthenticated):
            service.authenticate(key, "192.0.2.1")
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            service.authenticate(wrong, "10.1.2.3")


def test_a_revocation_by_another_process_is_seen_at_once(served) -> None:  # type: ignore[no-untyped-def]
    service, store, ws, _, _ = served
    key = admin.create_key(store, ws, "k", ["sessions.data_series"]).key
    assert service.authenticate(key, "127.0.0.1").key.name == "k"  # writes last-seen
    assert service.authenticate(key, "127.0.0.1").key.name == "k"  # now remembered
    assert any(k[0] == "principal" for k in _kept(service))
    operator = SqliteStore(store.path)  # `sessiontally key revoke` in another process
    try:
        admin.revoke_key(operator, ws, key)
    finally:
        operator.close()
    with pytest.raises(Unauthenticated):
        service.authenticate(key, "127.0.0.1")


def test_a_kept_answer_ends_with_its_bucket_across_dst_changes(served) -> None:  # type: ignore[no-untyped-def]
    """The 23-hour day of 2026-03-08 is one bucket until its last second; the hour
    01:00-02:00 repeated on 2026-11-01 is two buckets, each answered for itself."""
    service, _, ws, _, clock = served
    new_york = ZoneInfo(ZONE)
    clock.now = datetime(2026, 3, 8, 0, 30, tzinfo=new_york).timestamp()
    short_day = service.data_series(ws, DAYS)
    computed = _count_computations(service)
    clock.now = datetime(2026, 3, 8, 23, 59, 59, tzinfo=new_york).timestamp()  # 22.5 h later
    assert service.data_series(ws, DAYS) == short_day
    assert short_day[-1]["time"] == "2026-03-08" and computed == []
    clock.now = datetime(2026, 3, 9, tzinfo=new_york).timestamp()
    assert service.data_series(ws, DAYS)[-1]["time"] == "2026-03-09"

    hours = (("length", "2"), ("unit", "hour"))
    first_pass = datetime(2026, 11, 1, 1, 10, tzinfo=new_york, fold=0).timestamp()  # EDT
    clock.now = first_pass
    edt = service.data_series(ws, hours)
    clock.now = first_pass + 3600  # 01:10 again, now EST
    est = service.data_series(ws, hours)
    assert edt[-1]["time"] != est[-1]["time"]
    assert est[0]["time"] == edt[-1]["time"]
    clock.now = first_pass + 1800  # 01:40 EDT: the first 01:00 bucket (computed again)
    assert service.data_series(ws, hours) == edt
