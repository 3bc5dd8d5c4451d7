"""``sessiontally serve`` refusing what it cannot serve (issue 22 item 1): one line on stderr,
a non-zero exit, and nothing said to be served. In-process: each refusal comes before
any server starts (the port is bound before the banner)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessiontally.cli import main


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SESSIONTALLY_DATABASE", "SESSIONTALLY_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def serve(*args: str) -> Result:
    return CliRunner().invoke(main, ["serve", *args], catch_exceptions=False)


def refused(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert "serving on" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_busy_port_is_one_line_before_anything_is_served() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused(serve("--port", str(port)))
    assert line == f"Error: port {port} is in use (address already in use)"


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "http"])
def test_a_port_outside_1_to_65535_is_refused(port: str) -> None:
    line = refused(serve("--port", port))
    assert line == f"Error: Invalid value for '--port': must be a whole number from 1 to 65535 (got {port!r})"


@pytest.mark.parametrize("workers", ["0", "-1", "65"])
def test_a_worker_count_outside_1_to_64_is_refused(workers: str) -> None:
    line = refused(serve("--workers", workers))
    assert "--workers" in line and f"(got {workers!r})" in line


def test_a_host_that_does_not_resolve_is_refused() -> None:
    line = refused(serve("--host", "no-such-host.invalid", "--port", "8123"))
    assert line.startswith("Error: cannot listen on no-such-host.invalid: not an address or known host name")


def test_an_address_of_another_machine_is_refused() -> None:
    line = refused(serve("--host", "192.0.2.1", "--port", "8123"))  # TEST-NET-1: never local
    assert line == "Error: cannot listen on 192.0.2.1:8123 (cannot assign requested address)"
