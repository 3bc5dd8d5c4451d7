"""sessiontally.insights: the KPI and events queries (parsing, the days of a KPI series,
pages of event names) and the series scope shared with /sessions/data_series, over a
stand-in store; and the store's event-name order under a language collation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from db_support import create_postgres_database, drop_postgres_database, require_postgres

from sessiontally import insights, kpi
from sessiontally.errors import InvalidInput
from sessiontally.store.base import App, Workspace

NOW = datetime.fromisoformat("2025-06-03T02:00:00+00:00").timestamp()  # 22:00 on 06-02 in New York


def workspace(zone: str = "America/New_York") -> Workspace:
    return Workspace(workspace_id=7, name="w", time_zone=zone, rate_limit=1000)


class FakeStore:
    """The reads insights makes, recorded; one app ``app-a`` (key 3) and one event ``Buy``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def find_app(self, workspace_id: int, app_id: str) -> App | None:
        if app_id != "app-a":
            return None
        return App(workspace_id=workspace_id, app_key=3, app_id="app-a", name="A", platform=None,
                   write_key="wk_7_" + "0" * 32)

    def kpi_series(self, workspace_id: int, app_key: int, kind: int, first: int, last: int) -> list[int]:
        self.calls.append(("kpi", workspace_id, app_key, kind, first, last))
        return [day % 7 for day in range(first, last + 1)]

    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]:
        self.calls.append(("names", workspace_id, offset, limit))
        return ["Buy"] if offset == 0 else []

    def event_name_key(self, workspace_id: int, name: str) -> int | None:
        return 5 if name == "Buy" else None

    def count_events_by_quarters(self, workspace_id: int, app_key: int, segment_key: int, name_key: int,
                                 boundaries: list[int]) -> list[int]:
        self.calls.append(("events", workspace_id, app_key, segment_key, name_key, tuple(boundaries)))
        return list(range(1, len(boundaries)))


def day(text: str) -> int:
    return datetime.fromisoformat(text).toordinal() - kpi.EPOCH_ORDINAL


def refused(call, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        call()
    assert str(info.value) == message


# ------------------------------------------------------------------ KPI queries


def test_kpi_series_reads_the_days_ending_today_in_the_workspace_zone():
    store = FakeStore()
    body = insights.kpi_series(store, workspace(), "mau", [("length", "3")], NOW)  # type: ignore[arg-type]
    assert store.calls == [("kpi", 7, 0, kpi.MAU, day("2025-05-31"), day("2025-06-02"))]
    assert body == {"data": [{"time": kpi.day_label(d), "mau": d % 7}
                             for d in range(day("2025-05-31"), day("2025-06-02") + 1)],
                    "message": "success"}
    # the same instant in Tokyo is 06-03
    insights.kpi_series(store, workspace("Asia/Tokyo"), "dau", [("length", "1")], NOW)  # type: ignore[arg-type]
    assert store.calls[-1] == ("kpi", 7, 0, kpi.DAU, day("2025-06-03"), day("2025-06-03"))


@pytest.mark.parametrize(
    ("ending_at", "last"),
    [
        ("2025-06-03", "2025-06-03"),
        ("2025-06-03T23:59:59", "2025-06-03"),  # wall time: its own date
        ("2025-06-03T02:00:00Z", "2025-06-02"),  # an instant: its New York date
        ("2025-06-03T02:00:00+0900", "2025-06-02"),
        ("2025-06-02T23:00:00-4:00", "2025-06-02"),
        ("2025-06-03T03:59:59.999Z", "2025-06-02"),
        ("2025-06-03T04:00:00Z", "2025-06-03"),
        ("9998-12-31T23:59:59+14:00", "9998-12-31"),  # 05:59:59 on 12-31 in New York
        ("9998-12-31T23:59:59-12:00", "9999-01-01"),  # 07:59:59 on 9999-01-01 in New York
    ],
)
def test_kpi_days_end_with_the_local_date_of_ending_at(ending_at, last):
    store = FakeStore()
    insights.kpi_series(store, workspace(), "uninstalls",  # type: ignore[arg-type]
                        [("length", "2"), ("ending_at", ending_at)], NOW)
    assert store.calls == [("kpi", 7, 0, kpi.UNINSTALLS, day(last) - 1, day(last))]


def test_kpi_app_id_and_unit():
    store = FakeStore()
    body = insights.kpi_series(store, workspace(), "new_users",  # type: ignore[arg-type]
                               [("length", "1"), ("app_id", "app-a"), ("unit", "Day"), ("other", "x")], NOW)
    assert store.calls == [("kpi", 7, 3, kpi.NEW_USERS, day("2025-06-02"), day("2025-06-02"))]
    assert list(body["data"][0]) == ["time", "new_users"]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "'length' is required (an integer from 1 to 100)"),
        ([("length", "1"), ("unit", "hour")], "'unit' must be 'day'"),
        ([("length", "1"), ("time_zone", "UTC")],
         "'time_zone' is not accepted here: KPI days are local days in the workspace's time zone"),
        ([("length", "1"), ("segment_id", "s")],
         "'segment_id' is not accepted here: KPIs count every person of the workspace or app"),
        ([("length", "1"), ("app_id", "app-b")], "'app_id' is not an app of this workspace"),
        ([("length", "1"), ("length", "1")], "'length' is given more than once"),
        ([("length", "1"), ("ending_at", "2025-13-01")], "'ending_at' is not a valid calendar date "
                                                         "(month must be in 1..12)"),
    ],
)
def test_kpi_refusals(pairs, message):
    refused(lambda: insights.kpi_series(FakeStore(), workspace(), "dau", pairs, NOW), message)  # type: ignore[arg-type]


# ------------------------------------------------------------------ events


def test_event_names_pages():
    store = FakeStore()
    assert insights.event_names(store, workspace(), []) == {"events": ["Buy"], "message": "success"}  # type: ignore[arg-type]
    assert insights.event_names(store, workspace(), [("page", "3")]) == {"events": [], "message": "success"}  # type: ignore[arg-type]
    assert store.calls == [("names", 7, 0, 250), ("names", 7, 750, 250)]
    for raw, message in (("-1", "'page' must be a non-negative integer"), ("00", "'page' must be a "
                         "non-negative integer"), ("１", "'page' must be a non-negative integer"),
                         ("10000001", "'page' is too large")):
        refused(lambda raw=raw: insights.event_names(store, workspace(), [("page", raw)]), message)  # type: ignore[arg-type]
    refused(lambda: insights.event_names(store, workspace(), [("page", "1"), ("page", "1")]),  # type: ignore[arg-type]
            "'page' is given more than once")


def test_event_series_counts_by_quarters_of_the_bucketing_zone():
    store = FakeStore()
    pairs = [("event", "Buy"), ("length", "2"), ("unit", "hour"), ("ending_at", "2025-06-01T19:00:00Z"),
             ("time_zone", "Asia/Kolkata"), ("app_id", "app-a")]
    body = insights.event_series(store, workspace(), pairs, NOW)  # type: ignore[arg-type]
    start = int(datetime.fromisoformat("2025-06-01T17:30:00+00:00").timestamp())
    assert store.calls == [("events", 7, 3, 0, 5, (start // 900, start // 900 + 4, start // 900 + 8))]
    assert body == {"data": [{"time": "2025-06-01T23:00:00+05:30", "count": 1},
                             {"time": "2025-06-02T00:00:00+05:30", "count": 2}], "message": "success"}


def test_an_unknown_event_is_zeros_without_a_count():
    store = FakeStore()
    body = insights.event_series(store, workspace(), [("event", "Nope"), ("length", "3")], NOW)  # type: ignore[arg-type]
    assert [p["count"] for p in body["data"]] == [0, 0, 0]
    assert [p["time"] for p in body["data"]] == ["2025-05-31", "2025-06-01", "2025-06-02"]
    assert store.calls == []


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("length", "1")], "'event' is required (the name of a custom event)"),
        ([("event", ""), ("length", "1")], "'event' is required (the name of a custom event)"),
        ([("event", "a"), ("event", "b"), ("length", "1")], "'event' is given more than once"),
        ([("event", "a" * 257), ("length", "1")], "'event' is too long"),
        ([("event", "a"), ("length", "1"), ("unit", "week")], "'unit' must be 'day' or 'hour'"),
        ([("event", "a"), ("length", "1"), ("time_zone", "localtime")],
         "'time_zone' is not a known IANA time zone name"),
        ([("event", "a"), ("length", "1"), ("app_id", "app-b")], "'app_id' is not an app of this workspace"),
    ],
)
def test_event_series_refusals(pairs, message):
    refused(lambda: insights.event_series(FakeStore(), workspace(), pairs, NOW), message)  # type: ignore[arg-type]


def test_the_sessions_query_does_not_take_event():
    query = insights.parse_query([("length", "2"), ("event", "Buy")])
    assert query.event is None and query.length == 2


# ------------------------------------------------------------------ the store's name order


def test_event_names_are_in_code_point_order_under_a_language_collation():
    """PostgreSQL orders by the column's collation: under a language's (here ICU English)
    'e1' sorts before 'Signup'; /events/list must not depend on it."""
    require_postgres()
    import psycopg

    from sessiontally.store import open_store

    url = create_postgres_database()
    try:
        store = open_store(url)
        try:
            store.migrate()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute('ALTER TABLE event_names ALTER COLUMN name TYPE text COLLATE "en-x-icu"')
                names = ["e1", "Signup", "buy", "Zed", "apple", str(uuid.uuid4())]
                for key, name in enumerate(names, 1):
                    conn.execute("INSERT INTO event_names (workspace_id, name_key, name) VALUES (1, %s, %s)",
                                 (key, name))
                language = [row[0] for row in conn.execute(
                    "SELECT name FROM event_names WHERE workspace_id = 1 ORDER BY name")]
            assert language != sorted(names)  # the collation does differ here
            assert store.event_names(1, 0, 250) == sorted(names)
            assert store.event_names(1, 2, 2) == sorted(names)[2:4]
        finally:
            store.close()
    finally:
        drop_postgres_database(url)
