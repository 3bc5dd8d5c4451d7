"""``/segments/*``: the workspace's segments, Braze-shaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..service import Principal, Service
from .gate import Gate
from .http import query_pairs

if TYPE_CHECKING:
    from ..store.base import Workspace

    # A segment use case of the service: its answer for the workspace and the query's pairs.
    SegmentsRead = Callable[[Service, Workspace, tuple[tuple[str, str], ...]], dict[str, Any]]


async def list_segments(request: Request) -> Response:
    """``GET /segments/list``."""
    return await _segments_read(request, "segments.list", Service.list_segments)


async def details(request: Request) -> Response:
    """``GET /segments/details``."""
    return await _segments_read(request, "segments.details", Service.segment_details)


async def _segments_read(request: Request, permission: str, read: SegmentsRead) -> Response:
    gate: Gate = request.app.state.gate
    pairs = query_pairs(request.scope)

    def action(principal: Principal) -> Any:
        return read(gate.service, principal.workspace, pairs)

    return await gate.run(request.scope, permission, action)
