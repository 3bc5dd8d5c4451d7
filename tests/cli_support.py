"""Running the ``sessiontally`` command in process against a test database, and what the
CLI tests expect of every answer: success prints on stdout, a refusal is one line on
stderr with a non-zero status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from click.testing import CliRunner, Result

from sessiontally.cli import main

if TYPE_CHECKING:
    from conftest import TestDatabase


def cli(db: TestDatabase, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--database", db.url, *args], input=stdin, catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout.strip()


def refused(result: Result) -> str:
    """A refusal: non-zero status, nothing on stdout, one line on stderr."""
    assert result.exit_code != 0, result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
