"""The bare endpoint of the HTTP-overhead benchmark: the same server stack as the service
(Starlette under uvicorn, orjson bodies) answering GET /sessions/data_series with a
constant JSON body shaped and sized like a 100-day series, and nothing else (no
authentication, rate limit, thread hop, access log or store).

    uvicorn bare_app:app --port 8000   (from bench/; bench/common.py: bare_server)
"""

from __future__ import annotations

from datetime import date, timedelta

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_FIRST = date(2025, 1, 1)
BODY = orjson.dumps({
    "data": [{"time": (_FIRST + timedelta(days=i)).isoformat(), "sessions": 100_000 + i} for i in range(100)],
    "message": "success",
})


async def data_series(request: Request) -> Response:
    return Response(BODY, 200, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok","message":"success"}', 200, media_type="application/json")


app = Starlette(routes=[
    Route("/sessions/data_series", data_series, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
])
