"""Which store a command opened, and why one cannot be opened, in one line (issue 20 item 5):
a new SQLite file is named with its absolute path, a typo'd PostgreSQL database name and an
unknown URL scheme are refused as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from db_support import POSTGRES_ADMIN_URL, require_postgres

from sessiontally.cli import main


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSIONTALLY_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_command_that_creates_a_sqlite_file_names_it(tmp_path: Path) -> None:
    first = cli("workspace", "create", "one")
    assert first.exit_code == 0, first.output
    assert first.stderr.strip().splitlines() == [f"store: {tmp_path / 'sessiontally.sqlite3'} (new)"]
    second = cli("workspace", "create", "two")
    assert second.exit_code == 0 and second.stderr == ""  # not new: nothing said


def test_a_relative_database_is_named_by_its_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result = cli("--database", "sub/x.sqlite3", "workspace", "create", "one")
    assert f"store: {tmp_path / 'sub' / 'x.sqlite3'} (new)" in result.stderr


def test_a_refusal_on_a_new_file_stays_one_line() -> None:
    result = cli("workspace", "create", "one", "--time-zone", "Mars/Olympus")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unknown_url_scheme_is_refused_as_such() -> None:
    result = cli("--database", "mysql://user:secret@db.internal/app", "workspace", "create", "one")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: cannot open store mysql://***@db.internal/app: unsupported store URL scheme 'mysql'; "
        "use a SQLite path, sqlite:///PATH or postgresql://..."
    ]
    assert not list(Path.cwd().iterdir())  # no file named after the URL


@pytest.mark.postgres
def test_a_typod_postgres_database_is_one_line() -> None:
    require_postgres()
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    url = f"{base}/st_no_such_database"
    result = cli("--database", url, "workspace", "create", "one")
    assert result.exit_code == 1
    shown = url.split("://", 1)[1].rsplit("@", 1)[-1]
    assert result.stderr.strip().splitlines() == [
        f'Error: PostgreSQL database "st_no_such_database" does not exist (postgresql://***@{shown})'
        if "@" in url else
        f'Error: PostgreSQL database "st_no_such_database" does not exist ({url})'
    ]
