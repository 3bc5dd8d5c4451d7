"""One structured (JSON) log line per request, with no secrets.

The query string is logged without its ``api_key`` value, and no header is logged, so a
key never reaches the logs. Uvicorn's own access log is switched off for that reason.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("sessiontally.access")
SECRET_PARAMETERS = frozenset({"api_key"})
MAX_LOGGED_QUERY = 512
# Anything shaped like a key (st_<workspace>_<secret>), wherever a client put it: in
# another parameter (apikey=, token=, "Bearer st_..."), or in the path.
_KEY_SHAPED = re.compile(r"st_[0-9]+_[A-Za-z0-9_-]{16,}", re.ASCII)


def scrub(text: str) -> str:
    return _KEY_SHAPED.sub("st_[redacted]", text)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("sessiontally")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def redacted_query(raw: bytes) -> str:
    pairs = parse_qsl(raw.decode("latin-1")[: 16 * 1024], keep_blank_values=True)
    safe = [(scrub(k), "[redacted]" if k in SECRET_PARAMETERS else scrub(v)) for k, v in pairs]
    return urlencode(safe)[:MAX_LOGGED_QUERY]


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)  # (the access log is off: no per-request cost)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            state = scope.get("state", {})
            record = {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": scope["method"],
                "path": scrub(scope["path"])[:256],
                "query": redacted_query(query) if (query := scope.get("query_string", b"")) else "",
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": client[0] if client else None,
                "workspace_id": state.get("workspace_id"),
            }
            logger.info(orjson.dumps(record).decode())
