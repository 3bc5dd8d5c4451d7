"""``sessiontally demo``: months of realistic sessions in a non-UTC workspace, and a key."""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from sessiontally import demo, keys
from sessiontally.cli import main
from sessiontally.errors import Unauthenticated
from sessiontally.importer import NoRateLimit
from sessiontally.service import Service
from sessiontally.store import open_store
from sessiontally.store.base import App

KEY = re.compile(r"Authorization: Bearer (\S+)'")


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SESSIONTALLY_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)
    return str(tmp_path / "demo.sqlite3")


def run_demo(database: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["demo", "--database", database, *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result


def curls(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("curl ")]


def test_demo_creates_months_of_data_and_a_working_key(database: str) -> None:
    before = time.time()
    result = run_demo(database, "--days", "95", "--users", "300", "--seed", "7")
    commands = curls(result)
    assert len(commands) == 12
    assert all(line.startswith("#") for line in result.stdout.splitlines() if line not in commands)
    (key,) = {KEY.search(line).group(1) for line in commands[:11]}  # type: ignore[union-attr]

    store = open_store(database)
    try:
        service = Service(store, NoRateLimit())
        principal = service.authenticate(key, "127.0.0.1")
        ws = principal.workspace
        assert ws.name == "demo"
        assert ws.time_zone == "America/New_York"
        assert principal.key.permissions == frozenset(keys.PERMISSIONS)

        apps = store.list_apps(ws.workspace_id)
        assert len(apps) >= 3
        assert {a.platform for a in apps} >= {"ios", "android", "web"}

        base = "http://127.0.0.1:8000/sessions/data_series?"
        assert f"'{base}length=30&unit=day'" in commands[0]
        assert f"'{base}length=30&unit=day&app_id={apps[0].app_id}'" in commands[1]
        assert "unit=hour" in commands[2]
        assert "/segments/list" in commands[4]
        for kpi_name, line in zip(("dau", "mau", "new_users", "uninstalls"), commands[5:9], strict=True):
            assert f"/kpi/{kpi_name}/data_series?length=30'" in line
        assert "/events/list" in commands[9] and "/events/data_series?event=" in commands[10]

        # every app's write key is shown; the tracking line posts a batch with the web app's
        (web,) = [a for a in apps if a.platform == "web"]
        for each in apps:
            assert any(line.startswith("#") and line.split()[-1] == each.write_key
                       for line in result.stdout.splitlines()), each.name
        track = commands[11]
        assert track.startswith(f"curl -s -u '{web.write_key}:' -X POST 'http://127.0.0.1:8000/v1/batch' ")
        body = orjson.loads(track.split(" -d ", 1)[1].strip("'"))
        assert body["batch"][0]["type"] == "page" and body["batch"][0]["anonymousId"]

        # users with attributes, segments (three tracked) that the sessions counted toward
        segments = store.list_segments(ws.workspace_id, 0, 100, False)
        tracked = [s for s in segments if s.analytics_enabled]
        assert len(tracked) >= 2 and len(segments) > len(tracked)
        assert f"segment_id={tracked[0].segment_id}" in commands[3]
        for segment in tracked:
            series = service.data_series(
                ws, [("length", "95"), ("unit", "day"), ("segment_id", segment.segment_id)]
            )
            assert 0 < sum(p["sessions"] for p in series) < store.count_raw_sessions(ws.workspace_id)
        attrs = store.user_attributes(ws.workspace_id, "user-001")
        assert attrs is not None
        assert {"country", "plan", "language", "signup_date"} <= set(orjson.loads(attrs))

        # at least 90 full local days with sessions, then today (still filling)
        days = service.data_series(ws, [("length", "95"), ("unit", "day")])
        assert all(point["sessions"] > 0 for point in days[:-1])
        total = store.count_raw_sessions(ws.workspace_id)
        assert total == store.rollup_total(ws.workspace_id, 0, 0)
        assert total == sum(point["sessions"] for point in days)
        assert 5_000 < total < 400_000
        for app in apps:
            assert store.rollup_total(ws.workspace_id, app.app_key, 0) > 0

        with contextlib.closing(sqlite3.connect(database)) as conn:
            (latest,) = conn.execute("SELECT MAX(started_at) FROM sessions").fetchone()
        assert latest <= time.time() * 1_000_000  # nothing starts in the future
        assert latest >= (before - 3 * 3600) * 1_000_000  # and the data runs until now
    finally:
        store.close()
    assert "created workspace 'demo'" in result.stderr


def test_demo_twice_does_not_duplicate(database: str) -> None:
    first = run_demo(database, "--days", "3", "--users", "50")
    store = open_store(database)
    try:
        ws = store.find_workspace("demo")
        assert ws is not None
        count = store.count_raw_sessions(ws.workspace_id)
        assert count > 0
        second = run_demo(database, "--days", "3", "--users", "50")
        assert "already exists" in second.stderr
        assert store.count_raw_sessions(ws.workspace_id) == count
        assert store.rollup_total(ws.workspace_id, 0, 0) == count
        assert len(store.list_apps(ws.workspace_id)) == 3
        old, new = (KEY.search(curls(r)[0]).group(1) for r in (first, second))  # type: ignore[union-attr]
        assert old != new
        service = Service(store, NoRateLimit())
        assert service.authenticate(new, "127.0.0.1").workspace == ws
        with pytest.raises(Unauthenticated):  # replaced: demo runs do not pile up keys
            service.authenticate(old, "127.0.0.1")
    finally:
        store.close()


def test_demo_other_workspace_name(database: str) -> None:
    run_demo(database, "--workspace", "showcase", "--days", "2", "--users", "20")
    store = open_store(database)
    try:
        assert store.find_workspace("showcase") is not None
        assert store.find_workspace("demo") is None
    finally:
        store.close()


# ------------------------------------------------------------- the generator


APPS = [App(1, 1, "a-ios", "iOS", "ios"), App(1, 2, "a-android", "Android", "android"),
        App(1, 3, "a-web", "Web", "web")]
NOW = 1_767_000_000.0  # a fixed instant: 2025-12-29T09:20:00Z
ZONE = demo.buckets.load_zone(demo.DEMO_ZONE)


def sessions(seed: int, days: int = 28, users: int = 400) -> list[demo.NewSession]:
    return [s for batch in demo.generate_sessions(random.Random(seed), APPS, ZONE, days=days,
                                                 users=users, now=NOW, batch_size=1000)
            for s in batch]


def test_generator_is_deterministic_and_bounded() -> None:
    made = sessions(3)
    assert made == sessions(3)
    assert made != sessions(4)
    assert all(s.started_at < NOW * 1_000_000 for s in made)
    assert all(s.ended_at is None or s.ended_at >= s.started_at for s in made)
    assert len({s.session_id for s in made}) == len(made)
    first_day = datetime.fromtimestamp(min(s.started_at for s in made) / 1e6, ZONE)
    assert (first_day.hour, first_day.date().isoformat()) == (0, "2025-12-02")
    assert len({s.external_id for s in made}) > 300


def test_generator_rhythms() -> None:
    made = sessions(11, days=56, users=2000)
    local = [datetime.fromtimestamp(s.started_at / 1e6, ZONE) for s in made]
    by_hour = Counter(t.hour for t in local)
    assert by_hour[19] > 5 * by_hour[4]  # evening peak, quiet night
    assert by_hour[15] > 3 * by_hour[3]
    web = Counter(t.weekday() for t, s in zip(local, made, strict=True) if s.app_key == 3)
    ios = Counter(t.weekday() for t, s in zip(local, made, strict=True) if s.app_key == 1)
    assert web[5] + web[6] < 0.7 * (web[1] + web[2])  # the web app is quiet at weekends
    assert ios[5] + ios[6] > ios[1] + ios[2]  # the mobile apps are busier


def test_volume_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "MAX_SESSIONS", 20_000)
    made = sum(len(batch) for batch in demo.generate_sessions(
        random.Random(1), APPS, ZONE, days=200, users=5_000, now=NOW))
    assert 10_000 < made <= 20_000 * 1.05


