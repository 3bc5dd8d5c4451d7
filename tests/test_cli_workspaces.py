"""``sessiontally workspace update --time-zone``: the zone changes and the daily KPIs are
recomputed in it, through click's CliRunner on both engines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cli_support import cli, ok, refused

from sessiontally import kpi
from sessiontally.store import open_store
from sessiontally.store.base import NewSession

if TYPE_CHECKING:
    from conftest import TestDatabase



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


# ------------------------------------------------- list, show, update, delete




def test_workspace_list_and_show(db: TestDatabase) -> None:
    ok(cli(db, "workspace", "create", "acme", "--time-zone", "Europe/Berlin"))
    ok(cli(db, "workspace", "create", "beta", "--rate-limit", "10"))
    ok(cli(db, "app", "create", "--workspace", "acme", "iOS"))
    header, *rows = ok(cli(db, "workspace", "list")).splitlines()
    assert header.split() == ["ID", "NAME", "TIME", "ZONE", "RATE", "LIMIT", "(/H)", "APPS", "CREATED"]
    assert [row.split()[:-1] for row in rows] == [["1", "acme", "Europe/Berlin", "250000", "1"],
                                                  ["2", "beta", "UTC", "10", "0"]]
    lines = [json.loads(line) for line in ok(cli(db, "workspace", "list", "--json")).splitlines()]
    assert set(lines[0]) == {"id", "name", "time_zone", "rate_limit", "retention_days", "apps", "created_at"}
    assert lines[1]["name"] == "beta" and lines[1]["created_at"].endswith("Z")
    assert json.loads(ok(cli(db, "workspace", "show", "2", "--json"))) == lines[1]
    text = ok(cli(db, "workspace", "show", "acme")).splitlines()
    assert text[:6] == ["id: 1", "name: acme", "time zone: Europe/Berlin",
                        "rate limit: 250000 requests per UTC hour", "raw rows kept: forever", "apps: 1"]
    assert refused(cli(db, "workspace", "show", "nope")) == "Error: no workspace 'nope'"


def test_workspace_update_each_option_alone(db: TestDatabase) -> None:
    ok(cli(db, "workspace", "create", "acme", "--time-zone", "Europe/Berlin"))
    shown = json.loads(ok(cli(db, "workspace", "update", "acme", "--rate-limit", "42", "--json")))
    assert (shown["rate_limit"], shown["time_zone"]) == (42, "Europe/Berlin")
    shown = json.loads(ok(cli(db, "workspace", "update", "1", "--time-zone", "UTC", "--json")))
    assert (shown["rate_limit"], shown["time_zone"]) == (42, "UTC")
    assert "nothing to change" in refused(cli(db, "workspace", "update", "acme"))
    assert "rate limit" in refused(cli(db, "workspace", "update", "acme", "--rate-limit", "0"))
    # a bad zone with a good limit: nothing changes
    refused(cli(db, "workspace", "update", "acme", "--rate-limit", "7", "--time-zone", "Mars/Base"))
    assert json.loads(ok(cli(db, "workspace", "show", "acme", "--json")))["rate_limit"] == 42


def test_workspace_delete_needs_yes_and_removes_it(db: TestDatabase) -> None:
    ws = db.workspace("acme")
    app = db.app(ws)
    other = db.workspace("beta")
    at = micros("2025-06-02T02:00:00+00:00")
    db.store.record_sessions(ws.workspace_id, [NewSession("s1", "u1", app.app_key, at, None)])
    assert "add --yes" in refused(cli(db, "workspace", "delete", "acme"))
    assert db.store.get_workspace(ws.workspace_id) is not None
    assert ok(cli(db, "workspace", "delete", "acme", "--yes")) == ""
    assert db.store.get_workspace(ws.workspace_id) is None
    assert db.store.count_raw_sessions(ws.workspace_id) == 0
    assert db.store.get_workspace(other.workspace_id) == other
    assert refused(cli(db, "workspace", "delete", "acme", "--yes")) == "Error: no workspace 'acme'"
