"""``GET /dashboard/static/<path>``: the dashboard's script, style and vendored chart
library, files of this package read once at import (with their gzip forms), served
with an ETag and a day of caching (the page names them with ``?v=ASSET_VERSION``, so a
new release is fetched at once)."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from importlib import resources
from importlib.abc import Traversable
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response

from .http import message_response
from .pages import SECURITY_HEADERS
from .script import accepts_gzip, matches

ROOT = "static/dashboard"
MEDIA_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class Asset(NamedTuple):
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str) -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif entry.is_file():
            body = entry.read_bytes()
            suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
            media = (MEDIA_TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0]
                     or "text/plain; charset=utf-8")
            found[name] = Asset(body, gzip.compress(body, 9, mtime=0), media,
                                hashlib.sha256(body).hexdigest()[:32])
    return found


def _load() -> dict[str, Asset]:
    root = resources.files("sessiontally.api").joinpath(ROOT)
    return _walk(root, "") if root.is_dir() else {}


ASSETS = _load()
ASSET_VERSION = hashlib.sha256(
    "".join(f"{name}:{asset.etag}" for name, asset in sorted(ASSETS.items())).encode()
).hexdigest()[:12]
_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}


def page_weight() -> int:
    """The gzipped bytes of every asset (the page itself comes on top)."""
    return sum(len(asset.gzipped) for asset in ASSETS.values())


async def static(request: Request) -> Response:
    """``GET``/``HEAD /dashboard/static/<path>``."""
    asset = ASSETS.get(request.path_params["path"])
    if asset is None:
        return message_response(404, "Not found")
    compressed = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = f'"{asset.etag}-gzip"' if compressed else f'"{asset.etag}"'
    headers = {**_HEADERS, "ETag": etag}
    if matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return Response(asset.gzipped if compressed else asset.body, headers=headers,
                    media_type=asset.media_type)
