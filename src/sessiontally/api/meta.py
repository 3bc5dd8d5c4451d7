"""Endpoints about the service itself: liveness, readiness, and its OpenAPI description."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..service import Service
from .http import json_response, message_response
from .openapi import DOCS_HTML, openapi_document


async def healthz(request: Request) -> Response:
    """``GET /healthz``: 200 while the store answers, else 503."""
    service: Service = request.app.state.service
    if await run_in_threadpool(service.healthy):
        return json_response({"status": "ok", "message": "success"})
    return message_response(503, "Store unavailable")


# How /readyz names a dependency that is down, in its message.
DEPENDENCY_NAMES = {"store": "Store", "redis": "Redis", "counter_file": "Rate-limit counter file"}


async def readyz(request: Request) -> Response:
    """``GET /readyz``: 200 when every dependency answers (the store; Redis when the
    rate-limit counters are there), else 503 naming the ones that do not."""
    service: Service = request.app.state.service
    found = await run_in_threadpool(service.readiness)
    states = {name: "up" if up else "down" for name, up in found.items()}
    down = [name for name, up in found.items() if not up]
    if not down:
        return json_response({"status": "ready", "message": "success", "dependencies": states})
    names = " and ".join(DEPENDENCY_NAMES.get(name, name) for name in down)
    return json_response({"message": f"{names} unavailable", "status": "not ready", "down": down,
                          "dependencies": states}, 503, {"Retry-After": "1"})


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``."""
    return json_response(openapi_document())


async def docs(request: Request) -> Response:
    """``GET /docs``: the OpenAPI document, rendered."""
    return HTMLResponse(DOCS_HTML)
