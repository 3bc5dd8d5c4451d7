"""PostgreSQL stopped and started again under a running service (a throwaway cluster made
with the installed ``initdb``, so that the machine's server is left alone): while the
database is down, authenticated requests get 503 with a JSON message and Retry-After
(not a 500, not a hang), ``/healthz`` says the store is unavailable, and once it is back
the same service processes serve again by themselves; a batch refused during the outage
and sent again is recorded exactly once."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from db_support import free_port, require_postgres
from e2e_support import assert_rate_headers, bearer, json_message, session, track

from sessiontally import admin
from sessiontally.store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SERIES = "/sessions/data_series?length=1"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class ThrowawayCluster:
    """A PostgreSQL cluster of the test's own (initdb, trust auth), on a free port."""

    def __init__(self, folder: Path) -> None:
        self.initdb, self.pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            pytest.skip("PostgreSQL not reachable: no initdb/pg_ctl for a throwaway cluster")
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            if shutil.which("runuser") is None:
                pytest.skip("PostgreSQL not reachable: running as root without runuser")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(folder, "postgres")
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, *command: str, check: bool = True) -> None:
        done = subprocess.run([*self.as_user, *command], capture_output=True, text=True)
        if check and done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stderr or done.stdout}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop", check=False)


@pytest.fixture
def cluster():
    require_postgres()  # psycopg, and PostgreSQL tests wanted here
    # not under pytest's tmp_path: as root, that is private to root, and the cluster runs
    # as the postgres user
    folder = Path(tempfile.mkdtemp(prefix="sessiontally-pg-"))
    try:
        made = ThrowawayCluster(folder)
        made.start()
        yield made
        made.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_restart_is_503_then_the_service_recovers_by_itself(server_factory, cluster):
    store = open_store(cluster.url)
    try:
        store.migrate()
        ws = admin.create_workspace(store, "outage", "UTC", 10_000)
        app = admin.create_app(store, ws, "app", None)
        key = admin.create_key(store, ws, "k", ["sessions.track", "sessions.data_series"], ()).key
    finally:
        store.close()
    server = server_factory(cluster.url, workers=2, env={"PYTHONFAULTHANDLER": "1"})
    pid = server.proc.pid if server.proc else None
    batch = [session(app.app_id, time.time() - 60, f"s{i}") for i in range(50)]
    with server.client(timeout=30.0) as c:
        assert c.get(SERIES, headers=bearer(key)).status_code == 200

        cluster.stop("fast")
        # at once (each waits for a pooled connection a few seconds at most): both kinds of
        # request, on both workers, and the health check
        # (no wall-clock assertion: the client's 30 s timeout fails a request that hangs)
        with ThreadPoolExecutor(6) as pool:
            requests = [pool.submit(track, c, key, batch) if i % 2 else
                        pool.submit(c.get, SERIES, headers=bearer(key)) for i in range(5)]
            health = pool.submit(c.get, "/healthz").result()
            outcomes = [r.exception() or r.result() for r in requests]
        responses = [r for r in outcomes if not isinstance(r, BaseException)]
        assert len(responses) == len(outcomes), (outcomes, server.all_stderr()[-4000:])
        for r in responses:
            assert r.status_code == 503, (r.status_code, r.text)
            assert "unavailable" in json_message(r).lower()
            assert int(r.headers["Retry-After"]) >= 1
        assert health.status_code == 503 and "unavailable" in json_message(health).lower()

        cluster.start()
        back = time.monotonic()
        deadline = time.monotonic() + 45
        statuses: list[int] = []
        while time.monotonic() < deadline:
            statuses.append(c.get(SERIES, headers=bearer(key)).status_code)
            if statuses[-3:] == [200, 200, 200]:
                break
            time.sleep(0.25)
        assert statuses[-3:] == [200, 200, 200], statuses
        assert set(statuses) <= {200, 503}, statuses  # never a 500 on the way back
        print(f"served again {time.monotonic() - back:.1f} s after the restart: {statuses}")
        # the refused batch, sent again, is recorded once; a third time is all duplicates
        first = track(c, key, batch)
        assert first.status_code == 201, first.text
        assert first.json()["sessions_processed"] == 50  # nothing went in during the outage
        again = track(c, key, batch)
        assert again.json()["sessions_processed"] == 0 and again.json()["duplicates"] == 50
        assert_rate_headers(again, 10_000)
        assert c.get("/healthz").status_code == 200
    assert server.proc is not None and server.proc.pid == pid and server.starts == 1
    check = open_store(cluster.url)
    try:
        assert check.count_raw_sessions(ws.workspace_id) == 50
        assert check.rollup_total(ws.workspace_id, 0, 0) == 50
    finally:
        check.close()
    assert "Traceback" not in server.all_stderr(), server.all_stderr()[-3000:]
