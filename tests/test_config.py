"""Settings (src/sessiontally/config.py): one declaration per setting, from which the
``Settings`` fields, the CLI options and their help derive; docs/operations.md's table
checked against the declarations; precedence (flag > environment > default); one-line
errors; and ``serve`` handing the settings to its workers without touching the
environment."""

from __future__ import annotations

import ast
import dataclasses
import functools
import logging
import os
import pickle
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessiontally import cli
from sessiontally.api.app import create_app
from sessiontally.config import (
    DATABASE,
    LOG_LEVELS,
    PORT,
    READ_CACHE,
    SETTINGS,
    Setting,
    Settings,
    sqlite_file,
)

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
CONFIG_SOURCE = Path(__file__).resolve().parent.parent / "src" / "sessiontally" / "config.py"


# ------------------------------------------------------------------- declarations


def test_settings_fields_are_the_declarations_in_order() -> None:
    fields = dataclasses.fields(Settings)
    assert [field.name for field in fields] == [setting.name for setting in SETTINGS]
    assert [field.default for field in fields] == [setting.default for setting in SETTINGS]
    assert Settings() == Settings.from_env({})


def test_names_variables_and_flags_are_unique() -> None:
    for attribute in ("name", "env", "flag"):
        values = [getattr(setting, attribute) for setting in SETTINGS if getattr(setting, attribute)]
        assert len(values) == len(set(values)), attribute
    for setting in SETTINGS:
        assert setting.env or setting.flag, setting.name
        assert setting.env is None or setting.env.startswith("SESSIONTALLY_")


def test_log_levels_are_levels_of_the_logging_module() -> None:
    for name in LOG_LEVELS:
        assert isinstance(logging.getLevelName(name), int), name


def test_config_imports_nothing_else_of_the_package() -> None:
    tree = ast.parse(CONFIG_SOURCE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("sessiontally"), node.module
        elif isinstance(node, ast.Import):
            assert not any(alias.name.startswith("sessiontally") for alias in node.names)


def test_sqlite_file_of_each_kind_of_url() -> None:
    assert sqlite_file("data/s.sqlite3") == "data/s.sqlite3"
    assert sqlite_file("sqlite:///data/s.sqlite3") == "data/s.sqlite3"
    assert sqlite_file("sqlite:////abs/s.sqlite3") == "/abs/s.sqlite3"
    assert sqlite_file("postgresql://u@h/db") is None
    assert sqlite_file("postgres://u@h/db") is None


# -------------------------------------------------------------------- precedence


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.database == "sessiontally.sqlite3"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert (settings.redis_url, settings.forwarded_allow_ips) == (None, None)
    assert (settings.log_level, settings.read_cache) == ("INFO", 512)


def test_the_environment_wins_over_the_default_and_a_given_value_over_both() -> None:
    environ = {"SESSIONTALLY_DATABASE": "env.db", "SESSIONTALLY_READ_CACHE": "0",
               "SESSIONTALLY_LOG_LEVEL": "warning", "SESSIONTALLY_REDIS_URL": "redis://r/1",
               "SESSIONTALLY_FORWARDED_ALLOW_IPS": "10.0.0.5"}
    from_env = Settings.from_env(environ)
    assert (from_env.database, from_env.read_cache, from_env.log_level) == ("env.db", 0, "WARNING")
    assert (from_env.redis_url, from_env.forwarded_allow_ips) == ("redis://r/1", "10.0.0.5")
    given = Settings.from_env(environ, database="flag.db", forwarded_allow_ips="10.0.0.6", port=9000)
    assert (given.database, given.forwarded_allow_ips, given.port) == ("flag.db", "10.0.0.6", 9000)
    assert given.read_cache == 0  # not given: still the environment's
    assert Settings.from_env(environ, database=None).database == "env.db"  # None: not given


def test_an_empty_value_counts_as_unset() -> None:
    environ = {"SESSIONTALLY_DATABASE": "", "SESSIONTALLY_REDIS_URL": "", "SESSIONTALLY_READ_CACHE": ""}
    settings = Settings.from_env(environ, database="")
    assert (settings.database, settings.redis_url, settings.read_cache) == ("sessiontally.sqlite3", None, 512)
    assert Settings.from_env({"SESSIONTALLY_DATABASE": "env.db"}, database="").database == "env.db"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONTALLY_READ_CACHE", "7")
    assert Settings.from_env().read_cache == 7


def test_an_unknown_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Settings.from_env({}, colour="blue")


# ----------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SESSIONTALLY_READ_CACHE": "abc"}, "SESSIONTALLY_READ_CACHE must be a whole number (got 'abc')"),
        ({"SESSIONTALLY_READ_CACHE": "-1"}, "SESSIONTALLY_READ_CACHE must be a whole number (got '-1')"),
        ({"SESSIONTALLY_LOG_LEVEL": "loud"},
         "SESSIONTALLY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got 'loud')"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Settings.from_env(environ)
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_a_setting_reads_text_with_its_parser() -> None:
    assert READ_CACHE.read("12", "X") == 12
    with pytest.raises(ValueError, match=r"^--port must be a whole number from 1 to 65535 \(got '70000'\)$"):
        PORT.read("70000", "--port")


# ------------------------------------------------------------------------- docs


def _table_rows() -> list[str]:
    """The rows of docs/operations.md's configuration reference table."""
    text = OPERATIONS.read_text()
    section = text[text.index("## Configuration reference"):]
    section = section[: section.index("\n## ", 1)]
    return [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(("| setting", "|---"))]


def _mentions(row: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", row) is not None


def _names(row: str, setting: Setting[object]) -> bool:
    """Whether a table row names the setting (its variable or its flag)."""
    by_env = setting.env is not None and f"`{setting.env}`" in row
    return by_env or (setting.flag is not None and _mentions(row, setting.flag))


def test_every_declared_setting_is_in_the_docs_table() -> None:
    rows = _table_rows()
    for setting in SETTINGS:
        found = [row for row in rows if _names(row, setting)]
        assert len(found) == 1, (setting.name, found)
        name, where, default, _meaning = (cell.strip() for cell in found[0].strip("|").split(" | ", 3))
        if setting.env:
            assert f"`{setting.env}`" in name, setting.name
        if setting.flag:
            assert _mentions(name, setting.flag), setting.name
        expected_where = " / ".join(
            (["env"] if setting.env else [])
            + (["every command" if setting.every_command else "serve"] if setting.flag else [])
        )
        assert where == expected_where, setting.name
        assert setting.default_text in default, (setting.name, default)


# Variables of the test suite and CI (where the test databases are, whether a missing one
# fails), which operations.md names for running the tests on Citus: not the service's.
TEST_VARIABLES = re.compile(r"SESSIONTALLY_(TEST|REQUIRE)_[A-Z_]+|SESSIONTALLY_CITUS_SOURCE")


def test_every_variable_in_the_docs_is_declared() -> None:
    declared = {setting.env for setting in SETTINGS if setting.env}
    mentioned = {name for name in re.findall(r"SESSIONTALLY_[A-Z_]+", OPERATIONS.read_text())
                 if not TEST_VARIABLES.fullmatch(name)}
    assert mentioned <= declared, mentioned - declared
    assert declared <= mentioned, declared - mentioned


def test_every_table_row_is_a_declared_setting() -> None:
    for row in _table_rows():
        assert any(_names(row, setting) for setting in SETTINGS), row


# -------------------------------------------------------------------------- CLI


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_serve_help_shows_each_flag_from_its_declaration() -> None:
    result = _invoke("serve", "--help")
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for setting in (DATABASE, *cli.SERVE_SETTINGS):
        assert setting.flag is not None
        assert _flat(setting.help) in shown, setting.name
        assert f"default: {setting.default_text}" in shown, setting.name
        if setting.env:
            assert f"env var: {setting.env}" in shown, setting.name
    assert [setting.flag for setting in cli.SERVE_SETTINGS] == [
        "--host", "--port", "--workers", "--forwarded-allow-ips",
    ]


def test_every_command_takes_database_with_its_declared_help() -> None:
    for args in (["--help"], ["workspace", "create", "--help"], ["import", "--help"]):
        result = _invoke(*args)
        assert result.exit_code == 0, result.output
        assert "--database URL" in result.output
        assert _flat(DATABASE.help) in _flat(result.output)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Settings]:
    """The settings ``serve`` would hand to uvicorn (no server is started), from a working
    directory of its own with no SESSIONTALLY_ variable set."""
    for name in list(os.environ):
        if name.startswith("SESSIONTALLY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    handed: list[Settings] = []
    monkeypatch.setattr(cli, "_run_server", handed.append)
    return handed


def test_serve_flags_win_over_the_environment(served: list[Settings], tmp_path: Path) -> None:
    env = {"SESSIONTALLY_DATABASE": str(tmp_path / "env.db"),
           "SESSIONTALLY_FORWARDED_ALLOW_IPS": "10.0.0.5", "SESSIONTALLY_READ_CACHE": "3"}
    before = dict(os.environ)
    result = _invoke("serve", "--database", str(tmp_path / "flag.db"), "--port", "9001",
                     "--workers", "3", "--forwarded-allow-ips", "10.0.0.6", env=env)
    assert result.exit_code == 0, result.output
    (settings,) = served
    assert settings.database == str(tmp_path / "flag.db")
    assert (settings.port, settings.workers, settings.host) == (9001, 3, "127.0.0.1")
    assert settings.forwarded_allow_ips == "10.0.0.6"
    assert settings.read_cache == 3  # no flag: the environment's
    assert (tmp_path / "flag.db").exists() and not (tmp_path / "env.db").exists()  # migrated once
    assert dict(os.environ) == before  # serve leaves the environment alone


def test_serve_uses_the_environment_then_the_defaults(served: list[Settings], tmp_path: Path) -> None:
    result = _invoke("serve", env={"SESSIONTALLY_FORWARDED_ALLOW_IPS": "10.0.0.5"})
    assert result.exit_code == 0, result.output
    result = _invoke("serve")
    assert result.exit_code == 0, result.output
    from_env, defaults = served
    assert from_env.forwarded_allow_ips == "10.0.0.5"
    assert defaults == Settings()  # ./sessiontally.sqlite3 and the other defaults
    assert (tmp_path / "sessiontally.sqlite3").exists()
    assert "SESSIONTALLY_DATABASE" not in os.environ


def test_the_group_database_option_reaches_serve(served: list[Settings], tmp_path: Path) -> None:
    result = _invoke("--database", str(tmp_path / "group.db"), "serve")
    assert result.exit_code == 0, result.output
    assert served[0].database == str(tmp_path / "group.db")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "Error: Invalid value for '--workers': "
                             "must be a whole number from 1 to 64 (got '0')"),
        (["--port", "http"], "Error: Invalid value for '--port': "
                             "must be a whole number from 1 to 65535 (got 'http')"),
    ],
)
def test_a_bad_flag_is_one_line(served: list[Settings], args: list[str], message: str) -> None:
    result = _invoke("serve", *args)
    assert result.exit_code == 2 and not served
    assert result.stderr.strip().splitlines() == [message]


def test_serve_refuses_a_bad_variable_in_one_line(served: list[Settings]) -> None:
    result = _invoke("serve", env={"SESSIONTALLY_LOG_LEVEL": "chatty"})
    assert result.exit_code == 1 and not served
    assert result.stderr.strip().splitlines() == [
        "Error: SESSIONTALLY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got 'chatty')"
    ]


def test_settings_and_the_app_factory_pickle_for_spawned_workers() -> None:
    settings = Settings.from_env({}, database="x.db", workers=2, forwarded_allow_ips="10.0.0.5")
    factory = pickle.loads(pickle.dumps(functools.partial(create_app, settings)))
    assert factory.func is create_app and factory.args == (settings,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.database = "y.db"  # type: ignore[misc]


def test_declared_defaults_type_check() -> None:
    """Each declared default is what its parser reads from the default's own text."""
    for setting in SETTINGS:
        if setting.default is not None:
            text = str(setting.default)
            assert setting.parse(text) == setting.default, setting.name
