"""A store or a rate limiter that cannot be used, told in one line with its real cause
(issue 22, items 3 and 4): a missing optional dependency names the extra to install, and a
SQLite path that cannot be a database says why, with no internal jargon before it.

Run as subprocesses: the whole of stderr is what a user sees (a log warning included), and
a missing module is simulated there by ``sys.modules[name] = None``, which makes its import
fail as an uninstalled one does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def run(args: list[str], tmp_path: Path, missing: tuple[str, ...] = (),
        **env: str) -> subprocess.CompletedProcess[str]:
    code = "import sys\n"
    code += "".join(f"sys.modules[{name!r}] = None\n" for name in missing)
    code += "from sessiontally.cli import main\nmain(sys.argv[1:])\n"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SESSIONTALLY_")}
    environment.update(env, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=60)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_postgresql_without_the_extra_names_it(tmp_path: Path) -> None:
    line = one_line(run(["--database", "postgresql://u@127.0.0.1:1/x", "workspace", "list"], tmp_path,
                        missing=("psycopg", "psycopg_pool")))
    assert line == ("Error: PostgreSQL support is not installed (no module 'psycopg'): "
                    "pip install 'sessiontally[postgres]'")


def test_serve_on_postgresql_without_the_extra_names_it(tmp_path: Path) -> None:
    line = one_line(run(["--database", "postgresql://u@127.0.0.1:1/x", "serve", "--port", "1"], tmp_path,
                        missing=("psycopg", "psycopg_pool")))
    assert "pip install 'sessiontally[postgres]'" in line


def test_redis_counters_without_the_extra_name_it(tmp_path: Path) -> None:
    result = run(["--database", str(tmp_path / "x.sqlite3"), "serve", "--port", "1"], tmp_path,
                 missing=("redis",), SESSIONTALLY_REDIS_URL="redis://127.0.0.1:1")
    line = one_line(result)
    assert line == ("Error: Redis support is not installed (no module 'redis'): "
                    "pip install 'sessiontally[redis]'")
    assert "serving on" not in result.stdout + result.stderr


def test_a_sqlite_file_in_a_missing_directory_is_one_line_with_the_cause(tmp_path: Path) -> None:
    path = "/nonexistent/dir/x.sqlite3"
    line = one_line(run(["--database", path, "workspace", "list"], tmp_path))
    assert line == f"Error: cannot open SQLite database {path}: directory /nonexistent/dir does not exist"


def test_serve_says_the_same(tmp_path: Path) -> None:
    result = run(["--database", "/nonexistent/dir/x.sqlite3", "serve", "--port", "1"], tmp_path)
    assert one_line(result).endswith("directory /nonexistent/dir does not exist")


def test_a_sqlite_path_that_is_a_directory_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    line = one_line(run(["--database", "d", "workspace", "list"], tmp_path))
    assert line == "Error: cannot open SQLite database d: it is a directory"


def test_a_sqlite_file_under_a_file_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    line = one_line(run(["--database", "f/x.sqlite3", "workspace", "list"], tmp_path))
    assert line == "Error: cannot open SQLite database f/x.sqlite3: f is not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_sqlite_file_in_a_read_only_directory_is_said_so(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = one_line(run(["--database", "locked/x.sqlite3", "workspace", "list"], tmp_path))
    finally:
        locked.chmod(0o700)
    assert line == ("Error: cannot open SQLite database locked/x.sqlite3: cannot create files in "
                    "directory locked (permission denied)")
