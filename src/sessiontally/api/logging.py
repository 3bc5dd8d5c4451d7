"""One structured (JSON) log line per request, with no secrets.

The query string is logged without its ``api_key`` value, and no header is logged, so a
key never reaches the logs. Uvicorn's own access log is switched off for that reason.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import TextIO
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from .http import StatusSeen
from .memo import QueryMemo

logger = logging.getLogger("sessiontally.access")
SECRET_PARAMETERS = frozenset({"api_key"})
MAX_LOGGED_QUERY = 512
# Anything shaped like a key (st_<workspace>_<secret>), wherever a client put it: in
# another parameter (apikey=, token=, "Bearer st_..."), or in the path.
_KEY_SHAPED = re.compile(r"st_[0-9]+_[A-Za-z0-9_-]{16,}", re.ASCII)


def scrub(text: str) -> str:
    return _KEY_SHAPED.sub("st_[redacted]", text)


ACCESS_LOG_FLUSH_S = 0.5  # how long an access-log line may wait in memory
PIPE_BUF = 4096  # writes up to this size reach a pipe whole, between other processes' writes


class BufferedLineHandler(logging.StreamHandler[TextIO]):
    """Writes its lines in chunks, at most ``interval`` seconds after they were logged
    (as nginx's ``access_log ... buffer= flush=``): one system call for many requests
    instead of one each. A chunk is whole lines of at most PIPE_BUF bytes, so lines of
    several worker processes sharing one stderr never interleave. A crash loses at most
    the last ``interval`` of lines; the access log is not the record of what was stored."""

    def __init__(self, stream: TextIO, interval: float = ACCESS_LOG_FLUSH_S) -> None:
        super().__init__(stream)
        self.pending: list[str] = []
        self.pending_bytes = 0
        self.interval = interval
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every_interval, name="access-log",
                                         daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._append(line + "\n")

    def write_line(self, line: str) -> None:
        """``line`` (no newline) as it is, without a LogRecord: the access log's own path,
        much cheaper than ``Logger.handle``."""
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it (createLock)
            self._append(line + "\n")

    def _append(self, line: str) -> None:  # with the handler's lock held
        self.pending.append(line)
        self.pending_bytes += len(line) if line.isascii() else len(line.encode())
        if self.pending_bytes >= PIPE_BUF:
            self._write_pending()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it (createLock)
            self._write_pending()

    def _write_pending(self) -> None:
        chunk: list[str] = []
        size = 0
        for line in self.pending:
            # bytes: a line may hold non-ASCII characters
            length = len(line) if line.isascii() else len(line.encode())
            if chunk and size + length > PIPE_BUF:
                self.stream.write("".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            self.stream.write("".join(chunk))
        self.pending, self.pending_bytes = [], 0
        if hasattr(self.stream, "flush"):
            self.stream.flush()

    def _flush_every_interval(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.flush()
            except Exception:  # e.g. stderr closed at exit: nothing left to write to
                return

    def close(self) -> None:
        self._stopping.set()
        try:
            self.flush()
        finally:
            super().close()


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("sessiontally")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The access log, one line per request, is written in chunks (BufferedLineHandler);
    # warnings and errors go out at once.
    access = BufferedLineHandler(sys.stderr)
    access.setFormatter(logging.Formatter("%(message)s"))
    for old in logger.handlers:
        old.close()
    logger.handlers[:] = [access]
    logger.propagate = False


def flush() -> None:
    """Write out every access-log line still buffered (at shutdown)."""
    for handler in logger.handlers:
        handler.flush()


_redacted_queries: QueryMemo[str] = QueryMemo()


def redacted_query(raw: bytes) -> str:
    redacted = _redacted_queries.get(raw)
    if redacted is None:
        pairs = parse_qsl(raw.decode("latin-1")[: 16 * 1024], keep_blank_values=True)
        safe = [(scrub(k), "[redacted]" if k in SECRET_PARAMETERS else scrub(v)) for k, v in pairs]
        redacted = urlencode(safe)[:MAX_LOGGED_QUERY]
        _redacted_queries.keep(raw, pairs, redacted)
    return redacted


_logged_paths: dict[str, str] = {}
MEMOISED_PATHS = 256


def logged_path(path: str) -> str:
    """``path`` as logged: scrubbed of key-shaped text, at most 256 characters. The few
    paths a server answers are scrubbed once; one that held a key is never kept."""
    logged = _logged_paths.get(path)
    if logged is None:
        logged = scrub(path)[:256]
        if logged == path and len(_logged_paths) < MEMOISED_PATHS:
            _logged_paths[path] = logged
    return logged


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text
_MILLISECONDS = tuple(f".{ms:03d}+00:00" for ms in range(1000))


def utc_timestamp(now: float) -> str:
    """``now`` as ISO 8601 in UTC to the millisecond (``2026-11-29T04:05:06.789+00:00``);
    the date and time are formatted once a second (as nginx does) and the milliseconds
    looked up, since formatting a timestamp per line would dominate the access log."""
    global _second
    second = int(now)
    last, text = _second  # one tuple: read and replaced whole, never half-updated
    if second != last:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return text + _MILLISECONDS[int((now - second) * 1000)]


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)  # (the access log is off: no per-request cost)
            return
        started = time.perf_counter()
        sent = StatusSeen(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            status = sent.status
            client = scope.get("client")
            state = scope.get("state", {})
            record = {
                "ts": utc_timestamp(time.time()),
                "method": scope["method"],
                "path": logged_path(scope["path"]),
                "query": redacted_query(query) if (query := scope.get("query_string", b"")) else "",
                "status": status,
                "duration_ms": int((time.perf_counter() - started) * 1_000_000) / 1000,
                "client": client[0] if client else None,
                "workspace_id": state.get("workspace_id"),
            }
            write_line(orjson.dumps(record).decode())


def write_line(line: str) -> None:
    """One access-log line. As configured (one BufferedLineHandler, no filters) it goes
    straight to the handler's buffer: a LogRecord, the filters and the formatter would cost
    more than the rest of the access log. Any other set-up (tests, an
    embedding application's own handlers) gets a record as usual."""
    handlers = logger.handlers
    if len(handlers) == 1 and type(handlers[0]) is BufferedLineHandler and not logger.filters:
        handlers[0].write_line(line)
    else:
        # Not logger.info: it would also walk the stack for a file and line never shown.
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None))
