"""@segment/analytics-node, unchanged, run by the machine's Node against a running server
(``node/send.mjs``): the sessions cut from its calls show in the series as expected."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta

import pytest
from clients_support import NODE_DIR, day_start, require_node_modules, tenant, wait_for_series

pytestmark = pytest.mark.e2e


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def test_sessions_from_the_node_library(db, server_factory) -> None:  # type: ignore[no-untyped-def]
    require_node_modules()
    t = tenant(db, platform="server")
    server = server_factory(db)
    nine = day_start(3) + timedelta(hours=9)
    at = lambda minutes: iso(nine + timedelta(minutes=minutes))  # noqa: E731

    calls = [
        {"method": "identify", "params": {"userId": "dana", "traits": {"plan": "pro"}, "timestamp": at(0)}},
        {"method": "page", "params": {"userId": "dana", "name": "Home", "timestamp": at(5)}},
        {"method": "track", "params": {"userId": "dana", "event": "Bought", "timestamp": at(34)}},  # 29 min
        {"method": "screen", "params": {"userId": "dana", "name": "Cart", "timestamp": at(65)}},  # new
        {"method": "track", "params": {"anonymousId": "anon-eve", "event": "Viewed", "timestamp": at(70)}},
        {"method": "group", "params": {"userId": "dana", "groupId": "acme", "timestamp": at(71)}},
        {"method": "alias", "params": {"userId": "dana", "previousId": "anon-old", "timestamp": at(72)}},
        {"method": "track", "params": {"anonymousId": "anon-eve", "event": "Left", "timestamp": at(200)}},
    ]
    plan = {"host": server.url, "writeKey": t.write_key, "calls": calls}
    done = subprocess.run(
        ["node", str(NODE_DIR / "send.mjs")], input=json.dumps(plan), capture_output=True,
        text=True, cwd=NODE_DIR, timeout=60,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\nserver log:\n{server.stderr()[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["statuses"]) >= 3, report  # 8 calls, flushAt 3: several batches

    # Hours 09..12 UTC: dana at 09:05, dana and eve at 10:05/10:10, eve at 12:20.
    ending = iso(nine + timedelta(hours=3))
    wait_for_series(server, t, f"unit=hour&length=4&ending_at={ending}", [1, 2, 0, 1])
