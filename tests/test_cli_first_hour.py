"""What a new user meets in the CLI's first hour (issue 22, items 6, 7 and 8): app platforms
are a closed list, every command says in one line what it does and the group's help shows
an example session, and ``demo`` prints commands for the server that will run and replaces
its own key instead of piling keys up."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from sessiontally import admin
from sessiontally.cli import main
from sessiontally.store import open_store

SRC = Path(__file__).resolve().parents[1] / "src"
WIDTH = 80  # click's help width on a terminal of unknown size


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSIONTALLY_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


# ------------------------------------------------------------------ platforms (6)


def test_an_unknown_platform_is_refused_naming_the_list() -> None:
    ok(cli("workspace", "create", "acme"))
    result = cli("app", "create", "--workspace", "acme", "Fridge", "--platform", "toaster")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == ("Error: platform 'toaster' is not one of ios, android, web, tvos, "
                                     "macos, windows, roku, kindle, server, other")
    assert "Fridge" not in ok(cli("app", "list", "--workspace", "acme"))


@pytest.mark.parametrize("given", ["ios", "IOS", "Android", "web", "tvos", "macos", "windows", "roku",
                                   "kindle", "server", "other"])
def test_each_listed_platform_is_taken_in_lower_case(given: str) -> None:
    ok(cli("workspace", "create", "acme"))
    ok(cli("app", "create", "--workspace", "acme", "A", "--platform", given))
    assert f"platform: {given.lower()}" in ok(cli("app", "show", "--workspace", "acme", "A"))


def test_the_help_of_app_create_lists_the_platforms() -> None:
    text = " ".join(ok(cli("app", "create", "--help")).split())
    assert ", ".join(admin.PLATFORMS) in text


def test_an_app_stored_with_another_platform_still_reads(tmp_path: Path) -> None:
    ok(cli("workspace", "create", "acme"))
    store = open_store(str(tmp_path / "sessiontally.sqlite3"))
    try:
        ws = admin.resolve_workspace(store, "acme")
        store.create_app(ws.workspace_id, "00000000-0000-4000-8000-000000000001", "Old", "toaster")
    finally:
        store.close()
    assert "platform: toaster" in ok(cli("app", "show", "--workspace", "acme", "Old"))
    assert "toaster" in ok(cli("app", "list", "--workspace", "acme"))


# ------------------------------------------------------------------------ help (7)


def _commands(command: click.Command, path: tuple[str, ...] = ("sessiontally",)
              ) -> Iterator[tuple[tuple[str, ...], click.Command, int]]:
    """Every command and group under ``command``, with the width click gives its one-line
    description in its group's list of commands."""
    if isinstance(command, click.Group):
        names = list(command.commands)
        limit = WIDTH - 6 - max(len(name) for name in names)
        for name in names:
            sub = command.commands[name]
            yield (*path, name), sub, limit
            yield from _commands(sub, (*path, name))


def test_every_command_says_in_one_line_what_it_does() -> None:
    found = list(_commands(main))
    assert len(found) > 30
    for path, command, limit in found:
        where = " ".join(path)
        first = (command.help or "").split("\n\n")[0].strip()
        assert first, f"{where} has no description"
        assert "\n" not in first, f"{where}: the description's first paragraph is not one line"
        short = command.get_short_help_str(limit)
        assert short == first, f"{where}: {first!r} is cut to {short!r} in its group's list"


def test_every_help_page_renders() -> None:
    for path, _, _ in _commands(main):
        ok(cli(*path[1:], "--help"))


def test_the_group_help_ends_with_an_example_session() -> None:
    text = ok(cli("--help"))
    example = text[text.index("Example session"):].splitlines()
    commands = [line.strip() for line in example if line.strip().startswith("sessiontally ")]
    assert commands[:2] == ["sessiontally demo              # demo data; prints a key and curl lines",
                            "sessiontally serve             # API and dashboard at http://127.0.0.1:8000/"]
    assert len(commands) >= 5
    assert all(len(line) <= WIDTH for line in text.splitlines()), text


# ------------------------------------------------------------------------ demo (8)


def _demo(*args: str) -> Result:
    result = cli("demo", "--users", "30", "--days", "3", *args)
    ok(result)
    return result


def _curl_urls(result: Result) -> set[str]:
    return {re.sub(r"(https?://[^/']+).*", r"\1", url)
            for url in re.findall(r"'(https?://[^']+)'", result.stdout)}


def test_demo_prints_commands_for_serves_default_address() -> None:
    result = _demo()
    assert _curl_urls(result) == {"http://127.0.0.1:8000"}
    assert "start the API with: sessiontally serve\n" in result.stdout
    assert "sessiontally demo --host H --port P" in result.stdout  # how to change them


def test_demo_prints_commands_for_the_port_and_host_given() -> None:
    result = _demo("--port", "9123", "--host", "localhost")
    assert _curl_urls(result) == {"http://localhost:9123"}
    assert "start the API with: sessiontally serve --host localhost --port 9123" in result.stdout
    assert "open http://localhost:9123/" in result.stdout


def test_demo_on_every_address_prints_the_loopback_one() -> None:
    result = _demo("--host", "0.0.0.0")
    assert _curl_urls(result) == {"http://127.0.0.1:8000"}
    assert "sessiontally serve --host 0.0.0.0" in result.stdout


def test_demo_refuses_a_port_serve_would_refuse() -> None:
    result = cli("demo", "--port", "99999")
    assert result.exit_code != 0 and "99999" in result.stderr


def test_demo_twice_replaces_its_key(tmp_path: Path) -> None:
    first = _demo()
    second = _demo()
    assert "revoked the earlier demo key (id 1) and created a new one (id 2)" in second.stderr
    old_key = re.search(r"Bearer (\S+)'", first.stdout).group(1)  # type: ignore[union-attr]
    new_key = re.search(r"Bearer (\S+)'", second.stdout).group(1)  # type: ignore[union-attr]
    assert old_key != new_key
    listed = ok(cli("key", "list", "--workspace", "demo", "--json"))
    active = [line for line in listed.splitlines() if '"revoked_at":null' in line]
    assert len(active) == 1 and '"name":"demo"' in active[0]
    _demo()
    listed = ok(cli("key", "list", "--workspace", "demo", "--json"))
    assert sum('"revoked_at":null' in line for line in listed.splitlines()) == 1


def test_demo_leaves_other_keys_alone() -> None:
    _demo()
    ok(cli("key", "create", "--workspace", "demo", "--name", "etl", "--permission", "sessions.data_series"))
    _demo()
    listed = ok(cli("key", "list", "--workspace", "demo", "--json")).splitlines()
    active = sorted(re.search(r'"name":"([^"]+)"', line).group(1)  # type: ignore[union-attr]
                    for line in listed if '"revoked_at":null' in line)
    assert active == ["demo", "etl"]


def test_the_module_runs_as_a_program(tmp_path: Path) -> None:
    """``python -m sessiontally --help``, as the README's commands are run without install."""
    done = subprocess.run([sys.executable, "-m", "sessiontally", "--help"], cwd=tmp_path,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Example session" in done.stdout, done.stderr
