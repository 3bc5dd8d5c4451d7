"""Shared fixtures: temporary databases populated in-process, and real server processes.

``db``/``shared_db``: a temp SQLite store with helpers that create workspaces, apps and
keys through ``sessiontally.admin`` (the functions behind the CLI).

``server_factory``: starts ``sessiontally serve`` as a real subprocess (its own process
group), waits for ``/healthz``, captures stderr to a file, and kills every server it
started at teardown. ``ServerProcess.restart()`` starts it again on the same database;
``ServerProcess.kill()`` SIGKILLs the whole process group (supervisor and workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from sessiontally import admin
from sessiontally.store import open_store
from sessiontally.store.base import App, Workspace
from sessiontally.store.sqlite import SqliteStore

ALL_PERMISSIONS = (
    "sessions.data_series",
    "sessions.track",
    "users.track",
    "segments.list",
    "segments.details",
)
STARTUP_TIMEOUT_S = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test over real HTTP against a real server")


# --------------------------------------------------------------------------- databases


class TestDatabase:
    """A SQLite database file plus in-process admin helpers (the CLI's own functions)."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = open_store(str(path))
        self.store.migrate()

    @property
    def sqlite(self) -> SqliteStore:
        assert isinstance(self.store, SqliteStore)
        return self.store

    def workspace(
        self, name: str | None = None, time_zone: str = "UTC", rate_limit: int = 250_000
    ) -> Workspace:
        name = name or f"ws-{uuid.uuid4().hex[:12]}"
        return admin.create_workspace(self.store, name, time_zone, rate_limit)

    def app(self, workspace: Workspace, name: str = "app", platform: str | None = None) -> App:
        return admin.create_app(self.store, workspace, name, platform)

    def key(
        self,
        workspace: Workspace,
        permissions: Sequence[str] = ALL_PERMISSIONS,
        allowed_ips: Sequence[str] = (),
        name: str = "key",
    ) -> str:
        return admin.create_key(self.store, workspace, name, permissions, allowed_ips).key

    def revoke(self, workspace: Workspace, key: str) -> None:
        # A separate store instance, like an operator running `sessiontally key revoke`.
        other = open_store(str(self.path))
        try:
            admin.revoke_key(other, workspace, key)
        finally:
            other.close()

    def tenant(
        self, time_zone: str = "UTC", rate_limit: int = 250_000, apps: int = 1
    ) -> tuple[Workspace, list[App], str]:
        """A workspace with ``apps`` apps and a key holding every permission."""
        ws = self.workspace(time_zone=time_zone, rate_limit=rate_limit)
        made = [self.app(ws, f"app{i}") for i in range(apps)]
        return ws, made, self.key(ws)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[TestDatabase]:
    database = TestDatabase(tmp_path / "sessiontally.sqlite3")
    yield database
    database.close()


@pytest.fixture(scope="session")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """One database for the session's shared servers; every test makes its own workspaces."""
    database = TestDatabase(tmp_path_factory.mktemp("shared") / "sessiontally.sqlite3")
    yield database
    database.close()


# ----------------------------------------------------------------------------- servers


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _serve_command() -> list[str]:
    script = Path(sys.executable).parent / "sessiontally"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sessiontally.cli import main; main()"]


class ServerProcess:
    """A running ``sessiontally serve`` (supervisor plus workers, in its own process group)."""

    def __init__(
        self,
        database: Path,
        log_dir: Path,
        workers: int = 1,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> None:
        self.database = database
        self.log_dir = log_dir
        self.workers = workers
        self.host = host
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.graceful: bool | None = None  # did the last stop() end without SIGKILL?
        self.returncode: int | None = None
        self.stderr_path = log_dir / "server-0.stderr"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServerProcess:
        assert self.proc is None, "already running"
        self.port = free_port(self.host)
        self.stderr_path = self.log_dir / f"server-{self.starts}.stderr"
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONTALLY_")}
        env["SESSIONTALLY_DATABASE"] = str(self.database)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        command = _serve_command() + [
            "serve", "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
        ]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # its own process group: kill() reaches the workers
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become healthy:\n{self.stderr()}")

    def client(self, **kwargs: object) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, **kwargs)  # type: ignore[arg-type]

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no graceful shutdown."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reap_group()
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM), falling back to SIGKILL."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGTERM)
        self.graceful = True
        try:
            self.returncode = self.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            self.graceful = False
            self._signal_group(signal.SIGKILL)
            self.returncode = self.proc.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # any worker left behind
        self._reap_group()
        self.proc = None

    def _reap_group(self) -> None:
        """Wait until no process of the group is left (workers die a moment after)."""
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def restart(self, kill: bool = False) -> ServerProcess:
        """Stop (or SIGKILL) and start again on the same database (on a new port)."""
        self.kill() if kill else self.stop()
        return self.start()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def all_stderr(self) -> str:
        return "".join(
            (self.log_dir / f"server-{i}.stderr").read_text(errors="replace") for i in range(self.starts)
        )


class ServerFactory:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[ServerProcess] = []

    def __call__(
        self,
        database: TestDatabase | Path,
        workers: int = 1,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> ServerProcess:
        path = database.path if isinstance(database, TestDatabase) else database
        folder = self.log_dir / f"server{len(self.servers)}"
        folder.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(path, folder, workers=workers, host=host, env=env)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path / "servers")
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def session_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("servers"))
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def shared_server(session_server_factory: ServerFactory, shared_db: TestDatabase) -> ServerProcess:
    """One worker, on the shared database. The process runs in an exotic local time zone so
    that any accidental use of the process's zone shows up in the results."""
    return session_server_factory(shared_db, workers=1, env={"TZ": "Pacific/Chatham"})


@pytest.fixture(scope="session")
def multi_server(session_server_factory: ServerFactory, shared_db: TestDatabase) -> ServerProcess:
    """Two worker processes on the shared database."""
    return session_server_factory(shared_db, workers=2, env={"TZ": "America/St_Johns"})


@pytest.fixture
def client(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with shared_server.client() as c:
        yield c
