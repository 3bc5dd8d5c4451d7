"""``/events/*``: the workspace's custom event names, and custom events by time (Braze's
custom-event exports)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..service import Principal
from .gate import Gate
from .http import query_pairs


async def list_events(request: Request) -> Response:
    """``GET /events/list``."""
    gate: Gate = request.app.state.gate
    pairs = query_pairs(request.scope)

    def action(principal: Principal, may_scan: bool) -> Any:
        return gate.service.event_names(principal.workspace, pairs)

    return await gate.read(request.scope, "events.list", action)


async def data_series(request: Request) -> Response:
    """``GET /events/data_series``."""
    gate: Gate = request.app.state.gate
    pairs = query_pairs(request.scope)

    def action(principal: Principal, may_scan: bool) -> Any:
        return gate.service.event_series(principal.workspace, pairs)

    return await gate.read(request.scope, "events.data_series", action)
