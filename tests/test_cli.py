"""The ``sessiontally`` command line (CONTRACT.md section 8): workspaces, apps, keys.

Commands run in-process through click's CliRunner; one test runs the real console script.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessiontally import keys
from sessiontally.api.errors import status_of
from sessiontally.cli import main
from sessiontally.errors import SessiontallyError
from sessiontally.importer import NoRateLimit
from sessiontally.service import Service
from sessiontally.store import open_store

DATABASE_ENV = "SESSIONTALLY_DATABASE"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database path; no SESSIONTALLY_DATABASE leaks in, the default file would
    land in tmp_path."""
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return str(tmp_path / "cli.sqlite3")


def cli(database: str | None, *args: str, env: dict[str, str] | None = None) -> Result:
    argv = (["--database", database] if database else []) + list(args)
    return CliRunner().invoke(main, argv, env=env, catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout.strip()


def one_line_error(result: Result) -> str:
    """A refusal: non-zero status, nothing on stdout, exactly one line on stderr."""
    assert result.exit_code != 0, result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def authenticate(database: str, key: str) -> tuple[str, frozenset[str]]:
    store = open_store(database)
    try:
        principal = Service(store, NoRateLimit()).authenticate(key, "127.0.0.1")
        return principal.workspace.name, principal.key.permissions
    finally:
        store.close()


# -------------------------------------------------------------------- workspaces


def test_workspace_create_prints_the_id(database: str) -> None:
    assert ok(cli(database, "workspace", "create", "acme")) == "1"
    assert ok(cli(database, "workspace", "create", "globex")) == "2"


def test_workspace_create_json(database: str) -> None:
    out = json.loads(ok(cli(database, "workspace", "create", "acme", "--time-zone",
                            "Asia/Kolkata", "--rate-limit", "500", "--json")))
    assert out == {"id": 1, "name": "acme", "time_zone": "Asia/Kolkata", "rate_limit": 500}


def test_workspace_defaults_to_utc(database: str) -> None:
    out = json.loads(ok(cli(database, "workspace", "create", "acme", "--json")))
    assert out["time_zone"] == "UTC" and out["rate_limit"] == 250_000


def test_workspace_bad_zone_is_refused(database: str) -> None:
    line = one_line_error(cli(database, "workspace", "create", "acme", "--time-zone", "Mars/Olympus"))
    assert "Mars/Olympus" in line and "time zone" in line


def test_workspace_duplicate_name_is_refused(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    result = cli(database, "workspace", "create", "acme")
    assert result.exit_code == 1
    assert "already exists" in one_line_error(result)


@pytest.mark.parametrize(("args", "words"), [
    (["123"], "digits"),
    (["   "], "1 to"),
    (["acme", "--rate-limit", "0"], "rate limit"),
])
def test_workspace_bad_values_are_refused(database: str, args: list[str], words: str) -> None:
    assert words in one_line_error(cli(database, "workspace", "create", *args))


# -------------------------------------------------------------------------- apps


def test_app_create_prints_a_uuid_then_the_write_key(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    app_id, write_key_line = ok(cli(database, "app", "create", "--workspace", "acme", "iOS app")).splitlines()
    assert str(uuid.UUID(app_id)) == app_id
    label, write_key = write_key_line.split(": ")
    assert label == "write key" and keys.write_key_workspace(write_key) == 1


def test_app_create_json_by_workspace_id(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    out = json.loads(ok(cli(database, "app", "create", "--workspace", "1", "Droid",
                            "--platform", "Android", "--json")))
    assert set(out) == {"id", "name", "platform", "write_key"}
    assert out["name"] == "Droid" and out["platform"] == "android"
    assert out["write_key"].startswith(keys.WRITE_KEY_PREFIX)
    uuid.UUID(out["id"])


def test_app_create_unknown_workspace(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    for ref in ("nope", "42"):
        result = cli(database, "app", "create", "--workspace", ref, "web")
        assert result.exit_code == 1
        assert repr(ref) in one_line_error(result)


# -------------------------------------------------------------------------- keys


def test_key_create_prints_a_working_key(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    key = ok(cli(database, "key", "create", "--workspace", "acme", "--name", "etl",
                 "--permission", "sessions.data_series"))
    assert key.startswith(keys.KEY_PREFIX) and len(key) >= 40
    assert authenticate(database, key) == ("acme", frozenset({"sessions.data_series"}))


def test_key_create_json(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    out = json.loads(ok(cli(
        database, "key", "create", "--workspace", "acme", "--name", "all", "--json",
        *[arg for p in keys.PERMISSIONS for arg in ("--permission", p)],
        "--permission", "users.track",  # repeated: kept once
        "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::1",
    )))
    assert set(out) == {"id", "key", "name", "permissions", "allowed_ips"}
    assert out["id"] == 1 and out["name"] == "all"
    assert out["permissions"] == list(keys.PERMISSIONS)
    assert out["allowed_ips"] == ["10.0.0.0/8", "2001:db8::1/128"]
    with pytest.raises(SessiontallyError) as refused:  # 127.0.0.1 is outside the allowlist
        authenticate(database, out["key"])
    assert status_of(refused.value) == 401


def test_key_create_unknown_workspace(database: str) -> None:
    result = cli(database, "key", "create", "--workspace", "ghost", "--name", "k",
                 "--permission", "users.track")
    assert result.exit_code == 1
    assert "ghost" in one_line_error(result)


def test_key_create_bad_allow_ip(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    result = cli(database, "key", "create", "--workspace", "acme", "--name", "k",
                 "--permission", "users.track", "--allow-ip", "10.0.0.0/99")
    assert result.exit_code == 1
    assert "10.0.0.0/99" in one_line_error(result)


def test_key_create_bad_permission(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    result = cli(database, "key", "create", "--workspace", "acme", "--name", "k",
                 "--permission", "sessions.delete")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "sessions.delete" in result.stderr
    with contextlib.closing(sqlite3.connect(database)) as conn:  # nothing was created
        assert conn.execute("SELECT COUNT(*) FROM api_keys").fetchone() == (0,)


def test_key_create_bad_permission_is_one_line(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    one_line_error(cli(database, "key", "create", "--workspace", "acme", "--name", "k",
                       "--permission", "sessions.delete"))


def test_key_revoke_by_key(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    key = ok(cli(database, "key", "create", "--workspace", "acme", "--name", "k",
                 "--permission", "users.track"))
    other = ok(cli(database, "key", "create", "--workspace", "acme", "--name", "k2",
                   "--permission", "users.track"))
    result = cli(database, "key", "revoke", "--workspace", "acme", key)
    assert result.exit_code == 0 and "revoked" in result.stderr
    with pytest.raises(SessiontallyError):
        authenticate(database, key)
    assert authenticate(database, other)[0] == "acme"  # only that key
    again = cli(database, "key", "revoke", "--workspace", "acme", key)
    assert again.exit_code == 1 and "no such active key" in one_line_error(again)


def test_key_revoke_by_id(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    created = json.loads(ok(cli(database, "key", "create", "--workspace", "acme", "--name", "k",
                                "--permission", "users.track", "--json")))
    ok(cli(database, "key", "revoke", "--workspace", "acme", str(created["id"])))
    with pytest.raises(SessiontallyError):
        authenticate(database, created["key"])


def test_key_revoke_unknown_key_or_other_workspace(database: str) -> None:
    ok(cli(database, "workspace", "create", "acme"))
    ok(cli(database, "workspace", "create", "globex"))
    key = ok(cli(database, "key", "create", "--workspace", "acme", "--name", "k",
                 "--permission", "users.track"))
    for workspace, ref in (("acme", "st_not-a-key"), ("acme", "99"), ("globex", key), ("globex", "1")):
        result = cli(database, "key", "revoke", "--workspace", workspace, ref)
        assert result.exit_code == 1
        one_line_error(result)
    assert authenticate(database, key)[0] == "acme"  # still valid
    unknown = cli(database, "key", "revoke", "--workspace", "ghost", key)
    assert unknown.exit_code == 1 and "ghost" in one_line_error(unknown)


# ---------------------------------------------------------------------- database


def _workspaces(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM workspaces")]


def test_database_option_on_the_group_and_on_the_command(database: str, tmp_path: Path) -> None:
    group_db, command_db = tmp_path / "group.db", tmp_path / "command.db"
    ok(cli(None, "--database", str(group_db), "workspace", "create", "g"))
    ok(cli(None, "workspace", "create", "c", "--database", f"sqlite:///{command_db}"))
    ok(cli(None, "--database", str(group_db), "app", "create", "--workspace", "g", "web"))
    assert _workspaces(group_db) == ["g"]
    assert _workspaces(command_db) == ["c"]
    assert not (tmp_path / "sessiontally.sqlite3").exists()  # the default was not used


def test_database_from_the_environment_and_the_default(database: str, tmp_path: Path) -> None:
    env_db = tmp_path / "env.db"
    ok(cli(None, "workspace", "create", "e", env={DATABASE_ENV: str(env_db)}))
    assert _workspaces(env_db) == ["e"]
    ok(cli(None, "workspace", "create", "d"))  # no option, no variable: ./sessiontally.sqlite3
    assert _workspaces(tmp_path / "sessiontally.sqlite3") == ["d"]


def test_command_option_wins_over_the_environment(database: str, tmp_path: Path) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    ok(cli(None, "workspace", "create", "f", "--database", str(flag_db),
           env={DATABASE_ENV: str(env_db)}))
    assert _workspaces(flag_db) == ["f"]
    assert not env_db.exists()


def test_group_option_wins_over_the_environment(database: str, tmp_path: Path) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    ok(cli(None, "--database", str(flag_db), "workspace", "create", "f",
           env={DATABASE_ENV: str(env_db)}))
    assert flag_db.exists() and _workspaces(flag_db) == ["f"]


def test_unopenable_database_is_one_line(database: str) -> None:
    line = one_line_error(cli("sqlite://relative.db", "workspace", "create", "acme"))
    assert "cannot open store" in line


# ------------------------------------------------------------- the real command


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "sessiontally"
    if script.exists():
        return [str(script)]
    found = shutil.which("sessiontally")
    assert found, "the sessiontally console script is not installed"
    return [found]


def test_console_script_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONTALLY_")}
    env[DATABASE_ENV] = str(tmp_path / "real.db")

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(_console_script() + list(args), input=stdin, capture_output=True,
                              env=env, cwd=tmp_path, timeout=120, check=False)

    created = run("workspace", "create", "acme", "--time-zone", "Europe/Paris", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["time_zone"] == "Europe/Paris"
    app_id = run("app", "create", "--workspace", "acme", "web").stdout.decode().splitlines()[0]
    lines = [
        json.dumps({"session_id": f"s{i}", "external_id": "u1", "app_id": app_id,
                    "started_at": f"2025-06-01T12:0{i}:00Z"})
        for i in range(3)
    ]
    imported = run("import", "--workspace", "acme", "-", "--json",
                   stdin="\n".join(lines + ["{oops"]).encode())
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {
        "recorded": 3, "duplicates": 0, "rejected": 1,
        "errors": [{"line": 4, "message": json.loads(imported.stdout)["errors"][0]["message"]}],
    }
    assert b"line 4: not valid JSON" in imported.stderr
    refused = run("workspace", "create", "acme")
    assert refused.returncode == 1
    assert refused.stdout == b"" and len(refused.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_serve_refuses_a_bad_setting_in_one_line(database: str, value: str) -> None:
    line = one_line_error(cli(database, "serve", "--port", "1", env={"SESSIONTALLY_READ_CACHE": value}))
    assert line == f"Error: SESSIONTALLY_READ_CACHE must be a whole number (got '{value}')"
