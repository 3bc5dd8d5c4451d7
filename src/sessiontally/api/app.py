"""The ASGI application: composes the store, rate limiter, service and routes.

Handlers live in one module per resource (``sessions``, ``users``, ``segments``, ``kpi``,
``events``, ``meta``; the dashboard's in ``signin``, ``dashboard`` and ``assets``) and
reach what they need through ``request.app.state``; how their work runs is the gate's
business (``gate.py``), and how refusals become responses is ``errors.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.routing import Route

from ..config import Settings
from ..errors import Unavailable
from ..service import Service
from . import (
    assets,
    dashboard,
    events,
    kpi,
    meta,
    metrics,
    script,
    segments,
    sessions,
    signin,
    tracking,
    users,
)
from . import logging as access_logging
from .errors import EXCEPTION_HANDLERS
from .gate import Gate
from .http import ScopeEndpoint

log = logging.getLogger("sessiontally.api")

# Each worker thread holds its own SQLite connection and page cache; group commit lets a
# few threads carry any number of concurrent batches, so fewer threads than anyio's
# default 40 bound memory without costing throughput.
WORKER_THREADS = 16

ROUTES = [
    Route("/sessions/data_series", ScopeEndpoint(sessions.data_series, "gate"), methods=["GET"]),
    Route("/sessions/track", sessions.track, methods=["POST"]),
    Route("/users/track", users.track, methods=["POST"]),
    Route("/users/delete", users.delete, methods=["POST"]),
    Route("/segments/list", segments.list_segments, methods=["GET"]),
    Route("/segments/details", segments.details, methods=["GET"]),
    *(Route(f"/kpi/{name}/data_series", kpi.endpoint(name), methods=["GET"]) for name in kpi.KPI_NAMES),
    Route("/events/list", events.list_events, methods=["GET"]),
    Route("/events/data_series", events.data_series, methods=["GET"]),
    *(Route(path, tracking.receive, methods=["POST", "OPTIONS"]) for path in tracking.PATHS),
    Route("/healthz", meta.healthz, methods=["GET"]),
    Route("/readyz", meta.readyz, methods=["GET"]),
    Route("/metrics", metrics.metrics, methods=["GET"]),
    Route("/openapi.json", meta.openapi_json, methods=["GET"]),
    Route("/docs", meta.docs, methods=["GET"]),
    Route("/js/sessiontally.js", script.tracker, methods=["GET", "HEAD"]),
    Route("/sign-in", signin.sign_in_form, methods=["GET"]),
    Route("/sign-in", signin.sign_in, methods=["POST"]),
    Route("/sign-out", signin.sign_out, methods=["POST"]),
    *dashboard.ROUTES,
    Route("/dashboard/static/{path:path}", assets.static, methods=["GET", "HEAD"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    access_logging.configure(settings.log_level)
    service = Service.open(settings)
    try:
        service.ensure_migrated()
    except Unavailable as exc:
        log.warning("store unavailable at startup (%s); answering 503 until it is back",
                    type(exc).__name__)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        service.start_maintenance()  # retention (docs/architecture.md), in each worker
        try:
            yield
        finally:
            service.close()
            metrics.mark_process_dead()
            # The last requests' access-log lines, before the process ends (a SIGTERM
            # ends it without the interpreter's own clean-up).
            access_logging.flush()

    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.add_middleware(access_logging.AccessLogMiddleware)
    app.add_middleware(metrics.MetricsMiddleware, routes=ROUTES)
    app.state.service = service
    app.state.settings = settings
    app.state.gate = Gate(service)
    return app
