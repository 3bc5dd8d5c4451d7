"""``/kpi/*/data_series``: daily active users, monthly active users, new users and
uninstalls per local day of the workspace's zone (Braze's KPI exports)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..service import Principal
from .gate import Gate
from .http import query_pairs

KPI_NAMES = ("dau", "mau", "new_users", "uninstalls")  # each served at /kpi/<name>/data_series


def endpoint(name: str) -> Any:
    """The handler of ``GET /kpi/<name>/data_series`` (permission ``kpi.<name>.data_series``)."""
    permission = f"kpi.{name}.data_series"

    async def data_series(request: Request) -> Response:
        gate: Gate = request.app.state.gate
        pairs = query_pairs(request.scope)

        def action(principal: Principal, may_scan: bool) -> Any:
            return gate.service.kpi_series(principal.workspace, name, pairs)

        return await gate.read(request.scope, permission, action)

    data_series.__name__ = f"kpi_{name}_data_series"
    return data_series
