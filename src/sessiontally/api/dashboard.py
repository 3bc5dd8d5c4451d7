"""The dashboard: ``GET /`` (the page), ``/dashboard/context.json`` (what the page shows
besides series) and ``/dashboard/api/...``, the read endpoints of the API for a signed-in
member.

The data endpoints take the API's own parameters and give its own answers (the page's
script reads them exactly as an API client would), but the caller is the member of the
session cookie instead of a key: the workspace is the member's, always, and these reads
are not counted against the workspace's API rate limit.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import limits, members, overview
from ..errors import SessiontallyError, Unavailable
from ..service import Service
from .assets import ASSET_VERSION
from .errors import refusal_response
from .http import json_response, message_response, query_pairs
from .kpi import KPI_NAMES
from .pages import PRIVATE, SESSION_COOKIE, clear_cookie, page, session_token

if TYPE_CHECKING:
    from ..store.base import Workspace

SIGNED_OUT = "Your dashboard session has ended; sign in again"
# The default view's first request (dashboard.js: 30 days and the 30 before, by day): the
# page names it for preloading, so it leaves with the page's assets, not after them.
FIRST_SERIES = "/dashboard/api/sessions/data_series?unit=day&length=60"
FIRST_SERIES_PRELOAD = f'<link rel="preload" href="{html.escape(FIRST_SERIES)}" as="fetch" crossorigin>'

UNAVAILABLE_PAGE = ("<!doctype html><title>sessiontally</title>"
                    "<p>The service is unavailable; try again shortly.</p>")
_PRIVATE_RAW = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in PRIVATE.items()]

Pairs = tuple[tuple[str, str], ...]
Read = Callable[[Service, "Workspace", Pairs], Any]


async def home(request: Request) -> Response:
    """``GET /``: the dashboard of the signed-in member's workspace, else the sign-in page."""
    service: Service = request.app.state.service
    token = session_token(request.scope)
    try:
        signed = await run_in_threadpool(_signed_in, service, token)
    except Unavailable:
        return HTMLResponse(UNAVAILABLE_PAGE, 503, {**PRIVATE, "Retry-After": "1"})
    if signed is None or token is None:
        response = RedirectResponse("/sign-in", 303, PRIVATE)
        if token is not None:
            clear_cookie(response, request.scope, SESSION_COOKIE)
        return response
    default_view = not request.scope.get("query_string")
    return page("dashboard.html", {
        "workspace_name": signed.workspace.name,
        "member_email": signed.member.email,
        "csrf_token": members.csrf_token(token),
        "asset_version": ASSET_VERSION,
    }, markup={"first-series": FIRST_SERIES_PRELOAD} if default_view else None)


async def context(request: Request) -> Response:
    """``GET /dashboard/context.json``."""
    base_url = f"{request.url.scheme}://{request.url.netloc}"

    def read(service: Service, signed: members.SignedIn) -> Any:
        return overview.context(service.store, signed, base_url)

    return await _member_call(request, read)


def data(read: Read) -> Callable[[Request], Any]:
    """A read endpoint of the API for the signed-in member's workspace."""

    async def endpoint(request: Request) -> Response:
        if len(request.scope.get("query_string", b"")) > limits.MAX_QUERY_STRING_BYTES:
            return message_response(414, "Query string too long")
        pairs = query_pairs(request.scope)
        return await _member_call(request, lambda service, signed: read(service, signed.workspace, pairs))

    return endpoint


async def _member_call(request: Request, read: MemberRead) -> Response:
    service: Service = request.app.state.service
    token = session_token(request.scope)
    return await run_in_threadpool(_answer, service, token, read)


MemberRead = Callable[[Service, members.SignedIn], Any]


def _answer(service: Service, token: str | None, read: MemberRead) -> Response:
    try:
        signed = _signed_in(service, token)
        if signed is None:
            return message_response(401, SIGNED_OUT, PRIVATE)
        body = read(service, signed)
    except SessiontallyError as exc:
        return refusal_response(exc, _PRIVATE_RAW)
    return json_response(body, 200, PRIVATE)


def _signed_in(service: Service, token: str | None) -> members.SignedIn | None:
    if token is None:
        return None
    service.ensure_migrated()
    return members.signed_in(service.store, token, time.time())


def _sessions(service: Service, workspace: Workspace, pairs: Pairs) -> Any:
    return {"data": service.data_series_json(workspace, pairs), "message": "success"}


def _kpi(name: str) -> Read:
    return lambda service, workspace, pairs: service.kpi_series(workspace, name, pairs)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/dashboard/context.json", context, methods=["GET"]),
    Route("/dashboard/api/sessions/data_series", data(_sessions), methods=["GET"]),
    *(Route(f"/dashboard/api/kpi/{name}/data_series", data(_kpi(name)), methods=["GET"])
      for name in KPI_NAMES),
    Route("/dashboard/api/events/list", data(lambda s, w, p: s.event_names(w, p)), methods=["GET"]),
    Route("/dashboard/api/events/data_series", data(lambda s, w, p: s.event_series(w, p)), methods=["GET"]),
]
