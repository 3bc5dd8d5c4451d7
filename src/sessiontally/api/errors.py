"""Status codes for ``sessiontally.errors``: the one place where a refusal becomes HTTP.

``refusal_response`` answers a refusal the gate caught (with the rate-limit headers the
request already earned); ``EXCEPTION_HANDLERS`` is the table Starlette consults for
anything that escapes a handler, its own 404/405 included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from .http import json_response, message_response
from .metrics import count_refusal

log = logging.getLogger("sessiontally.api")


class QueryTooLong(errors.TooLarge):
    """The query string is over ``limits.MAX_QUERY_STRING_BYTES`` (HTTP's own 414)."""


class UnsupportedMediaType(errors.InvalidInput):
    """A body that is not declared as JSON (HTTP's own 415)."""


# Most specific first: the first class the refusal is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[errors.SessiontallyError], int], ...] = (
    (QueryTooLong, 414),
    (UnsupportedMediaType, 415),
    (errors.InvalidInput, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
)

# What a client is told of a dependency that is down: never the driver's own words.
UNAVAILABLE_MESSAGES: tuple[tuple[type[errors.Unavailable], str], ...] = (
    (errors.RateLimiterUnavailable, "Rate limiter unavailable; try again shortly"),
    (errors.Unavailable, "Store unavailable; try again shortly"),
)


def status_of(exc: errors.SessiontallyError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500  # a refusal of no known kind is a bug: tests/test_api_errors.py keeps the table whole


def error_body(exc: errors.SessiontallyError) -> dict[str, Any]:
    """The API's ``{"message": ...}`` body for ``exc`` (``errors`` too, for a batch)."""
    message = exc.message
    if isinstance(exc, errors.Unavailable):
        message = next(text for cls, text in UNAVAILABLE_MESSAGES if isinstance(exc, cls))
    body: dict[str, Any] = {"message": message}
    if isinstance(exc, errors.InvalidInput) and exc.errors is not None:
        body["errors"] = exc.errors
    return body


def refusal_response(
    exc: errors.SessiontallyError, raw_headers: Sequence[tuple[bytes, bytes]] = ()
) -> Response:
    """The answer to ``exc``, after ``raw_headers`` (the rate-limit headers it earned)."""
    headers: Mapping[str, str] | None = None
    if isinstance(exc, errors.Unavailable):
        headers = {"Retry-After": "1"}
        count_refusal(exc)
    elif isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, exc.reset - int(time.time())))}
    return json_response(error_body(exc), status_of(exc), headers, raw_headers)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.SessiontallyError)
    if isinstance(exc, errors.Unavailable):
        log.warning("%s on %s %s", type(exc).__name__, request.method, request.url.path)
    return refusal_response(exc)


async def not_found(request: Request, exc: Exception) -> Response:
    return message_response(404, "Not found")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    # Keep Starlette's Allow header: a 405 must say which methods the path takes.
    return message_response(405, "Method not allowed", _exception_headers(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return message_response(exc.status_code, str(exc.detail), _exception_headers(exc))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return message_response(500, "Internal server error")


def _exception_headers(exc: Exception) -> dict[str, str] | None:
    headers = getattr(exc, "headers", None)
    return dict(headers) if headers else None


EXCEPTION_HANDLERS = {
    404: not_found,
    405: method_not_allowed,
    errors.SessiontallyError: refused,
    HTTPException: http_error,
    Exception: server_error,
}
