"""``/v1/*``: the tracking API (Segment's HTTP Tracking API, CONTRACT section 10).

The HTTP side of it: CORS (preflight included), the write key from HTTP Basic, the body
within its limits (500 KB, also after gzip), then one worker-thread call that parses,
admits, validates and records (``Service.admit_write_key``, ``Service.track_messages``).

Preflights carry no credentials, so they cannot name the app: they are answered for any
origin, and the app's own list of origins is applied to the request that follows.
"""

from __future__ import annotations

import base64
import binascii
import logging
import zlib

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import intake, tracking
from ..errors import InvalidInput, SessiontallyError, Unavailable
from ..service import Service
from .errors import refusal_response
from .http import BodyTooLarge, RawHeaders, json_response, read_body
from .metrics import count_events

log = logging.getLogger("sessiontally.api")

REQUEST_TOO_LARGE = f"request exceeds {tracking.MAX_REQUEST_BYTES // 1024} KB"
PREFLIGHT_HEADERS: RawHeaders = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Authorization, Content-Type, Content-Encoding, X-Retry-Count"),
    (b"access-control-max-age", b"86400"),
]
PATHS = tuple(f"/v1/{name}" for name in tracking.PATH_TYPES)


async def receive(request: Request) -> Response:
    """``POST /v1/batch``, ``/v1/track``, ... and their short forms; ``OPTIONS`` for each."""
    cors = _cors_headers(request)
    if request.method == "OPTIONS":
        return _preflight(cors)
    path_type = tracking.PATH_TYPES[request.url.path.rsplit("/", 1)[-1]]
    try:
        raw = await read_body(request, tracking.MAX_REQUEST_BYTES)
    except BodyTooLarge:
        return refusal_response(InvalidInput(REQUEST_TOO_LARGE), cors)
    service: Service = request.app.state.service
    basic_key = _basic_user(request.headers.get("authorization"))
    origin = request.headers.get("origin")
    encoding = request.headers.get("content-encoding", "").strip().lower()

    def work() -> Response:
        try:
            service.ensure_migrated()
            # A key in the header is checked before the body is read; one in the body after.
            app = service.admit_write_key(basic_key, origin) if basic_key else None
            body = _decoded(raw, encoding)
            parsed = intake.read_request(intake.parse_body(body), path_type, len(body))
            if app is None:
                app = service.admit_write_key(parsed.write_key, origin)
            intake.check_app_id(app, parsed.app_id)
            answer = service.track_messages(app, parsed, path_type, len(body))
            count_events(len(parsed.messages) - len(answer.get("rejected", ())))
        except SessiontallyError as exc:
            if isinstance(exc, Unavailable):
                log.warning("%s on POST %s", type(exc).__name__, request.url.path)
            return refusal_response(exc, cors)
        return json_response(answer, 200, None, cors)

    return await run_in_threadpool(work)


def _preflight(cors: RawHeaders) -> Response:
    response = Response(status_code=204)
    response.raw_headers += cors + PREFLIGHT_HEADERS
    return response


def _cors_headers(request: Request) -> RawHeaders:
    """Every answer may be read by the page that asked: the app's origins are enforced
    on the request itself (403), not by the browser."""
    origin = request.headers.get("origin")
    allowed = origin.encode("latin-1") if origin else b"*"
    return [(b"access-control-allow-origin", allowed), (b"vary", b"Origin")]


def _basic_user(header: str | None) -> str | None:
    """The user name of ``Authorization: Basic`` (the write key; the password is empty),
    or None when there is no such header or it cannot be read."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _decoded(raw: bytes, encoding: str) -> bytes:
    """The body after ``Content-Encoding`` (gzip or none), at most 500 KB. A gzip body
    may hold several members (RFC 1952), read one after the other; anything else after
    the last one is not gzip."""
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise InvalidInput("Content-Encoding must be gzip or identity")
    parts: list[bytes] = []
    size = 0
    rest = raw
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(rest, tracking.MAX_REQUEST_BYTES + 1 - size)
        except zlib.error:
            raise InvalidInput("body is not valid gzip") from None
        parts.append(part)
        size += len(part)
        if size > tracking.MAX_REQUEST_BYTES:
            raise InvalidInput(REQUEST_TOO_LARGE + " after decompression")
        if not inflater.eof:
            raise InvalidInput("body is not valid gzip (truncated)")
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
