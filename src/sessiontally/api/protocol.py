"""Uvicorn's HTTP protocol with the API's error shape for requests it refuses itself.

A request that the HTTP parser cannot take never reaches the application, and uvicorn
answers it with a plain-text ``400 Invalid HTTP request received.``. The commonest case is
a request line over 64 KiB (httptools' URL parser keeps 16-bit offsets), i.e. a query
string of megabytes, which the application would have answered 414. This protocol sends
the API's JSON error shape instead: ``414 {"message": "Query string too long"}`` when the
URL read so far is over the query-string limit, ``400 {"message": "Invalid HTTP request"}``
otherwise. ``sessiontally serve`` selects it (``http="sessiontally.api.protocol:HttpProtocol"``).
"""

from __future__ import annotations

import asyncio

import orjson

from .. import limits

HttpProtocol: type[asyncio.Protocol]


def _reply(status: int, too_long: bool) -> tuple[int, bytes]:
    message = "Query string too long" if too_long else "Invalid HTTP request"
    return (414 if too_long else status), orjson.dumps({"message": message})


try:
    import httptools  # noqa: F401
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without httptools: its own h11 answers
    from uvicorn.protocols.http.h11_impl import H11Protocol

    HttpProtocol = H11Protocol
else:

    class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            url = getattr(self, "url", b"") or b""
            status, body = _reply(400, len(url) > limits.MAX_QUERY_STRING_BYTES)
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n",
                    b"\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
            self.transport.close()

    HttpProtocol = JsonErrorsHttpToolsProtocol
