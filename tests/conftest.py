"""Shared fixtures: databases on both engines populated in-process, and real server processes.

Engines: every test that uses ``db``, ``shared_db``, ``store`` or a server built on them
runs twice, once per engine (ids ``[sqlite]`` and ``[postgres]``): SQLite is a temp file;
PostgreSQL is a fresh database ``st_test_<random>`` created on the server named by
``SESSIONTALLY_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and dropped (``WITH (FORCE)``) at teardown. A third engine, ``[citus]``, runs the store-level,
end-to-end, oracle and crash modules (CITUS_MODULES) on the Citus cluster named by
``SESSIONTALLY_TEST_CITUS`` (db_support; skipped without one, failed with
``SESSIONTALLY_REQUIRE_CITUS=1``). When PostgreSQL cannot be reached, the
PostgreSQL variants skip and say why; with ``SESSIONTALLY_REQUIRE_POSTGRES=1`` (CI) they
fail instead, and so does any other test skipped for want of PostgreSQL.
``SESSIONTALLY_REQUIRE_REDIS=1`` does the same for Redis (``redis_url``). The helpers
behind this (``require_postgres``, ``engine_database``, ``free_port``, ...) live in
``tests/db_support.py``, for test modules to import.

``db``/``shared_db``: a migrated database (``TestDatabase``, with its ``url``) with helpers
that create workspaces, apps and keys through ``sessiontally.admin`` (the functions behind
the CLI). ``store``: just a fresh migrated ``Store`` of either engine, for store-level tests.

``server_factory``: starts ``sessiontally serve`` as a real subprocess (its own process
group), waits for ``/healthz``, captures stderr to a file, and kills every server it
started at teardown (a server on a ``TestDatabase`` is stopped before that database is
dropped). ``ServerProcess.restart()`` starts it again on the same database;
``ServerProcess.kill()`` SIGKILLs the whole process group (supervisor and workers).
The session's shared servers (``shared_server``, ``multi_server``) are one pair per engine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from db_support import (  # noqa: F401 - free_port and the rest re-exported for test modules
    ENGINES,
    REDIS_TEST_URL,
    REQUIRE_CITUS,
    REQUIRE_POSTGRES,
    REQUIRE_REDIS,
    engine_database,
    finish_citus_databases,
    free_port,
    open_test_store,
    require_citus,
    require_postgres,
    require_redis,
)

from sessiontally import admin, passwords
from sessiontally.store import open_store
from sessiontally.store.base import App, Store, Workspace
from sessiontally.store.sqlite import SqliteStore

ALL_PERMISSIONS = (
    "sessions.data_series",
    "sessions.track",
    "users.track",
    "users.delete",
    "segments.list",
    "segments.details",
    "kpi.dau.data_series",
    "kpi.mau.data_series",
    "kpi.new_users.data_series",
    "kpi.uninstalls.data_series",
    "events.list",
    "events.data_series",
)
STARTUP_TIMEOUT_S = 30.0

# Members' passwords hash with the cheapest argon2id parameters in this process
# (tests/test_passwords.py checks the production ones).
passwords.use_fast_hashing_for_tests()

# Skip reasons that mean "the service this test needs is missing" (db_support's, or any
# other test's that says the same). When that service is required, such a skip is a failure.
_POSTGRES_MISSING = ("PostgreSQL not reachable", "psycopg is not installed")
_REDIS_MISSING = ("Redis not reachable", "redis-py is not installed")
_CITUS_MISSING = ("Citus not configured", "Citus not reachable")

# Citus, the third engine, runs only these modules' engine variants (store level, end to
# end, oracles, crashes, and the Citus tests themselves); elsewhere its variants are
# deselected, so that the rest of the suite does not run three times.
CITUS_MODULES = ("test_store_*.py", "*oracle*.py", "e2e/test_e2e_*.py", "hostile/*crash*.py",
                 "test_citus*.py")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test over real HTTP against a real server")
    config.addinivalue_line("markers", "postgres: the PostgreSQL variant of an engine-parametrised test")
    config.addinivalue_line("markers", "redis: needs a Redis server")
    config.addinivalue_line("markers", "citus: needs a Citus cluster (SESSIONTALLY_TEST_CITUS)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``citus`` variants of engine-parametrised tests outside CITUS_MODULES."""
    root = Path(__file__).parent
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "citus" in callspec.params.values():
            relative = Path(str(item.path)).relative_to(root) if root in item.path.parents else item.path
            if not any(relative.match(pattern) for pattern in CITUS_MODULES):
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    finish_citus_databases()  # the Citus test databases still being dropped or made ahead


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (``SESSIONTALLY_REQUIRE_POSTGRES=1`` / ``SESSIONTALLY_REQUIRE_REDIS=1``), a test
    skipped because PostgreSQL or Redis is missing fails instead, wherever the skip came from."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        for required, markers, variable in (
            (REQUIRE_POSTGRES, _POSTGRES_MISSING, "SESSIONTALLY_REQUIRE_POSTGRES"),
            (REQUIRE_REDIS, _REDIS_MISSING, "SESSIONTALLY_REQUIRE_REDIS"),
            (REQUIRE_CITUS, _CITUS_MISSING, "SESSIONTALLY_REQUIRE_CITUS"),
        ):
            if required and any(marker in reason for marker in markers):
                report.outcome = "failed"
                report.longrepr = f"{variable}=1 but the test was skipped: {reason}"
    return report


# --------------------------------------------------------------------------- databases


class TestDatabase:
    """A migrated database of either engine (``url`` is what ``SESSIONTALLY_DATABASE`` or
    ``--database`` would be given) plus in-process admin helpers (the CLI's own functions)."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, engine: str, url: str) -> None:
        self.engine = engine
        self.url = url
        self.store: Store = open_store(url)
        self.store.migrate()
        self._before_close: list[Callable[[], None]] = []

    @property
    def sqlite(self) -> SqliteStore:
        assert isinstance(self.store, SqliteStore), "a SQLite-only helper used on " + self.engine
        return self.store

    def before_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` before the database is closed (and dropped): stops its servers."""
        self._before_close.append(callback)

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
        other = open_store(self.url)
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

    def session_ids(self, workspace_id: int) -> list[str]:
        """Every raw session id of the workspace, as stored (duplicates would show)."""
        if self.engine == "sqlite":
            with contextlib.closing(sqlite3.connect(self.url)) as conn:
                rows = conn.execute(
                    "SELECT session_id FROM sessions WHERE workspace_id = ?", (workspace_id,)
                ).fetchall()
        else:
            import psycopg

            with psycopg.connect(self.url) as conn:
                rows = conn.execute(
                    "SELECT session_id FROM sessions WHERE workspace_id = %s", (workspace_id,)
                ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        callbacks, self._before_close = self._before_close, []
        for callback in reversed(callbacks):
            callback()
        self.store.close()


@pytest.fixture(
    scope="session",
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("citus", marks=pytest.mark.citus)],
)
def engine(request: pytest.FixtureRequest) -> str:
    """The store engine of this test variant: ``sqlite``, ``postgres`` or ``citus`` (skips
    or, when required, fails the PostgreSQL or Citus variant if its server cannot be
    reached; Citus variants run only in CITUS_MODULES)."""
    if request.param == "postgres":
        require_postgres()
    if request.param == "citus":
        require_citus()
    return str(request.param)


@contextlib.contextmanager
def _test_database(engine: str, folder: Path) -> Iterator[TestDatabase]:
    with engine_database(engine, folder) as url:
        database = TestDatabase(engine, url)
        try:
            yield database
        finally:
            database.close()


@pytest.fixture
def db(engine: str, tmp_path: Path) -> Iterator[TestDatabase]:
    with _test_database(engine, tmp_path) as database:
        yield database


@pytest.fixture(scope="session")
def shared_db(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """One database per engine for the session's shared servers; every test makes its own
    workspaces."""
    with _test_database(engine, tmp_path_factory.mktemp(f"shared-{engine}")) as database:
        yield database


@pytest.fixture
def store(engine: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh, migrated store of each engine (a new SQLite file, or a new PostgreSQL
    database dropped afterwards). For store-level tests that need no server."""
    with open_test_store(engine, tmp_path) as opened:
        yield opened


# ----------------------------------------------------------------------------- servers


def _serve_command() -> list[str]:
    script = Path(sys.executable).parent / "sessiontally"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sessiontally.cli import main; main()"]


class ServerProcess:
    """A running ``sessiontally serve`` (supervisor plus workers, in its own process group)."""

    def __init__(
        self,
        database: str,
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
        env["SESSIONTALLY_DATABASE"] = self.database
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
        database: TestDatabase | str,
        workers: int = 1,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> ServerProcess:
        """Start a server on a database (a ``TestDatabase`` or a database URL)."""
        url = database.url if isinstance(database, TestDatabase) else str(database)
        folder = self.log_dir / f"server{len(self.servers)}"
        folder.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(url, folder, workers=workers, host=host, env=env)
        self.servers.append(server)
        if isinstance(database, TestDatabase):
            database.before_close(server.stop)  # stop it before its database is dropped
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
    """One worker, on the shared database (one server per engine). The process runs in an
    exotic local time zone, and its PostgreSQL sessions in another (PGTZ sets their
    TimeZone), so that any accidental use of either zone shows up in the results."""
    return session_server_factory(
        shared_db, workers=1, env={"TZ": "Pacific/Chatham", "PGTZ": "Asia/Kathmandu"}
    )


@pytest.fixture(scope="session")
def multi_server(session_server_factory: ServerFactory, shared_db: TestDatabase) -> ServerProcess:
    """Two worker processes on the shared database (one server per engine)."""
    return session_server_factory(
        shared_db, workers=2, env={"TZ": "America/St_Johns", "PGTZ": "Pacific/Marquesas"}
    )


@pytest.fixture
def client(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with shared_server.client() as c:
        yield c


# ------------------------------------------------------------------------------- redis


REDIS_TEST_DATABASES = range(1, 16)  # database 0 only holds the claims below


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of the server named by ``SESSIONTALLY_TEST_REDIS`` (default
    ``redis://127.0.0.1:6379/0``) for this test alone, empty at the start: a database
    number in 1..15 claimed with an expiring ``SET NX`` in database 0 (so that test runs
    sharing the server do not flush each other's counters), flushed, released after."""
    require_redis()
    import redis

    admin_client = redis.Redis.from_url(REDIS_TEST_URL)
    token = uuid.uuid4().hex
    claimed = None
    deadline = time.monotonic() + 60
    while claimed is None and time.monotonic() < deadline:
        for number in REDIS_TEST_DATABASES:
            if admin_client.set(f"sessiontally-test:claim:{number}", token, nx=True, ex=600):
                claimed = number
                break
        else:
            time.sleep(0.2)
    if claimed is None:
        admin_client.close()
        pytest.fail("no free Redis test database (1..15) within 60 s")
    url = urllib.parse.urlsplit(REDIS_TEST_URL)._replace(path=f"/{claimed}").geturl()
    own = redis.Redis.from_url(url)
    try:
        own.flushdb()
        yield url
    finally:
        own.flushdb()
        own.close()
        claim = f"sessiontally-test:claim:{claimed}"
        if admin_client.get(claim) == token.encode():
            admin_client.delete(claim)
        admin_client.close()
