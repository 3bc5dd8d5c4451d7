"""Series values over HTTP against a brute-force count made here with zoneinfo.

The expected series is computed independently of sessiontally.buckets: each session's
local day (or local hour, with its offset) is read off ``datetime.fromtimestamp(t, zone)``,
and the list of bucket labels comes from walking UTC instants quarter-hour by quarter-hour
(every zone used here changes offset on a quarter-hour).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from e2e_support import iso, series, track

pytestmark = pytest.mark.e2e

# 2025-10-20 .. 2025-11-08 UTC: covers America/New_York's fall-back on 2025-11-02.
START = int(datetime(2025, 10, 20, tzinfo=UTC).timestamp())
END = int(datetime(2025, 11, 8, tzinfo=UTC).timestamp())


def day_label(instant: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(instant, zone).date().isoformat()


def hour_label(instant: float, zone: ZoneInfo) -> str:
    local = datetime.fromtimestamp(instant, zone)
    return local.replace(minute=0, second=0, microsecond=0).isoformat()


def expected_series(starts: list[float], unit: str, length: int, ending: float, zone: ZoneInfo) -> list[dict]:
    label = day_label if unit == "day" else hour_label
    counts = Counter(label(t, zone) for t in starts)
    if unit == "day":
        last = date.fromisoformat(day_label(ending, zone))
        labels = [(last - timedelta(days=n)).isoformat() for n in range(length - 1, -1, -1)]
    else:
        labels = []
        t = int(ending) - int(ending) % 900
        while len(labels) < length:
            current = hour_label(t, zone)
            if not labels or labels[-1] != current:
                labels.append(current)
            t -= 900
        labels.reverse()
    return [{"time": lbl, "sessions": counts.get(lbl, 0)} for lbl in labels]


@pytest.fixture(scope="module")
def data(shared_db, shared_server):
    """A New York workspace with two apps and ~600 random sessions (sent with various offsets)."""
    rng = random.Random(7)
    ws = shared_db.workspace(time_zone="America/New_York")
    apps = [shared_db.app(ws, "ios"), shared_db.app(ws, "web")]
    key = shared_db.key(ws, permissions=["sessions.track", "sessions.data_series"])
    sessions = []
    for i in range(600):
        if i % 10 == 0:  # some sessions right on or next to bucket boundaries
            t = float(rng.randrange(START, END) // 900 * 900 + rng.choice([-1, 0, 0, 1]))
        else:
            t = rng.uniform(START, END)
        sessions.append((f"s{i}", rng.randrange(2), t))
    with shared_server.client() as c:
        items = [
            {
                "session_id": sid,
                "external_id": f"u{rng.randrange(50)}",
                "app_id": apps[app].app_id,
                "started_at": iso(t, offset_minutes=rng.choice([0, 0, 345, -240, -300, 330, 60]),
                                  fraction=rng.random() < 0.3),
            }
            for sid, app, t in sessions
        ]
        # an exact instant sent with microseconds is kept to the microsecond, so the fraction in
        # `iso` matches what the server counts; the expected side uses the same instants
        response = track(c, key, items)
        assert response.status_code == 201, response.text
        assert response.json()["sessions_processed"] == 600
    return {"ws": ws, "apps": apps, "key": key, "sessions": sessions}


def check(client, data, query: str, unit: str, length: int, ending: float, zone_name: str,
          app: int | None = None) -> None:
    zone = ZoneInfo(zone_name)
    starts = [t for _, a, t in data["sessions"] if app is None or a == app]
    if app is not None:
        query += f"&app_id={data['apps'][app].app_id}"
    response = series(client, data["key"], f"length={length}&unit={unit}&{query}")
    assert response.status_code == 200, response.text
    got = response.json()["data"]
    want = expected_series(starts, unit, length, ending, zone)
    assert got == want


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


CASES = [
    # (query, the ending instant it denotes, bucketing zone)
    ("ending_at=2025-11-07", at("2025-11-07T00:00:00-05:00"), "America/New_York"),
    ("ending_at=2025-11-02T01:30:00-05:00", at("2025-11-02T01:30:00-05:00"), "America/New_York"),
    ("ending_at=2025-11-02T01:30:00-04:00", at("2025-11-02T01:30:00-04:00"), "America/New_York"),
    ("ending_at=2025-11-03T07:00:00Z", at("2025-11-03T07:00:00+00:00"), "America/New_York"),
    ("ending_at=2025-11-07T23:59:59&time_zone=Asia/Kathmandu", at("2025-11-07T23:59:59+05:45"),
     "Asia/Kathmandu"),
    ("ending_at=2025-10-30T12:20:00Z&time_zone=Asia/Kathmandu", at("2025-10-30T12:20:00+00:00"),
     "Asia/Kathmandu"),
    ("ending_at=2025-11-03T00:10:00%2B05:45&time_zone=Asia/Kathmandu", at("2025-11-03T00:10:00+05:45"),
     "Asia/Kathmandu"),
]


@pytest.mark.parametrize(("query", "ending", "zone"), CASES)
@pytest.mark.parametrize("unit", ["day", "hour"])
def test_series_matches_brute_force(client, data, query, ending, zone, unit):
    length = 20 if unit == "day" else 100
    check(client, data, query, unit, length, ending, zone)
    check(client, data, query, unit, 7 if unit == "day" else 30, ending, zone, app=1)


def test_whole_period_total(client, data):
    response = series(client, data["key"], "length=30&unit=day&ending_at=2025-11-15")
    assert sum(p["sessions"] for p in response.json()["data"]) == 600


def test_fall_back_hour_is_two_buckets(client, data):
    response = series(client, data["key"], "length=3&unit=hour&ending_at=2025-11-02T01:30:00-05:00")
    assert [p["time"] for p in response.json()["data"]] == [
        "2025-11-02T00:00:00-04:00", "2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00",
    ]
    response = series(client, data["key"], "length=1&unit=day&ending_at=2025-11-02")
    assert response.json()["data"][0]["time"] == "2025-11-02"


def test_default_ending_is_now_and_the_last_bucket_is_filling(client, shared_db):
    ws = shared_db.workspace(time_zone="Asia/Kathmandu")
    app = shared_db.app(ws)
    key = shared_db.key(ws)
    zone = ZoneInfo("Asia/Kathmandu")
    before = time.time()
    items = [{"session_id": f"now-{i}", "external_id": "u", "app_id": app.app_id, "started_at": iso(before)}
             for i in range(3)]
    assert track(client, key, items).status_code == 201
    for unit, label in (("hour", hour_label), ("day", day_label)):
        last = series(client, key, f"length=2&unit={unit}").json()["data"][-1]
        after = time.time()
        assert last["time"] in {label(before, zone), label(after, zone)}
        if last["time"] == label(before, zone):
            assert last["sessions"] == 3  # counted although the bucket has not ended
