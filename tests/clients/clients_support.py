"""Helpers for the tests that point real Segment clients (and the tracker) at a server.

A client's work is judged by the series it leaves, so ``wait_for_series`` polls
``GET /sessions/data_series`` until it shows the expected counts (deliveries finish after
the client says so, in the browser), then checks that they stay so a moment later.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_MODULES = NODE_DIR / "node_modules"
SETTLE_S = 0.5


@dataclass(frozen=True)
class Tenant:
    app_id: str
    write_key: str
    api_key: str  # may read the series, nothing else


def tenant(db, platform: str = "web") -> Tenant:  # type: ignore[no-untyped-def]
    workspace = db.workspace()
    app = db.app(workspace, "tracked", platform)
    stored = db.store.find_app(workspace.workspace_id, app.app_id)
    assert stored is not None and stored.write_key.startswith("wk_"), stored
    return Tenant(app.app_id, stored.write_key, db.key(workspace, ["sessions.data_series"]))


def day_start(days_ago: int) -> datetime:
    """UTC midnight ``days_ago`` days before today: a past day whose buckets are fixed."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def series(server, t: Tenant, query: str) -> list[int]:  # type: ignore[no-untyped-def]
    url = f"{server.url}/sessions/data_series?app_id={t.app_id}&{query}"
    response = httpx.get(url, headers={"Authorization": f"Bearer {t.api_key}"}, timeout=10)
    assert response.status_code == 200, response.text
    return [point["sessions"] for point in response.json()["data"]]


def wait_for_series(  # type: ignore[no-untyped-def]
    server, t: Tenant, query: str, expected: list[int], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    seen = series(server, t, query)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = series(server, t, query)
    assert seen == expected, f"{query}: {seen} != {expected}\nserver log:\n{server.stderr()[-3000:]}"
    time.sleep(SETTLE_S)
    assert series(server, t, query) == expected, "the series changed after it matched"


def wait_for_total(server, t: Tenant, query: str, expected: int, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """``wait_for_series`` for the sum of the series (for events stamped now, whose bucket
    depends on when the test runs)."""
    deadline = time.monotonic() + timeout
    seen = series(server, t, query)
    while sum(seen) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = series(server, t, query)
    assert sum(seen) == expected, f"{query}: {seen} sums to {sum(seen)}, not {expected}\n" \
        f"server log:\n{server.stderr()[-3000:]}"
    time.sleep(SETTLE_S)
    assert sum(series(server, t, query)) == expected, "the series changed after it matched"


def access_log(server) -> list[dict]:  # type: ignore[no-untyped-def]
    """The server's JSON access-log lines so far."""
    lines = []
    for line in server.all_stderr().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "method" in entry and "path" in entry:
            lines.append(entry)
    return lines


def require_node_modules() -> None:
    """The npm packages the client tests run, installed from the lockfile on first use
    (so the README's test command works on a machine with Node and npm); a clear failure,
    not a skip, when they cannot be."""
    assert shutil.which("node"), "node is not on PATH (the client tests run Node 20; .ci/run checks it)"
    if not (NODE_MODULES / "@segment" / "analytics-node").is_dir() and shutil.which("npm"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                       check=False, timeout=600)
    assert (NODE_MODULES / "@segment" / "analytics-node").is_dir(), (
        f"npm packages missing: run `npm ci` in {NODE_DIR} (.ci/run does)"
    )
