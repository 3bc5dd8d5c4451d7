"""``serve --workers 2`` on each engine (the shared ``multi_server``, one per engine): two
real worker processes under the supervisor, both serving, and the counts exact; and each
worker serving the store ``serve`` was given, with nothing in the environment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from db_support import free_port, in_threads
from e2e_support import series, session, track

pytestmark = pytest.mark.e2e


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def _sockets(pid: int) -> int:
    """Open network sockets of a process (its listening socket and store connections)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += fd.readlink().name.startswith("socket:")
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_two_workers_serve_and_count_exactly(multi_server, shared_db, engine):
    ws, apps, key = shared_db.tenant(apps=2)
    assert multi_server.proc is not None
    workers = _children(multi_server.proc.pid)
    # uvicorn's supervisor may also have a resource tracker; the workers are the ones
    # that hold sockets of their own
    serving = {pid for pid in workers if _sockets(pid) >= 1}
    assert len(serving) >= 2, (workers, serving)
    now = time.time()

    def client_thread(n: int) -> None:
        with multi_server.client() as c:
            for i in range(10):
                items = [session(apps[(n + i) % 2].app_id, now - 60 * j, f"{n}-{i}-{j}")
                         for j in range(20)]
                response = track(c, key, items)
                assert response.status_code == 201, response.text
                assert response.json()["sessions_processed"] == 20
                assert series(c, key, "length=2&unit=day").status_code == 200

    in_threads(8, client_thread)
    total = 8 * 10 * 20
    assert shared_db.store.count_raw_sessions(ws.workspace_id) == total
    assert shared_db.store.rollup_total(ws.workspace_id, 0, 0) == total
    per_app = [shared_db.store.rollup_total(ws.workspace_id, app.app_key, 0) for app in apps]
    assert sum(per_app) == total and all(per_app)
    with multi_server.client() as c:
        body = series(c, key, "length=3&unit=day").json()
    assert sum(point["sessions"] for point in body["data"]) == total
    if engine in ("postgres", "citus"):  # each worker holds PostgreSQL connections of its own
        assert all(_sockets(pid) >= 2 for pid in serving), {pid: _sockets(pid) for pid in serving}
    assert "Traceback" not in multi_server.all_stderr()


def _holding(pid: int, path: Path) -> bool:
    """Whether the process has ``path`` open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if fd.readlink() == path:
                return True
    return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("given", [True, False], ids=["--database", "default"])
def test_both_workers_serve_the_store_given_to_serve(tmp_path: Path, given: bool) -> None:
    """``serve --database X --workers 2`` (or no option: ./sessiontally.sqlite3) with no
    SESSIONTALLY_ variable at all: each worker opens that store, from the settings ``serve``
    hands it."""
    database = tmp_path / ("given.sqlite3" if given else "sessiontally.sqlite3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONTALLY_")}
    port = free_port()
    command = [sys.executable, "-c", "from sessiontally.cli import main; main()", "serve",
               "--port", str(port), "--workers", "2"] + (["--database", str(database)] if given else [])
    with open(tmp_path / "serve.stderr", "wb") as err:
        proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        serving: set[int] = set()
        while len(serving) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.stderr").read_text()
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
            serving = {pid for pid in _children(proc.pid) if _holding(pid, database)}
            time.sleep(0.1)
        assert len(serving) == 2, (tmp_path / "serve.stderr").read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5.0).status_code == 200
        assert sorted(path.name for path in tmp_path.glob("*.sqlite3")) == [database.name]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
