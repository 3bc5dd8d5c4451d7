"""GET /js/sessiontally.js: the tracker file, its headers, gzip and revalidation."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sessiontally.api import script
from sessiontally.api.app import create_app
from sessiontally.config import Settings

FILE = Path(script.__file__).parent / "static" / "sessiontally.js"
PATH = "/js/sessiontally.js"


class Client:
    """Requests through the whole ASGI app in this process (no server, no lifespan needed)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, PATH, headers=headers)

        return anyio.run(send)

    def get(self, headers: dict[str, str]) -> httpx.Response:
        return self.request("GET", headers)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    app = create_app(Settings(database=str(tmp_path / "s.sqlite3"), redis_url=None, log_level="WARNING"))
    try:
        yield Client(app)
    finally:
        app.state.service.close()


def test_serves_the_file_with_its_headers(client: Client) -> None:
    response = client.get(headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == FILE.read_bytes()
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["etag"] == script.ETAG
    assert "content-encoding" not in response.headers
    assert "set-cookie" not in response.headers


def test_gzip_when_accepted(client: Client) -> None:
    response = client.get(headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["etag"] == script.GZIP_ETAG
    assert response.content == FILE.read_bytes()  # httpx decodes it
    assert gzip.decompress(script.GZIPPED) == FILE.read_bytes()


def test_head_has_the_headers_and_no_body(client: Client) -> None:
    response = client.request("HEAD", {"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["etag"] == script.ETAG
    assert int(response.headers["content-length"]) == len(FILE.read_bytes())


def test_a_known_etag_gets_304(client: Client) -> None:
    headers = {"Accept-Encoding": "identity", "If-None-Match": f'"other", W/{script.ETAG}'}
    response = client.get(headers=headers)
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == script.ETAG
    stale = client.get(headers={"Accept-Encoding": "identity", "If-None-Match": '"old"'})
    assert stale.status_code == 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("gzip", True),
        ("GZIP, deflate", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, br", False),
        ("*", True),
        ("*, gzip;q=0", False),
        ("identity", False),
        ("x-gzip", True),
        ("gzip;q=nonsense", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert script.accepts_gzip(header) is expected


def test_the_tracker_is_valid_javascript_and_small() -> None:
    subprocess.run(["node", "--check", str(FILE)], check=True)
    assert len(script.GZIPPED) < 4096
    assert b"document.cookie" not in FILE.read_bytes()
