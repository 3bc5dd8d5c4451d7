"""The service's Prometheus metrics, defined once, and ``GET /metrics``.

Labels are bounded and hold nothing sensitive: a request's route *template* (never its
raw path, so no id or key reaches a label; a path no route matches is ``other``), its
method and status; never a workspace, a key or a client address.

With several worker processes (``serve --workers N``), ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start (and removes it
at exit): prometheus-client then keeps each process's values in files there, and
``/metrics`` answers their sum over every worker, whichever worker is asked. The
variable must be set before ``prometheus_client`` is first imported in a process, which
is why only this module imports it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import errors
from .http import StatusSeen, message_response

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OTHER = "other"

REQUESTS = Counter(
    "sessiontally_http_requests", "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
)
LATENCY = Histogram(
    "sessiontally_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ("route",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SESSIONS_RECORDED = Counter(
    "sessiontally_sessions_recorded", "New sessions recorded by POST /sessions/track (not duplicates).",
)
SESSION_DUPLICATES = Counter(
    "sessiontally_session_duplicates", "Sessions sent again to POST /sessions/track (already recorded).",
)
EVENTS_RECORDED = Counter(
    "sessiontally_events_recorded",
    "Tracking-API messages (/v1/*) accepted and recorded durably (a messageId sent again is "
    "recorded once but counted here each time).",
)
RATE_LIMITED = Counter(
    "sessiontally_rate_limit_rejections",
    "Requests refused with 429: a workspace over its hourly request limit (api), an app over "
    "its hourly message limit (tracking), or too many dashboard sign-in attempts (sign_in).",
    ("limit",),
)
UNAVAILABLE = Counter(
    "sessiontally_dependency_errors",
    "Requests refused with 503 because a dependency failed: the store unavailable or busy "
    "(locked past its wait), or the rate-limit counters unavailable.",
    ("dependency", "error"),
)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_VARIABLE))


def mark_process_dead() -> None:
    """At a worker's exit: its live gauges leave the sums (its counters stay in them)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream


# ------------------------------------------------------------------------ recording


def count_refusal(exc: errors.SessiontallyError) -> None:
    """Count a refusal answered because a dependency failed (a 503)."""
    if isinstance(exc, errors.RateLimiterUnavailable):
        UNAVAILABLE.labels("rate_limiter", "unavailable").inc()
    elif isinstance(exc, errors.StoreBusy):
        UNAVAILABLE.labels("store", "busy").inc()
    elif isinstance(exc, errors.Unavailable):
        UNAVAILABLE.labels("store", "unavailable").inc()


def limit_of(route: str) -> str:
    """Which limit a 429 on ``route`` enforced."""
    if route.startswith("/v1/"):
        return "tracking"
    if route == "/sign-in":
        return "sign_in"
    return "api"


def count_sessions(answer: Any) -> None:
    """Count what a ``POST /sessions/track`` answer says it recorded."""
    if isinstance(answer, dict):
        SESSIONS_RECORDED.inc(int(answer.get("sessions_processed", 0)))
        SESSION_DUPLICATES.inc(int(answer.get("duplicates", 0)))


def count_events(accepted: int) -> None:
    if accepted > 0:
        EVENTS_RECORDED.inc(accepted)


class MetricsMiddleware:
    """Counts every HTTP request by its route's template, method and status, and times it."""

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.routes = routes
        self._templates: dict[str, str] = {}  # path -> template, for the few fixed paths

    def route_of(self, scope: Scope) -> str:
        path: str = scope["path"]
        known = self._templates.get(path)
        if known is not None:
            return known
        template = OTHER
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:  # PARTIAL: the path's route, another method (405)
                template = route.path
                break
        if "{" not in template and len(self._templates) < 1024:
            self._templates[path] = template  # a fixed path: it can be remembered as it is
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent = StatusSeen(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            status = sent.status
            route = self.route_of(scope)
            method = scope["method"] if scope["method"] in METHODS else OTHER
            REQUESTS.labels(route, method, str(status)).inc()
            if status == 429:
                RATE_LIMITED.labels(limit_of(route)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)


# ---------------------------------------------------------------------- GET /metrics


def exposition() -> bytes:
    """The metrics in Prometheus's text format: summed over every worker process in
    multi-process mode, else this process's (with its process_* metrics)."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))


async def metrics(request: Request) -> Response:
    """``GET /metrics`` (no key; ``SESSIONTALLY_METRICS=off`` answers 404 instead)."""
    if not request.app.state.settings.metrics:
        return message_response(404, "Not found")
    body = await run_in_threadpool(exposition)  # reads every worker's files
    return Response(body, media_type=CONTENT_TYPE_LATEST)
