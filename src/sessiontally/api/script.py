"""``GET /js/sessiontally.js``: the first-party web tracker, a static file of this package.

The file is read once at import, and its gzip form made once, so a request costs a header
comparison. Any origin may load it (pages embed it from their own sites), and a page's
cache keeps it for an hour; the ETag makes the revalidation after that a 304.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

SOURCE = resources.files("sessiontally.api").joinpath("static/sessiontally.js").read_bytes()
GZIPPED = gzip.compress(SOURCE, compresslevel=9, mtime=0)
MEDIA_TYPE = "application/javascript; charset=utf-8"

_DIGEST = hashlib.sha256(SOURCE).hexdigest()[:32]
# The two encodings are two representations, so each has its own strong ETag.
ETAG = f'"{_DIGEST}"'
GZIP_ETAG = f'"{_DIGEST}-gzip"'
_COMMON = {
    "Cache-Control": "public, max-age=3600",
    "Access-Control-Allow-Origin": "*",
    "Vary": "Accept-Encoding",
}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (named, or ``*``, with q above 0)."""
    allowed: dict[str, bool] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        allowed[name.strip().lower()] = quality > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, as RFC 9110 asks)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def tracker(request: Request) -> Response:
    """``GET``/``HEAD /js/sessiontally.js``."""
    compressed = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = GZIP_ETAG if compressed else ETAG
    headers = {**_COMMON, "ETag": etag}
    if matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return Response(GZIPPED if compressed else SOURCE, headers=headers, media_type=MEDIA_TYPE)
