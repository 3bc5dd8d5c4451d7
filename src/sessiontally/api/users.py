"""``/users/*``: user attributes, and erasure."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..service import Principal
from .gate import Gate


async def track(request: Request) -> Response:
    """``POST /users/track``."""
    gate: Gate = request.app.state.gate
    service = gate.service

    def record(principal: Principal, body: Any) -> Any:
        return service.track_users(principal.workspace, body)

    return await gate.post_json(request, "users.track", record)


async def delete(request: Request) -> Response:
    """``POST /users/delete``: erase users (201, as ``/users/track``)."""
    gate: Gate = request.app.state.gate
    service = gate.service

    def erase(principal: Principal, body: Any) -> Any:
        return service.delete_users(principal.workspace, body)

    return await gate.post_json(request, "users.delete", erase)
