"""``/sessions/*``: sessions by time, and recording sessions cut by the caller."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from ..service import Principal
from .gate import Gate
from .http import query_pairs
from .metrics import count_sessions


async def data_series(scope: Scope, gate: Gate) -> Response:
    """``GET /sessions/data_series`` (a scope endpoint, given ``app.state.gate``: it is the
    hottest route)."""
    service = gate.service
    pairs = query_pairs(scope)

    def action(principal: Principal, may_scan: bool) -> Any:
        data = service.data_series_json(principal.workspace, pairs, may_scan)
        return {"data": data, "message": "success"}

    return await gate.read(scope, "sessions.data_series", action)


async def track(request: Request) -> Response:
    """``POST /sessions/track``."""
    gate: Gate = request.app.state.gate
    service = gate.service

    def record(principal: Principal, body: Any) -> Any:
        answer = service.record_sessions(principal.workspace, body).as_json()
        count_sessions(answer)
        return answer

    return await gate.post_json(request, "sessions.track", record)
