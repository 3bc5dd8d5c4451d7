"""``serve --workers 2`` on each engine (the shared ``multi_server``, one per engine): two
real worker processes under the supervisor, both serving, and the counts exact."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
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
    errors: list[BaseException] = []

    def client_thread(n: int) -> None:
        try:
            with multi_server.client() as c:
                for i in range(10):
                    items = [session(apps[(n + i) % 2].app_id, now - 60 * j, f"{n}-{i}-{j}")
                             for j in range(20)]
                    response = track(c, key, items)
                    assert response.status_code == 201, response.text
                    assert response.json()["sessions_processed"] == 20
                    assert series(c, key, "length=2&unit=day").status_code == 200
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = 8 * 10 * 20
    assert shared_db.store.count_raw_sessions(ws.workspace_id) == total
    assert shared_db.store.rollup_total(ws.workspace_id, 0, 0) == total
    per_app = [shared_db.store.rollup_total(ws.workspace_id, app.app_key, 0) for app in apps]
    assert sum(per_app) == total and all(per_app)
    with multi_server.client() as c:
        body = series(c, key, "length=3&unit=day").json()
    assert sum(point["sessions"] for point in body["data"]) == total
    if engine == "postgres":  # each worker holds PostgreSQL connections of its own
        assert all(_sockets(pid) >= 2 for pid in serving), {pid: _sockets(pid) for pid in serving}
    assert "Traceback" not in multi_server.all_stderr()
