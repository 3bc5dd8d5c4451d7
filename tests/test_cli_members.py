"""``sessiontally member add | list | remove | reset-password``, through click's CliRunner
on both engines."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click
import pytest
from cli_support import cli, ok, refused

from sessiontally import members
from sessiontally.cli import main
from sessiontally.errors import SignInFailed

if TYPE_CHECKING:
    from conftest import TestDatabase





@pytest.fixture
def acme(db: TestDatabase) -> TestDatabase:
    ok(cli(db, "workspace", "create", "acme"))
    ok(cli(db, "workspace", "create", "other"))
    return db


def signs_in(db: TestDatabase, email: str, password: str) -> bool:
    try:
        members.sign_in(db.store, email, password, None, time.time())
    except SignInFailed:
        return False
    return True


def test_add_prints_the_email_and_a_generated_password(acme: TestDatabase) -> None:
    email, second = ok(cli(acme, "member", "add", "--workspace", "acme", " Amy@Example.com")).splitlines()
    assert email == "amy@example.com" and second.startswith("password: ")
    password = second.removeprefix("password: ")
    assert len(password) == 20 and signs_in(acme, email, password)


def test_add_json_and_a_password_from_stdin(acme: TestDatabase) -> None:
    added = json.loads(ok(cli(acme, "member", "add", "--workspace", "1", "bob@example.com", "--json")))
    assert set(added) == {"member_id", "email", "password"} and added["email"] == "bob@example.com"
    assert signs_in(acme, "bob@example.com", added["password"])
    shown = ok(cli(acme, "member", "add", "--workspace", "acme", "cy@example.com", "--password-stdin",
                   stdin="chosen password\r\n"))
    assert shown == "cy@example.com"  # the operator's own password is not echoed
    assert signs_in(acme, "cy@example.com", "chosen password")
    again = json.loads(ok(cli(acme, "member", "add", "--workspace", "acme", "di@example.com",
                              "--password-stdin", "--json", stdin="another password\n")))
    assert again["password"] is None and signs_in(acme, "di@example.com", "another password")


@pytest.mark.parametrize("args, stdin, fragment", [
    (["not-an-email"], None, "name@example.com"),
    (["amy@example.com", "--password-stdin"], "short\n", "at least 10"),
    (["amy@example.com", "--password-stdin"], "", "at least 10"),
])
def test_add_refusals_are_one_line(acme: TestDatabase, args: list[str], stdin: str | None,
                                   fragment: str) -> None:
    assert fragment in refused(cli(acme, "member", "add", "--workspace", "acme", *args, stdin=stdin))


def test_a_taken_email_is_refused_in_any_workspace(acme: TestDatabase) -> None:
    ok(cli(acme, "member", "add", "--workspace", "acme", "amy@example.com"))
    for workspace in ("acme", "other"):
        line = refused(cli(acme, "member", "add", "--workspace", workspace, "AMY@example.com"))
        assert line == "Error: a member with e-mail 'amy@example.com' already exists"
    assert "no workspace" in refused(cli(acme, "member", "add", "--workspace", "nope", "x@example.com"))


def test_list_table_and_json(acme: TestDatabase) -> None:
    assert ok(cli(acme, "member", "list", "--workspace", "acme")).split() == ["ID", "E-MAIL", "CREATED",
                                                                              "LAST", "SIGN-IN"]
    ok(cli(acme, "member", "add", "--workspace", "acme", "zed@example.com", "--password-stdin",
           stdin="zed's password\n"))
    ok(cli(acme, "member", "add", "--workspace", "acme", "amy@example.com"))
    ok(cli(acme, "member", "add", "--workspace", "other", "bob@example.com"))
    assert signs_in(acme, "zed@example.com", "zed's password")
    header, *rows = ok(cli(acme, "member", "list", "--workspace", "acme")).splitlines()
    assert [row.split()[1] for row in rows] == ["amy@example.com", "zed@example.com"]
    assert rows[0].split()[3] == "never"
    assert rows[1].split()[3].endswith("Z") and rows[1].index("20") == header.index("CREATED")
    lines = [json.loads(line) for line in ok(cli(acme, "member", "list", "--workspace", "acme",
                                                 "--json")).splitlines()]
    assert [line["email"] for line in lines] == ["amy@example.com", "zed@example.com"]
    assert set(lines[0]) == {"member_id", "email", "created_at", "last_sign_in_at"}
    assert lines[0]["last_sign_in_at"] is None and lines[1]["last_sign_in_at"].endswith("Z")


def test_remove_needs_yes_and_stays_in_its_workspace(acme: TestDatabase) -> None:
    added = json.loads(ok(cli(acme, "member", "add", "--workspace", "acme", "amy@example.com", "--json")))
    assert "--yes" in refused(cli(acme, "member", "remove", "--workspace", "acme", "amy@example.com"))
    assert "no member" in refused(cli(acme, "member", "remove", "--workspace", "other",
                                      "amy@example.com", "--yes"))
    assert signs_in(acme, "amy@example.com", added["password"])
    result = cli(acme, "member", "remove", "--workspace", "acme", str(added["member_id"]), "--yes")
    assert ok(result) == "" and result.stderr.strip() == "removed amy@example.com"
    assert not signs_in(acme, "amy@example.com", added["password"])
    assert "no member" in refused(cli(acme, "member", "remove", "--workspace", "acme",
                                      "amy@example.com", "--yes"))


def test_reset_password(acme: TestDatabase) -> None:
    added = json.loads(ok(cli(acme, "member", "add", "--workspace", "acme", "amy@example.com", "--json")))
    new = ok(cli(acme, "member", "reset-password", "--workspace", "acme", "amy@example.com"))
    assert len(new) == 20 and new != added["password"]
    assert signs_in(acme, "amy@example.com", new)
    assert not signs_in(acme, "amy@example.com", added["password"])
    shown = json.loads(ok(cli(acme, "member", "reset-password", "--workspace", "acme",
                              str(added["member_id"]), "--password-stdin", "--json",
                              stdin="my own password\n")))
    assert shown == {"member_id": added["member_id"], "email": "amy@example.com",
                     "password": "my own password"}
    assert signs_in(acme, "amy@example.com", "my own password")
    assert "no member" in refused(cli(acme, "member", "reset-password", "--workspace", "other",
                                      "amy@example.com"))
    assert "whitespace" in refused(cli(acme, "member", "reset-password", "--workspace", "acme",
                                       "amy@example.com", "--password-stdin", stdin=" " * 12 + "\n"))


def test_every_member_command_has_one_line_help() -> None:
    group = main.commands["member"]
    assert isinstance(group, click.Group)
    assert group.help and len(group.help.strip().splitlines()) == 1
    for name in ("add", "list", "remove", "reset-password"):
        command = group.commands[name]
        assert command.help, name
        summary = command.get_short_help_str(limit=200)
        assert summary and not summary.endswith("..."), (name, summary)
