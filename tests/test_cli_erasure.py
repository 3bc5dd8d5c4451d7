"""``sessiontally user delete``, ``workspace update --retention-days`` and ``maintenance
run`` (issue 20 items 2 and 3), through click's CliRunner on both engines."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from cli_support import cli

from sessiontally import members
from sessiontally.store.base import NewSession

if TYPE_CHECKING:
    from conftest import TestDatabase

S = 1_000_000
DAY = 86_400 * S



def test_user_delete_asks_for_yes_then_erases(db: TestDatabase) -> None:
    ws = db.workspace("acme")
    app = db.app(ws)
    now = int(time.time()) * S
    db.store.record_sessions(ws.workspace_id, [NewSession("s1", "amy", app.app_key, now, None),
                                               NewSession("s2", "bob", app.app_key, now, None)])
    refused = cli(db, "user", "delete", "--workspace", "acme", "amy")
    assert refused.exit_code != 0 and "--yes" in refused.stderr
    assert db.store.count_raw_sessions(ws.workspace_id) == 2
    done = cli(db, "user", "delete", "--workspace", "acme", "amy", "--yes")
    assert done.exit_code == 0, done.stderr
    assert done.stderr.strip() == "erased amy"
    assert db.store.count_raw_sessions(ws.workspace_id) == 1
    quarter = now // (900 * S)
    assert db.store.count_by_quarters(ws.workspace_id, 0, 0, [quarter, quarter + 1]) == [1]
    again = cli(db, "user", "delete", "--workspace", str(ws.workspace_id), "amy", "--yes")
    assert again.exit_code == 0 and again.stderr.strip() == "nothing stored for amy"
    unknown = cli(db, "user", "delete", "--workspace", "nope", "amy", "--yes")
    assert unknown.exit_code != 0 and unknown.stderr.strip() == "Error: no workspace 'nope'"


def test_retention_days_is_set_cleared_and_applied_by_maintenance_run(db: TestDatabase) -> None:
    ws = db.workspace("acme")
    other = db.workspace("other")
    app = db.app(ws)
    now = int(time.time()) * S
    db.store.record_sessions(ws.workspace_id, [NewSession("old", "amy", app.app_key, now - 40 * DAY, None),
                                               NewSession("new", "amy", app.app_key, now - DAY, None)])
    nothing = cli(db, "workspace", "update", "acme")
    assert nothing.exit_code != 0 and "--retention-days" in nothing.stderr
    assert cli(db, "maintenance", "run").stdout.strip() == "no workspace with a retention"
    shown = cli(db, "workspace", "update", "acme", "--retention-days", "30", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["retention_days"] == 30
    assert json.loads(shown.stdout)["time_zone"] == "UTC"
    assert cli(db, "workspace", "update", "other", "--retention-days", "7").exit_code == 0
    ran = cli(db, "maintenance", "run", "--workspace", "acme")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.strip() == (f"workspace {ws.workspace_id} (retention 30 days): deleted 1 sessions,"
                                  " 0 events, 0 derived_sessions")
    assert db.session_ids(ws.workspace_id) == ["new"]
    everyone = cli(db, "maintenance", "run").stdout.splitlines()
    assert [line.split(" (")[0] for line in everyone] == [f"workspace {ws.workspace_id}",
                                                         f"workspace {other.workspace_id}"]
    cleared = cli(db, "workspace", "update", "acme", "--retention-days", "0")
    assert "raw rows kept: forever" in cleared.stdout
    assert cli(db, "workspace", "update", "acme", "--retention-days", "-1").exit_code != 0


def test_maintenance_run_deletes_past_sign_in_windows(db: TestDatabase) -> None:
    past = int(time.time()) - 2 * members.SIGN_IN_WINDOW_S
    assert db.store.count_sign_in_attempts(["email:x", "ip:192.0.2.1"], past - past % 900) == [1, 1]
    only = cli(db, "maintenance", "run", "--workspace", str(db.workspace("acme").workspace_id))
    assert only.exit_code == 0 and "sign-in" not in only.stdout  # not one workspace's rows
    ran = cli(db, "maintenance", "run")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.splitlines() == ["sign-in attempts: deleted 2 counts of past windows",
                                       "no workspace with a retention"]
    assert db.store.purge_sign_in_attempts(past + 10 * members.SIGN_IN_WINDOW_S) == 0
