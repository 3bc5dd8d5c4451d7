"""``sessiontally app list | show | update | rotate-write-key`` and the write key of ``app
create``, through click's CliRunner on both engines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
import pytest
from cli_support import cli, ok, refused
from click.testing import CliRunner

from sessiontally import keys
from sessiontally.cli import main

if TYPE_CHECKING:
    from conftest import TestDatabase





@pytest.fixture
def acme(db: TestDatabase) -> TestDatabase:
    """The database with workspace ``acme`` and two apps, ``iOS`` and ``Web``."""
    ok(cli(db, "workspace", "create", "acme"))
    ok(cli(db, "app", "create", "--workspace", "acme", "iOS", "--platform", "ios"))
    ok(cli(db, "app", "create", "--workspace", "acme", "Web", "--platform", "web"))
    return db


def app_json(db: TestDatabase, ref: str) -> dict[str, object]:
    shown: dict[str, object] = json.loads(ok(cli(db, "app", "show", "--workspace", "acme", ref, "--json")))
    return shown


def test_app_create_shows_a_working_write_key(db: TestDatabase) -> None:
    ok(cli(db, "workspace", "create", "acme"))
    app_id, second = ok(cli(db, "app", "create", "--workspace", "acme", "Web")).splitlines()
    write_key = second.removeprefix("write key: ")
    ws = db.store.find_workspace("acme")
    assert ws is not None
    found = db.store.find_app_by_write_key(ws.workspace_id, write_key)
    assert found is not None and found.app_id == app_id


def test_app_list_table(acme: TestDatabase) -> None:
    header, *rows = ok(cli(acme, "app", "list", "--workspace", "acme")).splitlines()
    assert header.split() == ["ID", "NAME", "PLATFORM", "WRITE", "KEY", "TIMEOUT", "(S)", "ALLOWED",
                              "ORIGINS", "EVENT", "LIMIT", "(/H)"]
    assert [row.split()[1:] for row in rows] == [
        ["iOS", "ios", app_json(acme, "iOS")["write_key"], "1800", "any", "10000000"],
        ["Web", "web", app_json(acme, "Web")["write_key"], "1800", "any", "10000000"],
    ]
    # columns line up: every value starts where its heading does
    assert rows[0].index("ios") == header.index("PLATFORM") == rows[1].index("web")


def test_app_list_json_lines(acme: TestDatabase) -> None:
    listed = ok(cli(acme, "app", "list", "--workspace", "1", "--json"))
    lines = [json.loads(line) for line in listed.splitlines()]
    assert [line["name"] for line in lines] == ["iOS", "Web"]
    assert set(lines[0]) == {"id", "name", "platform", "write_key", "session_timeout_s",
                             "allowed_origins", "event_limit"}
    assert lines[1] == app_json(acme, "Web")


def test_app_list_of_an_empty_workspace(db: TestDatabase) -> None:
    ok(cli(db, "workspace", "create", "empty"))
    assert ok(cli(db, "app", "list", "--workspace", "empty", "--json")) == ""
    assert len(ok(cli(db, "app", "list", "--workspace", "empty")).splitlines()) == 1  # the header


def test_app_show_by_name_or_id(acme: TestDatabase) -> None:
    web = app_json(acme, "Web")
    assert app_json(acme, str(web["id"])) == web
    assert web["platform"] == "web" and web["allowed_origins"] == [] and web["event_limit"] == 10_000_000
    text = ok(cli(acme, "app", "show", "--workspace", "acme", "Web")).splitlines()
    assert text == [
        f"id: {web['id']}",
        "name: Web",
        "platform: web",
        f"write key: {web['write_key']}",
        "session timeout: 1800 s",
        "allowed origins: any",
        "event limit: 10000000 messages per UTC hour",
    ]


@pytest.mark.parametrize(("ref", "words"), [("nope", "no app 'nope' in workspace 'acme'"),
                                            ("Web", "2 apps")])
def test_app_show_unknown_or_ambiguous(acme: TestDatabase, ref: str, words: str) -> None:
    ok(cli(acme, "app", "create", "--workspace", "acme", "Web"))
    assert words in refused(cli(acme, "app", "show", "--workspace", "acme", ref))


def test_app_update(acme: TestDatabase) -> None:
    updated = json.loads(ok(cli(
        acme, "app", "update", "--workspace", "acme", "Web", "--session-timeout", "10",
        "--allow-origin", "https://Shop.Example.com/", "--allow-origin", "http://localhost:3000",
        "--event-limit", "5000", "--json",
    )))
    assert updated["session_timeout_s"] == 10 and updated["event_limit"] == 5000
    assert updated["allowed_origins"] == ["https://shop.example.com", "http://localhost:3000"]
    assert app_json(acme, "Web") == updated
    assert app_json(acme, "iOS")["session_timeout_s"] == 1800  # only that app

    text = ok(cli(acme, "app", "update", "--workspace", "acme", "Web", "--event-limit", "7"))
    assert "allowed origins: https://shop.example.com, http://localhost:3000" in text.splitlines()
    assert "session timeout: 10 s" in text.splitlines()
    ok(cli(acme, "app", "update", "--workspace", "acme", "Web", "--any-origin"))
    assert app_json(acme, "Web")["allowed_origins"] == []
    ok(cli(acme, "app", "update", "--workspace", "acme", "Web", "--allow-origin", "https://a.example"))
    ok(cli(acme, "app", "update", "--workspace", "acme", "Web", "--allow-origin", "*"))
    assert app_json(acme, "Web")["allowed_origins"] == []


@pytest.mark.parametrize(("args", "words"), [
    ([], "nothing to change"),
    (["--session-timeout", "0"], "session timeout must be a whole number from 1 to 604,800"),
    (["--session-timeout", "604801"], "session timeout"),
    (["--session-timeout", "ten"], "'ten' is not a valid integer"),
    (["--event-limit", "0"], "event limit"),
    (["--allow-origin", "https://shop.example.com/cart"], "no path"),
    (["--allow-origin", "shop.example.com"], "scheme://host[:port]"),
    (["--allow-origin", "https://a.example", "--any-origin"], "not both"),
    (["--allow-origin", "*", "--allow-origin", "https://a.example"], "give it alone"),
])
def test_app_update_refusals_change_nothing(acme: TestDatabase, args: list[str], words: str) -> None:
    before = app_json(acme, "Web")
    assert words in refused(cli(acme, "app", "update", "--workspace", "acme", "Web", *args))
    assert app_json(acme, "Web") == before


def test_app_rotate_write_key(acme: TestDatabase) -> None:
    old = str(app_json(acme, "Web")["write_key"])
    new = ok(cli(acme, "app", "rotate-write-key", "--workspace", "acme", "Web"))
    assert new != old and keys.write_key_workspace(new) == 1
    assert app_json(acme, "Web")["write_key"] == new
    assert acme.store.find_app_by_write_key(1, old) is None
    again = json.loads(ok(cli(acme, "app", "rotate-write-key", "--workspace", "acme", "Web", "--json")))
    assert again == {"id": app_json(acme, "Web")["id"], "write_key": app_json(acme, "Web")["write_key"]}
    assert again["write_key"] != new


def test_app_commands_stay_in_their_workspace(acme: TestDatabase) -> None:
    ok(cli(acme, "workspace", "create", "globex"))
    web_id = str(app_json(acme, "Web")["id"])
    for command in (["show"], ["rotate-write-key"], ["update", "--event-limit", "1"]):
        line = refused(cli(acme, "app", *command[:1], "--workspace", "globex", web_id, *command[1:]))
        assert f"no app {web_id!r} in workspace 'globex'" in line
    assert app_json(acme, "Web")["event_limit"] == 10_000_000
    assert "ghost" in refused(cli(acme, "app", "list", "--workspace", "ghost"))


def test_every_command_has_a_one_line_help() -> None:
    """Each group's ``--help`` lists its commands with a whole one-line summary (click
    shortens a longer one with '...')."""

    def groups(group: click.Group, path: list[str]) -> list[tuple[list[str], click.Group]]:
        found = [(path, group)]
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += groups(command, [*path, name])
        return found

    for path, group in groups(main, []):
        listing = CliRunner().invoke(main, [*path, "--help"], terminal_width=80).stdout
        commands = listing.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert len(commands) == len(group.commands), path
        for line in commands:
            name, _, summary = line.strip().partition(" ")
            assert summary.strip() and not summary.endswith("..."), (path, line)


def test_app_delete_needs_yes_then_removes_the_app_and_its_write_key(acme: TestDatabase) -> None:
    from sessiontally import intake
    from sessiontally.errors import Unauthenticated
    from sessiontally.store.base import NewSession

    web = app_json(acme, "Web")
    ws = acme.store.find_workspace("acme")
    assert ws is not None
    found = acme.store.find_app(ws.workspace_id, str(web["id"]))
    assert found is not None
    acme.store.record_sessions(ws.workspace_id,
                               [NewSession("s1", "u1", found.app_key, 1_750_000_000_000_000, None)])
    assert intake.admit(acme.store, str(web["write_key"])).app_id == web["id"]

    assert "add --yes" in refused(cli(acme, "app", "delete", "--workspace", "acme", "Web"))
    assert app_json(acme, "Web") == web
    result = cli(acme, "app", "delete", "--workspace", "acme", "Web", "--yes")
    assert ok(result) == "" and "deleted app Web" in result.stderr

    assert "no app 'Web'" in refused(cli(acme, "app", "show", "--workspace", "acme", "Web"))
    with pytest.raises(Unauthenticated):
        intake.admit(acme.store, str(web["write_key"]))
    assert acme.store.count_raw_sessions(ws.workspace_id) == 0
    assert acme.store.rollup_total(ws.workspace_id, 0, 0) == 0
    listed = ok(cli(acme, "app", "list", "--workspace", "acme")).splitlines()[1:]
    assert [line.split()[1] for line in listed] == ["iOS"]
    assert "no app" in refused(cli(acme, "app", "delete", "--workspace", "acme", str(web["id"]), "--yes"))
