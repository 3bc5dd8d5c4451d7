"""``sessiontally key list`` and ``key revoke`` by id or by key, through click's CliRunner
on both engines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cli_support import cli, ok

if TYPE_CHECKING:
    from conftest import TestDatabase




def test_key_list_never_shows_a_key(db: TestDatabase) -> None:
    ok(cli(db, "workspace", "create", "acme"))
    first = ok(cli(db, "key", "create", "--workspace", "acme", "--name", "reader",
                   "--permission", "sessions.data_series", "--allow-ip", "10.0.0.0/8"))
    second = ok(cli(db, "key", "create", "--workspace", "acme", "--name", "writer",
                    "--permission", "sessions.track", "--permission", "users.track"))
    ws = db.store.find_workspace("acme")
    assert ws is not None
    db.store.touch_key(ws.workspace_id, 2, 1_750_000_000)
    ok(cli(db, "key", "revoke", "--workspace", "acme", "1"))  # by its id

    table = ok(cli(db, "key", "list", "--workspace", "acme"))
    header, *rows = table.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "PREFIX"]
    assert first not in table and second not in table
    assert rows[0].split()[1] == "reader" and "10.0.0.0/8" in rows[0]
    assert rows[0].split()[-2:] == ["never", rows[0].split()[-1]] and rows[0].split()[-1] != "no"
    assert rows[1].split()[-2:] == ["2025-06-15T15:06:40Z", "no"]
    assert "sessions.track,users.track" in rows[1]

    listed = [json.loads(line)
              for line in ok(cli(db, "key", "list", "--workspace", "1", "--json")).splitlines()]
    assert [k["name"] for k in listed] == ["reader", "writer"]
    assert set(listed[0]) == {"id", "name", "prefix", "permissions", "allowed_ips", "created_at",
                              "last_seen_at", "revoked_at"}
    assert first.startswith(listed[0]["prefix"]) and len(listed[0]["prefix"]) < len(first) // 2
    assert listed[0]["revoked_at"] is not None and listed[1]["revoked_at"] is None
    assert listed[1]["last_seen_at"] == "2025-06-15T15:06:40Z"
    assert not any(first in line or second in line for line in map(json.dumps, listed))

    ok(cli(db, "key", "revoke", "--workspace", "acme", second))  # by the key itself
    listed = [json.loads(line)
              for line in ok(cli(db, "key", "list", "--workspace", "acme", "--json")).splitlines()]
    assert all(k["revoked_at"] is not None for k in listed)


def test_key_list_of_an_unknown_workspace(db: TestDatabase) -> None:
    result = cli(db, "key", "list", "--workspace", "nope")
    assert result.exit_code != 0 and result.stderr.strip() == "Error: no workspace 'nope'"
