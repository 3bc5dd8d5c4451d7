"""The API's read path on the embedded store (api/gate.py), in-process: a series read runs
on the event loop, and whatever makes it give up there (a raw scan, a busy database)
finishes in a worker thread with the request counted once against the rate limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sessiontally import admin, keys
from sessiontally.api.app import create_app
from sessiontally.config import Settings
from sessiontally.errors import StoreBusy
from sessiontally.service import Service
from sessiontally.store import open_store

SERIES = "/sessions/data_series?length=3&unit=day"


class Client:
    """Requests through the ASGI app in this process (no server, no lifespan needed)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.get(path, headers=headers)

        return anyio.run(send)


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = str(tmp_path / "api.sqlite3")
    store = open_store(database)
    store.migrate()
    ws = admin.create_workspace(store, "w", "UTC", 1000)
    key = admin.create_key(store, ws, "k", keys.PERMISSIONS).key
    store.close()
    app = create_app(Settings(database=database, redis_url=None, log_level="WARNING"))
    yield Client(app), app.state.service, {"Authorization": f"Bearer {key}"}
    app.state.service.close()


def _remaining(response: Any) -> int:
    assert response.status_code == 200, response.text
    return int(response.headers["X-RateLimit-Remaining"])


def test_a_busy_database_during_the_action_moves_it_to_a_thread(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, service, headers = served
    original = service.data_series_json
    calls: list[bool] = []

    def data_series_json(workspace, pairs, may_scan=True):  # type: ignore[no-untyped-def]
        calls.append(may_scan)
        if not may_scan:  # on the event loop
            raise StoreBusy("database is locked")
        return original(workspace, pairs, may_scan)

    monkeypatch.setattr(service, "data_series_json", data_series_json)
    first = _remaining(client.get(SERIES, headers=headers))
    second = client.get(SERIES, headers=headers)
    assert _remaining(second) == first - 1  # counted once each
    assert second.json()["data"][-1]["sessions"] == 0
    assert calls == [False, True, False, True]


def test_a_busy_database_before_the_count_retries_it_all_in_a_thread(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, service, headers = served
    original = Service.authenticate
    busy_once = [True]

    def authenticate(self, token, client_ip):  # type: ignore[no-untyped-def]
        if busy_once[0]:
            busy_once[0] = False
            raise StoreBusy("database is locked")
        return original(self, token, client_ip)

    before = _remaining(client.get(SERIES, headers=headers))
    monkeypatch.setattr(Service, "authenticate", authenticate)
    after = _remaining(client.get(SERIES, headers=headers))
    assert after == before - 1  # not counted on the loop, counted once in the thread
    assert not busy_once[0]
