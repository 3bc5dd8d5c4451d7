"""segment-analytics-python, unchanged, against a running server: sessions cut from its
identify/track/page/screen calls show in the series as expected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clients_support import day_start, tenant, wait_for_series

pytestmark = pytest.mark.e2e

try:
    from segment.analytics import Client
except ImportError as exc:  # a failure, not a skip: CI installs it with the test extras
    raise ImportError("segment-analytics-python is missing: pip install -e '.[test]'") from exc


def test_sessions_from_the_python_library(db, server_factory) -> None:  # type: ignore[no-untyped-def]
    t = tenant(db, platform="server")
    server = server_factory(db)
    ten = day_start(2) + timedelta(hours=10)
    at = lambda minutes: ten + timedelta(minutes=minutes)  # noqa: E731

    # One message per request, and an error raises here.
    sync = Client(t.write_key, host=server.url, sync_mode=True)
    sync.identify("alice", {"plan": "pro"}, timestamp=at(0))
    sync.page("alice", "docs", "Home", {"path": "/"}, timestamp=at(0))
    sync.track("alice", "Opened", {"n": 1}, timestamp=at(10))  # same session
    sync.screen("alice", None, "Settings", timestamp=at(130))  # 2 h later: a second session
    sync.track(event="Viewed", anonymous_id="anon-bob", timestamp=at(30))
    sync.page(anonymous_id="anon-bob", name="Pricing", timestamp=at(55))  # 25 min: same session

    # Batches, gzip-encoded, from the library's consumer thread.
    errors: list[Exception] = []
    batched = Client(t.write_key, host=server.url, gzip=True, upload_size=3, max_retries=2,
                     on_error=lambda error, batch: errors.append(error))
    # carol: 11:00, 11:20, 11:49 (29 min gaps) is one session; 13:30 is another.
    for minutes in (60, 80, 109, 210):
        batched.track("carol", "Step", {"minute": minutes}, timestamp=at(minutes))
    batched.identify("carol", {"plan": "free"}, timestamp=at(60))
    batched.track("carol", "Step", {"minute": 80}, timestamp=at(80), message_id="dup-1")
    batched.track("carol", "Step", {"minute": 80}, timestamp=at(80), message_id="dup-1")
    batched.flush()
    batched.join()
    assert errors == []

    # Hours 10..13 UTC: alice and bob at 10, carol at 11, alice at 12, carol at 13.
    ending = (ten + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    wait_for_series(server, t, f"unit=hour&length=4&ending_at={ending}", [2, 1, 1, 1])
    wait_for_series(server, t, f"unit=day&length=1&ending_at={ten.date().isoformat()}", [5])
