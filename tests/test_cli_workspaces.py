"""``sessiontally workspace update --time-zone``: the zone changes and the daily KPIs are
recomputed in it, through click's CliRunner on both engines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from click.testing import CliRunner, Result

from sessiontally import kpi
from sessiontally.cli import main
from sessiontally.store import open_store
from sessiontally.store.base import NewSession

if TYPE_CHECKING:
    from conftest import TestDatabase


def cli(db: TestDatabase, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database", db.url, *args], catch_exceptions=False)


def micros(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1_000_000)


def test_a_zone_change_moves_the_kpi_days(db: TestDatabase) -> None:
    """A session at 02:00 UTC is on the previous local day in New York and on the same
    day in Kolkata: after the change, DAU and new users count it on its Kolkata day."""
    ws = db.workspace("acme", time_zone="America/New_York")
    app = db.app(ws)
    store = open_store(db.url)
    try:
        store.record_sessions(ws.workspace_id, [
            NewSession("s1", "u1", app.app_key, micros("2025-06-02T02:00:00+00:00"), None)])
        june_1, june_2 = kpi.local_day("UTC", micros("2025-06-01T12:00:00+00:00")), \
            kpi.local_day("UTC", micros("2025-06-02T12:00:00+00:00"))
        assert store.kpi_series(ws.workspace_id, 0, kpi.DAU, june_1, june_2) == [1, 0]

        result = cli(db, "workspace", "update", "acme", "--time-zone", "Asia/Kolkata", "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["time_zone"] == "Asia/Kolkata"

        assert store.kpi_series(ws.workspace_id, 0, kpi.DAU, june_1, june_2) == [0, 1]
        assert store.kpi_series(ws.workspace_id, 0, kpi.NEW_USERS, june_1, june_2) == [0, 1]
        assert store.kpi_series(ws.workspace_id, app.app_key, kpi.MAU, june_1, june_2) == [0, 1]
    finally:
        store.close()


def test_an_unknown_zone_is_refused_and_changes_nothing(db: TestDatabase) -> None:
    db.workspace("acme", time_zone="Europe/Berlin")
    result = cli(db, "workspace", "update", "acme", "--time-zone", "Mars/Olympus")
    assert result.exit_code != 0
    assert result.stderr.strip() == "Error: unknown IANA time zone: 'Mars/Olympus'"
    shown = cli(db, "workspace", "update", "acme", "--time-zone", "Europe/Berlin", "--json")
    assert json.loads(shown.stdout)["time_zone"] == "Europe/Berlin"
