"""Endpoints about the service itself: health, and its OpenAPI description."""

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


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``."""
    return json_response(openapi_document())


async def docs(request: Request) -> Response:
    """``GET /docs``: the OpenAPI document, rendered."""
    return HTMLResponse(DOCS_HTML)
