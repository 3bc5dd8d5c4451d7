"""The ASGI application: routes, the access guard, and error mapping to {"message": ...}.

Each authenticated write, and every request on a network store or limiter, does all of its
database work in one worker-thread call (authenticate, count against the rate limit,
check the permission, act): one thread hop, and the event loop never waits. A series read
on the embedded store runs on the event loop itself (WAL reads never wait for a writer);
what would make it wait (a raw scan, a busy database) moves it to a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from .. import limits
from ..config import Settings
from ..errors import RateLimiterUnavailable
from ..ratelimit import open_limiter
from ..service import ClientError, Principal, Service, WouldBlock
from ..store import open_store
from . import logging as access_logging
from .http import (
    BodyTooLarge,
    RawHeaders,
    ScopeEndpoint,
    error_response,
    is_json_content_type,
    json_response,
    presented_key,
    query_pairs,
    rate_limit_headers,
    read_body,
    refuse_before_body,
)
from .openapi import DOCS_HTML, openapi_document

log = logging.getLogger("sessiontally.api")
WORKER_THREADS = 16

Action = Callable[[Principal], tuple[int, Any]]


Admitted = tuple[Principal, RawHeaders]  # the rate-limit headers every later answer carries


def _admit(service: Service, scope: Scope, permission: str) -> Admitted | Response:
    """Authenticate, count, authorise: the principal and the rate-limit headers every
    later response carries, or the refusal to send."""
    pairs = query_pairs(scope)
    if len(scope.get("query_string", b"")) > limits.MAX_QUERY_STRING_BYTES:
        return error_response(414, "Query string too long")
    client = address[0] if (address := scope.get("client")) else None
    try:
        principal = service.authenticate(presented_key(scope, pairs), client)
    except ClientError as exc:
        return json_response(exc.body, exc.status)
    scope.setdefault("state", {})["workspace_id"] = principal.workspace.workspace_id
    try:
        decision = service.count_request(principal)
    except RateLimiterUnavailable:
        return error_response(503, "Rate limiter unavailable; try again shortly", {"Retry-After": "1"})
    headers = rate_limit_headers(decision)
    if not decision.allowed:
        retry_after = {"Retry-After": str(max(1, decision.reset - int(time.time())))}
        return error_response(429, "Over rate limit", retry_after, headers)
    try:
        service.require(principal, permission)
    except ClientError as exc:
        return json_response(exc.body, exc.status, None, headers)
    return principal, headers


def _act(action: Action, principal: Principal, headers: RawHeaders) -> Response:
    try:
        status, body = action(principal)
    except ClientError as exc:
        return json_response(exc.body, exc.status, None, headers)
    return json_response(body, status, None, headers)


def _guarded(service: Service, scope: Scope, permission: str, action: Action) -> Response:
    """Admit, then act. Runs in a worker thread."""
    admitted = _admit(service, scope, permission)
    if isinstance(admitted, Response):
        return admitted
    return _act(action, *admitted)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    access_logging.configure(settings.log_level)
    store = open_store(settings.database, read_cache=settings.read_cache)
    # Errors that mean "the database cannot be reached right now" (server down or
    # restarting, no pooled connection in time): 503 with Retry-After, not a 500.
    unavailable: tuple[type[BaseException], ...] = getattr(store, "unavailable_errors", ())
    migrated = threading.Event()

    def ensure_migrated() -> None:
        """Apply pending migrations once (``serve`` has normally done it before starting
        the workers). A worker that starts, or restarts, while the database is down does
        not crash: it answers 503 and migrates on its first request once the database
        answers. No lock: ``migrate`` is safe to run concurrently (it serialises in the
        database), and requests must not queue behind one that waits for a dead store."""
        if not migrated.is_set():
            store.migrate()
            migrated.set()

    try:
        ensure_migrated()
    except unavailable as exc:
        log.warning("store unavailable at startup (%s); answering 503 until it is back",
                    type(exc).__name__)
    limiter = open_limiter(settings)
    # Reads on the event loop: with the embedded store (WAL reads never wait for a writer)
    # and the counter file (held for microseconds), a series request needs no thread hop,
    # which cost more than the whole rest of a cached request (bench/RESULTS.md). Writes,
    # scans and every network store or limiter stay in worker threads.
    inline_reads = getattr(store, "reads_never_block", False) and limiter.never_blocks
    busy: tuple[type[Exception], ...] = getattr(store, "busy_errors", ())
    toucher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="touch") if inline_reads else None
    service = Service(store, limiter, background=_logged(toucher.submit) if toucher else None)

    def migrated_then_guarded(scope: Scope, permission: str, action: Action) -> Response:
        ensure_migrated()
        return _guarded(service, scope, permission, action)

    async def guarded(scope: Scope, permission: str, action: Action) -> Response:
        try:
            return await run_in_threadpool(migrated_then_guarded, scope, permission, action)
        except unavailable as exc:
            log.warning("store unavailable on %s %s: %s", scope["method"], scope["path"],
                        type(exc).__name__)
            return error_response(503, "Store unavailable; try again shortly", {"Retry-After": "1"})

    async def guarded_read(
        scope: Scope, permission: str, action: Callable[[Principal, bool], tuple[int, Any]]
    ) -> Response:
        """A read: on the event loop when reads never block (else as ``guarded``). An
        action that would scan (WouldBlock), or a read the database keeps busy beyond the
        loop connection's short timeout, finishes in a worker thread; a request is counted
        against the rate limit once whichever way it goes."""
        if not (inline_reads and migrated.is_set()):
            return await guarded(scope, permission, lambda principal: action(principal, True))
        admitted: Admitted | Response | None = None
        try:
            try:
                with store.pinned_reads():  # type: ignore[attr-defined]  # inline_reads: SqliteStore
                    admitted = _admit(service, scope, permission)
                    if isinstance(admitted, Response):
                        return admitted
                    return _act(lambda principal: action(principal, False), *admitted)
            except (WouldBlock, *busy):
                pass
            # Outside the pinned block: other requests run on this thread while it waits.
            if admitted is None:  # busy before the count (only reads come before it)
                return await guarded(scope, permission, lambda principal: action(principal, True))
            assert not isinstance(admitted, Response)
            return await run_in_threadpool(_act, lambda principal: action(principal, True), *admitted)
        except unavailable as exc:
            log.warning("store unavailable on %s %s: %s", scope["method"], scope["path"],
                        type(exc).__name__)
            return error_response(503, "Store unavailable; try again shortly", {"Retry-After": "1"})

    async def data_series(scope: Scope) -> Response:
        pairs = query_pairs(scope)

        def action(principal: Principal, may_scan: bool) -> tuple[int, Any]:
            data = service.data_series_json(principal.workspace, pairs, may_scan)
            return 200, {"data": data, "message": "success"}

        return await guarded_read(scope, "sessions.data_series", action)

    async def post_json(
        request: Request, permission: str, record: Callable[[Principal, Any], Any]
    ) -> Response:
        """A JSON POST: refuse early what needs no body, read it within the limit, then
        authenticate, count and authorise before parsing it."""
        refused = refuse_before_body(request.scope)
        if refused is not None:
            return refused
        try:
            raw = await read_body(request)
        except BodyTooLarge:
            return error_response(413, f"Request body exceeds {limits.MAX_BODY_BYTES} bytes")

        def action(principal: Principal) -> tuple[int, Any]:
            return 201, record(principal, parse_json_body(request, raw))

        return await guarded(request.scope, permission, action)

    async def sessions_track(request: Request) -> Response:
        return await post_json(
            request, "sessions.track",
            lambda principal, body: service.record_sessions(principal.workspace, body).as_json(),
        )

    async def users_track(request: Request) -> Response:
        return await post_json(
            request, "users.track",
            lambda principal, body: service.track_users(principal.workspace, body),
        )

    async def segments_list(request: Request) -> Response:
        pairs = query_pairs(request.scope)

        def action(principal: Principal) -> tuple[int, Any]:
            return 200, service.list_segments(principal.workspace, pairs)

        return await guarded(request.scope, "segments.list", action)

    async def segments_details(request: Request) -> Response:
        pairs = query_pairs(request.scope)

        def action(principal: Principal) -> tuple[int, Any]:
            return 200, service.segment_details(principal.workspace, pairs)

        return await guarded(request.scope, "segments.details", action)

    async def healthz(request: Request) -> Response:
        try:
            healthy = await run_in_threadpool(store.ping)
        except Exception:  # the store is down: say so, do not crash
            healthy = False
        if healthy:
            return json_response({"status": "ok", "message": "success"})
        return error_response(503, "Store unavailable")

    async def openapi(request: Request) -> Response:
        return json_response(openapi_document())

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "Not found")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        # Keep Starlette's Allow header: a 405 must say which methods the path takes.
        return error_response(405, "Method not allowed", _exception_headers(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), _exception_headers(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error")

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        # Each worker thread holds its own SQLite connection and page cache; group commit
        # lets a few threads carry any number of concurrent batches, so fewer threads than
        # anyio's default 40 bound memory without costing throughput.
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        yield
        if toucher is not None:
            toucher.shutdown(wait=True)
        service.limiter.close()
        store.close()

    routes = [
        Route("/sessions/data_series", ScopeEndpoint(data_series), methods=["GET"]),
        Route("/sessions/track", sessions_track, methods=["POST"]),
        Route("/users/track", users_track, methods=["POST"]),
        Route("/segments/list", segments_list, methods=["GET"]),
        Route("/segments/details", segments_details, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            404: not_found,
            405: method_not_allowed,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    app.add_middleware(access_logging.AccessLogMiddleware)
    app.state.service = service
    return app


def _logged(submit: Callable[..., Future[None]]) -> Callable[[Callable[[], None]], object]:
    """``submit`` whose failures are logged (a background write has no caller to tell)."""

    def run(work: Callable[[], None]) -> object:
        def logged() -> None:
            try:
                work()
            except Exception as exc:  # e.g. the store is down: last-seen waits for the next one
                log.warning("background write failed: %s", type(exc).__name__)

        try:
            return submit(logged)
        except RuntimeError:  # shutting down: this last-seen update is dropped
            return None

    return run


def _exception_headers(exc: Exception) -> dict[str, str] | None:
    headers = getattr(exc, "headers", None)
    return dict(headers) if headers else None


def parse_json_body(request: Request, raw: bytes) -> Any:
    if not is_json_content_type(request):
        raise ClientError(415, "Content-Type must be application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ClientError(400, f"body is not valid JSON ({exc.msg})") from None

