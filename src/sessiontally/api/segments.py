"""``/segments/*``: the workspace's segments, Braze-shaped."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..service import Principal
from .gate import Gate
from .http import query_pairs


async def list_segments(request: Request) -> Response:
    """``GET /segments/list``."""
    gate: Gate = request.app.state.gate
    pairs = query_pairs(request.scope)

    def action(principal: Principal) -> Any:
        return gate.service.list_segments(principal.workspace, pairs)

    return await gate.run(request.scope, "segments.list", action)


async def details(request: Request) -> Response:
    """``GET /segments/details``."""
    gate: Gate = request.app.state.gate
    pairs = query_pairs(request.scope)

    def action(principal: Principal) -> Any:
        return gate.service.segment_details(principal.workspace, pairs)

    return await gate.run(request.scope, "segments.details", action)
