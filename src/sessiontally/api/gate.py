"""How an authenticated request runs: admit it, then act, on the event loop or in a thread.

Admission is the same for every endpoint: authenticate the key, count the request against
the workspace's hourly limit, check the permission. Every answer after the count carries
the rate-limit headers, refusals included.

Where the work runs is decided here, once, from what the store and the rate limiter
declare (``Store.reads_never_block``, ``RateLimiter.never_blocks``):

* A read on a store and limiter that never block (SQLite in WAL mode, the counter file)
  runs on the event loop inside ``Store.pinned_reads``: a thread hop costs more than a
  cached answer. If the answer needs a scan (``WouldBlock``) or the database is locked
  past the loop's short wait (``StoreBusy``), the rest moves to a worker thread; the
  request is counted once whichever way it goes.
* Everything else (writes, network stores and limiters) does all of its database work in
  one worker-thread call, so the event loop never waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from .. import limits
from ..errors import (
    Forbidden,
    InvalidInput,
    RateLimited,
    SessiontallyError,
    StoreBusy,
    TooLarge,
    Unavailable,
    WouldBlock,
)
from ..service import Principal, Service
from .errors import QueryTooLong, UnsupportedMediaType, refusal_response
from .http import (
    BodyTooLarge,
    RawHeaders,
    is_json_content_type,
    json_response,
    presented_key,
    query_pairs,
    rate_limit_headers,
    read_body,
    refuse_before_body,
)

log = logging.getLogger("sessiontally.api")

Action = Callable[[Principal], Any]  # the answer's body for an admitted principal
ReadAction = Callable[[Principal, bool], Any]  # ... and whether it may scan raw rows
Record = Callable[[Principal, Any], Any]  # the answer's body for a parsed JSON body
Admitted = tuple[Principal, RawHeaders]  # ... and the rate-limit headers it earned


class Gate:
    """Admits requests for ``service`` and runs their work where it belongs."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.inline_reads = service.store.reads_never_block and service.limiter.never_blocks
        self.pinned_reads = service.store.pinned_reads

    # ------------------------------------------------------------------ running

    async def run(self, scope: Scope, permission: str, action: Action, status: int = 200) -> Response:
        """Admit and act in one worker-thread call."""
        return await run_in_threadpool(self._run_migrated, scope, permission, action, status)

    async def read(self, scope: Scope, permission: str, action: ReadAction) -> Response:
        """Admit and act on the event loop when reads never block; else as ``run``."""
        if not (self.inline_reads and self.service.migrated):
            return await self.run(scope, permission, lambda principal: action(principal, True))
        principal: Principal | None = None
        headers: RawHeaders = []
        try:
            with self.pinned_reads():
                admitted = self._admit(scope, permission)
                if isinstance(admitted, Response):
                    return admitted
                principal, headers = admitted
                body = action(principal, False)
            return json_response(body, 200, None, headers)
        except (WouldBlock, StoreBusy):
            pass
        except SessiontallyError as exc:
            return _refusal(scope, exc, headers)
        # Outside the pinned block: other requests run on this thread while this one waits.
        if principal is None:  # busy before the count: nothing has been counted yet
            return await self.run(scope, permission, lambda principal: action(principal, True))
        return await run_in_threadpool(self._act, scope, principal, headers, action)

    async def post_json(self, request: Request, permission: str, record: Record) -> Response:
        """A JSON POST: refuse early what needs no body, read it within the limit, then
        admit before parsing it (a refused caller never learns whether its body parses)."""
        refused = refuse_before_body(request.scope)
        if refused is not None:
            return refused
        try:
            raw = await read_body(request)
        except BodyTooLarge:
            return refusal_response(TooLarge(f"Request body exceeds {limits.MAX_BODY_BYTES} bytes"))
        content_is_json = is_json_content_type(request)

        def action(principal: Principal) -> Any:
            return record(principal, _parse_json(raw, content_is_json))

        return await self.run(request.scope, permission, action, 201)

    # ------------------------------------------------------------------ steps

    def _admit(self, scope: Scope, permission: str) -> Admitted | Response:
        """Authenticate, count, authorise: the principal and the rate-limit headers every
        later answer carries, or the refusal to send once the request is counted.
        Refusals before the count (no valid key, limiter down) are raised."""
        if len(scope.get("query_string", b"")) > limits.MAX_QUERY_STRING_BYTES:
            raise QueryTooLong("Query string too long")
        client = address[0] if (address := scope.get("client")) else None
        service = self.service
        principal = service.authenticate(presented_key(scope, query_pairs(scope)), client)
        scope.setdefault("state", {})["workspace_id"] = principal.workspace.workspace_id
        decision = service.count_request(principal)
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            return refusal_response(RateLimited("Over rate limit", decision.reset), headers)
        try:
            service.require(principal, permission)
        except Forbidden as exc:
            return refusal_response(exc, headers)
        return principal, headers

    def _run_migrated(self, scope: Scope, permission: str, action: Action, status: int) -> Response:
        headers: RawHeaders = []
        try:
            # ``serve`` migrates before its workers start; a worker that started while the
            # database was down answers 503 and migrates once it is back.
            self.service.ensure_migrated()
            admitted = self._admit(scope, permission)
            if isinstance(admitted, Response):
                return admitted
            principal, headers = admitted
            body = action(principal)
        except SessiontallyError as exc:
            return _refusal(scope, exc, headers)
        return json_response(body, status, None, headers)

    def _act(self, scope: Scope, principal: Principal, headers: RawHeaders, action: ReadAction) -> Response:
        try:
            body = action(principal, True)
        except SessiontallyError as exc:
            return _refusal(scope, exc, headers)
        return json_response(body, 200, None, headers)


def _refusal(scope: Scope, exc: SessiontallyError, headers: Sequence[tuple[bytes, bytes]]) -> Response:
    """The answer to a refusal raised after admission began. A dependency that is down
    gets a bare 503 (whatever was counted, nothing more is known of the request)."""
    if isinstance(exc, Unavailable):
        log.warning("%s on %s %s", type(exc).__name__, scope["method"], scope["path"])
        return refusal_response(exc)
    return refusal_response(exc, headers)


def _parse_json(raw: bytes, content_is_json: bool) -> Any:
    if not content_is_json:
        raise UnsupportedMediaType("Content-Type must be application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc.msg})") from None
