"""Small HTTP helpers: JSON responses, credentials, bodies with a size limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .. import keys, limits
from ..service import INVALID_KEY, MISSING_KEY
from .memo import QueryMemo

if TYPE_CHECKING:
    from ..ratelimit import RateDecision


class BodyTooLarge(Exception):
    pass


RawHeaders = list[tuple[bytes, bytes]]


class JSONBytesResponse(Response):
    """A JSON response whose headers are built directly, skipping Starlette's general
    ``init_headers`` (which looks for a caller's own content-type and content-length
    among them): on the hottest route, a cached series, that search is a visible share
    of the request."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int, headers: Mapping[str, str] | None,
                 raw_headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        raw = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
        raw += raw_headers
        if headers:
            for name, value in headers.items():
                raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        self.raw_headers = raw


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  raw_headers: Sequence[tuple[bytes, bytes]] = ()) -> Response:
    """``body`` as JSON with ``raw_headers`` (already encoded, names in lower case), then
    ``headers``; neither may set content-type or content-length."""
    return JSONBytesResponse(orjson.dumps(body), status, headers, raw_headers)


def message_response(status: int, message: str, headers: Mapping[str, str] | None = None,
                   raw_headers: Sequence[tuple[bytes, bytes]] = ()) -> Response:
    return json_response({"message": message}, status, headers, raw_headers)


def rate_limit_headers(decision: RateDecision) -> RawHeaders:
    """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` of ``decision`` as they go on
    the wire (ASGI header names are lower case), for ``json_response``'s ``raw_headers``."""
    return [
        (b"x-ratelimit-limit", b"%d" % decision.limit),
        (b"x-ratelimit-remaining", b"%d" % decision.remaining),
        (b"x-ratelimit-reset", b"%d" % decision.reset),
    ]


_parsed_queries: QueryMemo[tuple[tuple[str, str], ...]] = QueryMemo()


def query_pairs(scope: Scope) -> tuple[tuple[str, str], ...]:
    """The query string as (name, value) pairs, repeats kept; ``+`` decodes to a space."""
    raw: bytes = scope.get("query_string", b"")
    pairs = _parsed_queries.get(raw)
    if pairs is None:
        pairs = tuple(parse_qsl(raw.decode("latin-1"), keep_blank_values=True, errors="replace"))
        _parsed_queries.keep(raw, pairs, pairs)
    return pairs


def presented_key(scope: Scope, pairs: tuple[tuple[str, str], ...]) -> str | None:
    """The key from ``Authorization: Bearer``, else from the legacy ``api_key`` parameter.

    A present but malformed Authorization header yields an empty string (always invalid).
    """
    # The raw headers, not request.headers (built for one lookup): ASGI servers give
    # names in lower case, and the first Authorization header counts, as in Starlette.
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    for name, value in pairs:
        if name == "api_key":
            return value
    return None


def refuse_before_body(scope: Scope) -> Response | None:
    """The answer to a POST that cannot be authenticated, given before its body is read, so
    that a client without a key cannot make the server buffer up to 16 MiB (the same 414 and
    401 that the guard would give; a well-formed key is checked against the store later)."""
    if len(scope.get("query_string", b"")) > limits.MAX_QUERY_STRING_BYTES:
        return message_response(414, "Query string too long")
    token = presented_key(scope, query_pairs(scope))
    if token is None:
        return message_response(401, MISSING_KEY)
    if not token or len(token) > keys.MAX_KEY_LENGTH or keys.workspace_of(token) is None:
        return message_response(401, INVALID_KEY)
    return None


async def read_body(request: Request, limit: int = limits.MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def is_json_content_type(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class StatusSeen:
    """An ASGI ``send`` that notes the status of the response it passes on (500 until a
    response starts: what a client gets from an app that failed before answering), for
    the middlewares that count and log requests."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class ScopeEndpoint:
    """An endpoint that needs only the request's scope, called by Starlette as a plain ASGI
    app: no Request object and one exception-handling layer fewer than a function
    endpoint (Starlette's middleware, routing and error handlers still apply). For the
    hottest route, the cached series, where those layers are a visible share of a request.

    The handler gets ``app.state.<name>`` beside the scope, looked up once per app:
    Starlette's ``State`` finds attributes through a Python-level ``__getattr__``, which
    a cached series request notices too."""

    def __init__(self, handler: Callable[[Scope, Any], Awaitable[Response]], state_name: str) -> None:
        self.handler = handler
        self.state_name = state_name
        self._bound: tuple[object, Any] = (None, None)  # (app, its dependency): one assignment

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        bound = self._bound
        if bound[0] is not app:
            bound = self._bound = (app, getattr(app.state, self.state_name))
        response = await self.handler(scope, bound[1])
        await response(scope, receive, send)
