"""Bad input to the tracking API (docs/api.md "The tracking API"), against a real server on
both engines: each case is one row of ``CASES``, a request and the answer it must get,
either a refusal (4xx, exactly ``{"message": ...}``) or a ``200`` whose ``rejected`` lists
the invalid messages, each with a message naming the field.

For every case, besides the answer: never a 5xx, no traceback in the server's stderr, the
CORS header on the answer, no rate-limit headers (write-key traffic is not the
workspace's API traffic), and **nothing else changes**: every tracking-related row of the
workspace (events, derived sessions, rollup, users, the app's message counter) is the
same after the request as before it. The run counts the rows tried ("tracking bad inputs
tried" in the summary).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
import pytest
from hostile_support import RATE_HEADERS, error_body, header, tally
from tracking_http_support import INVALID_WRITE_KEY, basic, message, snapshot

from sessiontally import keys

pytestmark = pytest.mark.e2e

KB = 1024
INVALID = INVALID_WRITE_KEY["message"]
NOT_JSON = "body is not valid JSON"
TOO_LARGE = "request exceeds 500 KB"
NOT_OBJECT = "body must be a JSON object"
BATCH_SHAPE = "'batch' must be an array of messages"
NOW = "2025-06-01T12:00:00Z"


@dataclass
class Ctx:
    client: httpx.Client
    url: str
    wk: str  # app 0's write key
    other_app_id: str  # app 1's id
    rotated: str  # app 2's write key before it was rotated
    foreign_wk: str  # a write key of another workspace's app

    def post(
        self,
        path: str,
        body: Any,
        *,
        key: str | None = "",
        content_type: str | None = "application/json",
        encoding: str | None = None,
        **headers: str,
    ) -> httpx.Response:
        """POST ``body`` (bytes as they are, else JSON) with app 0's key as HTTP Basic
        (``key=None``: no credential; another string: that key)."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        sent: dict[str, str] = {"Origin": "https://page.example"}
        if key is not None:
            sent.update(basic(key or self.wk))
        if content_type is not None:
            sent["Content-Type"] = content_type
        if encoding is not None:
            sent["Content-Encoding"] = encoding
        sent.update(headers)
        return self.client.post(path, content=raw, headers=sent)

    def batch(self, *messages: Any, **kwargs: Any) -> httpx.Response:
        return self.post("/v1/batch", {"batch": list(messages)}, **kwargs)

    def one(self, path: str = "/v1/batch", **fields: Any) -> httpx.Response:
        """A valid track message with ``fields`` changed (None removes a field), on a batch
        path (in a batch) or a single-message path (as the body)."""
        body = message("track", "anon-1", NOW)
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        if path in ("/v1/batch", "/v1/b"):
            return self.post(path, {"batch": [body]})
        return self.post(path, body)


@dataclass
class Case:
    id: str
    send: Callable[[Ctx], Any]
    status: int
    message: str | None = None  # exact message of a refusal
    contains: str | None = None  # a fragment of it
    rejected: dict[int, str] | None = None  # a 200: index -> fragment of its message


def rejected(fragment: str, index: int = 0) -> dict[int, str]:
    return {index: fragment}


# ------------------------------------------------------------------------------- raw HTTP


def raw_post(
    url: str, path: str, head: str, body: bytes = b"", timeout: float = 30
) -> tuple[int, dict, bytes]:
    """Send a POST by hand (headers as given); the status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    request = f"POST {path} HTTP/1.1\r\nHost: t\r\n{head}Connection: close\r\n\r\n".encode() + body
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    head_bytes, _, content = received.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, content


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, content
        self.text = content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _declared_over_limit(c: Ctx) -> RawResponse:
    auth = basic(c.wk)["Authorization"]
    head = f"Authorization: {auth}\r\nContent-Type: text/plain\r\nContent-Length: {10 << 20}\r\n"
    return RawResponse(*raw_post(c.url, "/v1/batch", head))


def _chunked_over_limit(c: Ctx) -> RawResponse:
    auth = basic(c.wk)["Authorization"]
    piece = b" " * (64 * KB)
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(9)) + b"0\r\n\r\n"
    head = f"Authorization: {auth}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
    return RawResponse(*raw_post(c.url, "/v1/batch", head, body))


# ----------------------------------------------------------------------------- bodies


def _padded(size: int) -> dict[str, Any]:
    """A valid track message of about ``size`` bytes as JSON."""
    body = message("track", "anon-big", NOW)
    body["properties"] = {"pad": ""}
    body["properties"]["pad"] = "x" * (size - len(orjson.dumps(body)))
    assert len(orjson.dumps(body)) == size
    return body


def _batch_of(size: int) -> bytes:
    """A batch body of exactly ``size`` bytes: 30 KB messages, and spaces to fill."""
    messages = []
    while len(orjson.dumps({"batch": messages + [_padded(30 * KB)]})) < size:
        messages.append(_padded(30 * KB))
    body = orjson.dumps({"batch": messages})
    return body + b" " * (size - len(body))


def _gzip_bomb(expanded: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * min(expanded, 1 << 20)
    out = [compressor.compress(b'{"batch": [')]
    for _ in range(expanded // len(chunk)):
        out.append(compressor.compress(chunk))
    out.append(compressor.compress(b"]}") + compressor.flush())
    return b"".join(out)


def _nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + "1" + close * depth


def _basic_raw(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + value}


WRONG_TYPES: list[tuple[str, Any, str]] = [
    # field, a wrong value, the fragment its rejection must hold
    ("type", 7, "'type'"),
    ("type", ["track"], "'type'"),
    ("type", "launch", "'type'"),
    ("userId", {"id": 1}, "'userId' must be a string"),
    ("userId", [1], "'userId' must be a string"),
    ("userId", True, "'userId' must be a string"),
    ("userId", 1.5, "'userId' must be a string"),
    ("userId", "u" * 998, "'userId' must be at most 997 characters"),
    ("anonymousId", {"id": 1}, "'anonymousId' must be a string"),
    ("anonymousId", False, "'anonymousId' must be a string"),
    ("anonymousId", "a\u0000b", "'anonymousId' must not contain NUL"),
    ("event", 42, "'event' must be a string"),
    ("event", ["Played"], "'event' must be a string"),
    ("event", "", "'event' must be 1 to 200 characters"),
    ("event", "e" * 201, "'event' must be 1 to 200 characters"),
    ("messageId", 12345, "'messageId' must be a string"),
    ("messageId", "", "'messageId' must be a string of 1 to 128"),
    ("messageId", "m" * 129, "'messageId' must be a string of 1 to 128"),
    ("messageId", "m\u0000", "'messageId' must not contain NUL"),
    ("timestamp", 1717243200, "'timestamp' must be an ISO-8601 datetime string"),
    ("timestamp", {"$date": NOW}, "'timestamp' must be an ISO-8601 datetime string"),
    ("timestamp", "yesterday", "'timestamp'"),
    ("timestamp", "2025-02-30T12:00:00Z", "'timestamp'"),
    ("timestamp", "2016-12-31T23:59:60Z", "'timestamp'"),
    ("timestamp", "1969-12-31T23:59:59Z", "'timestamp' must not be before 1970"),
    ("timestamp", "0001-01-01T00:00:00Z", "'timestamp' must not be before 1970"),
    ("timestamp", "9999-12-31T23:59:59Z", "'timestamp' must not be more than 24 hours in the future"),
    ("originalTimestamp", "1969-12-31T23:59:59Z", "'originalTimestamp' must not be before 1970"),
    ("originalTimestamp", 0, "'originalTimestamp' must be an ISO-8601 datetime string"),
    ("properties", "plan=pro", "'properties' must be an object"),
    ("properties", [1, 2], "'properties' must be an object"),
    ("context", "web", "'context' must be an object"),
    ("context", 3, "'context' must be an object"),
    ("traits", "vip", "'traits' must be an object"),
]


def _only(field: str, value: Any) -> dict[str, Any]:
    """``field`` set to ``value``; for ``originalTimestamp``, without ``timestamp`` (which
    would take precedence)."""
    return {field: value, "timestamp": None} if field == "originalTimestamp" else {field: value}


def _deep_message(depth: int, person: str = "deep", message_id: str | None = None) -> bytes:
    """A track message whose properties are objects ``depth`` levels deep (the message
    itself is one more level), as JSON text (deeper than orjson would write)."""
    head = {"type": "track", "anonymousId": person, "event": "Deep", "timestamp": NOW}
    if message_id is not None:
        head["messageId"] = message_id
    text = orjson.dumps(head)[:-1] + b', "properties": '
    return text + _nested(depth - 1, '{"a":', "}").encode() + b"}"


def _future(hours: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + hours * 3600))


CASES: list[Case] = [
    # ------------------------------------------------------------------ credentials: 401
    Case("no-credential", lambda c: c.batch(message("page"), key=None), 401, INVALID),
    Case("no-credential-single", lambda c: c.post("/v1/t", message("track"), key=None), 401, INVALID),
    Case("unknown-key", lambda c: c.batch(message("page"), key="wk_1_" + "0" * 32), 401, INVALID),
    Case("garbage-key", lambda c: c.batch(message("page"), key="nope"), 401, INVALID),
    Case("api-key-shaped", lambda c: c.batch(message("page"), key="st_1_" + "a" * 43), 401, INVALID),
    Case("10-kb-key", lambda c: c.batch(message("page"), key="wk_1_" + "k" * 10_000), 401, INVALID),
    Case("rotated-key", lambda c: c.batch(message("page"), key=c.rotated), 401, INVALID),
    Case(
        "rotated-key-in-body",
        lambda c: c.post("/v1/b", {"writeKey": c.rotated, "batch": [message("page")]}, key=None),
        401,
        INVALID,
    ),
    Case(
        "unknown-key-in-body",
        lambda c: c.post("/v1/batch", {"writeKey": "wk_9_x", "batch": [message("page")]}, key=None),
        401,
        INVALID,
    ),
    Case(
        "key-of-another-app-id",
        lambda c: c.post("/v1/batch", {"appId": c.other_app_id, "batch": [message("page")]}),
        401,
        INVALID,
    ),
    Case(
        "key-of-another-app-id-single",
        lambda c: c.post("/v1/t", {**message("track"), "appId": c.other_app_id}),
        401,
        INVALID,
    ),
    Case(
        "key-of-another-app-id-snake",
        lambda c: c.post("/v1/b", {"app_id": c.other_app_id, "batch": [message("page")]}),
        401,
        INVALID,
    ),
    Case(
        "body-key-with-another-app-id",
        lambda c: c.post(
            "/v1/batch", {"writeKey": c.wk, "appId": c.other_app_id, "batch": [message("page")]}, key=None
        ),
        401,
        INVALID,
    ),
    Case(
        "key-of-another-workspace-with-an-app-id-here",
        lambda c: c.post(
            "/v1/batch", {"appId": c.other_app_id, "batch": [message("page")]}, key=c.foreign_wk
        ),
        401,
        INVALID,
    ),
    Case(
        "key-as-bearer",
        lambda c: c.post("/v1/batch", {"batch": [message("page")]}, key=None, Authorization=f"Bearer {c.wk}"),
        401,
        INVALID,
    ),
    Case(
        "basic-not-base64",
        lambda c: c.post("/v1/batch", {"batch": [message("page")]}, key=None, **_basic_raw("%%%")),
        401,
        INVALID,
    ),
    Case(
        "basic-not-utf8",
        lambda c: c.post(
            "/v1/batch",
            {"batch": [message("page")]},
            key=None,
            **_basic_raw(base64.b64encode(b"\xff\xfe:").decode()),
        ),
        401,
        INVALID,
    ),
    Case(
        "basic-empty-user",
        lambda c: c.post(
            "/v1/batch",
            {"batch": [message("page")]},
            key=None,
            **_basic_raw(base64.b64encode(b":" + c.wk.encode()).decode()),
        ),
        401,
        INVALID,
    ),
    # ------------------------------------------------------------- unreadable bodies: 400
    Case("empty-body", lambda c: c.post("/v1/batch", b""), 400, contains=NOT_JSON),
    Case(
        "truncated-json", lambda c: c.post("/v1/batch", b'{"batch": [{"type": "page"'), 400, contains=NOT_JSON
    ),
    Case("trailing-garbage", lambda c: c.post("/v1/batch", b'{"batch": []} x'), 400, contains=NOT_JSON),
    Case(
        "invalid-utf8",
        lambda c: c.post("/v1/batch", b'{"batch": [{"type": "\xff"}]}'),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "lone-surrogate",
        lambda c: c.post("/v1/t", b'{"anonymousId": "\\ud800", "event": "x"}'),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "nan",
        lambda c: c.post("/v1/t", b'{"anonymousId": "a", "event": "x", "properties": {"n": NaN}}'),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "form-body",
        lambda c: c.post("/v1/batch", b"batch=1", content_type="application/x-www-form-urlencoded"),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "nested-arrays-100000",
        lambda c: c.post("/v1/batch", _nested(100_000).encode()),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "nested-arrays-1025-in-batch",
        lambda c: c.post("/v1/batch", ('{"batch": [' + _nested(1025) + "]}").encode()),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "nested-objects-5000-in-properties",
        lambda c: c.post(
            "/v1/t",
            (
                '{"anonymousId": "a", "event": "x", "properties": ' + _nested(5000, '{"a":', "}") + "}"
            ).encode(),
        ),
        400,
        contains=NOT_JSON,
    ),
    Case(
        "nested-objects-1100-in-batch",
        lambda c: c.post(
            "/v1/batch",
            (
                '{"batch": [{"type": "page", "anonymousId": "a", "context": '
                + _nested(1100, '{"a":', "}")
                + "}]}"
            ).encode(),
        ),
        400,
        contains=NOT_JSON,
    ),
    Case("body-is-array", lambda c: c.post("/v1/batch", b"[]"), 400, contains=NOT_OBJECT),
    Case("body-is-null", lambda c: c.post("/v1/batch", b"null"), 400, contains=NOT_OBJECT),
    Case("body-is-string", lambda c: c.post("/v1/b", b'"batch"'), 400, contains=NOT_OBJECT),
    Case("single-body-is-array", lambda c: c.post("/v1/track", b"[{}]"), 400, contains=NOT_OBJECT),
    Case("single-body-is-number", lambda c: c.post("/v1/p", b"7"), 400, contains=NOT_OBJECT),
    Case("batch-missing", lambda c: c.post("/v1/batch", {"messages": [message("page")]}), 400, BATCH_SHAPE),
    Case("batch-null", lambda c: c.post("/v1/batch", {"batch": None}), 400, BATCH_SHAPE),
    Case("batch-object", lambda c: c.post("/v1/batch", {"batch": message("page")}), 400, BATCH_SHAPE),
    Case("batch-string", lambda c: c.post("/v1/batch", {"batch": "[]"}), 400, BATCH_SHAPE),
    Case("batch-number", lambda c: c.post("/v1/b", {"batch": 1}), 400, BATCH_SHAPE),
    Case(
        "batch-empty",
        lambda c: c.post("/v1/batch", {"batch": []}),
        400,
        "'batch' must hold at least one message",
    ),
    Case(
        "write-key-number",
        lambda c: c.post("/v1/batch", {"writeKey": 7, "batch": [message("page")]}, key=None),
        400,
        "'writeKey' must be a string",
    ),
    Case(
        "write-key-object",
        lambda c: c.post("/v1/t", {**message("track"), "writeKey": {"k": c.wk}}, key=None),
        400,
        "'writeKey' must be a string",
    ),
    # ---------------------------------------------------------------------- sizes: 400
    Case("single-33-kb", lambda c: c.post("/v1/track", _padded(33 * KB)), 400, "message exceeds 32 KB"),
    Case(
        "single-32-kb-plus-1", lambda c: c.post("/v1/t", _padded(32 * KB + 1)), 400, "message exceeds 32 KB"
    ),
    Case("batch-501-kb", lambda c: c.post("/v1/batch", _batch_of(501 * KB)), 400, TOO_LARGE),
    Case("batch-500-kb-plus-1", lambda c: c.post("/v1/b", _batch_of(500 * KB + 1)), 400, TOO_LARGE),
    Case("batch-declared-10-mib", _declared_over_limit, 400, TOO_LARGE),
    Case("batch-chunked-576-kb", _chunked_over_limit, 400, TOO_LARGE),
    Case("single-declared-over", lambda c: c.post("/v1/t", b" " * (501 * KB)), 400, TOO_LARGE),
    # ----------------------------------------------------------------------- gzip: 400
    Case(
        "gzip-not-gzip",
        lambda c: c.post("/v1/batch", orjson.dumps({"batch": [message("page")]}), encoding="gzip"),
        400,
        contains="not valid gzip",
    ),
    Case(
        "gzip-truncated",
        lambda c: c.post(
            "/v1/batch", gzip.compress(orjson.dumps({"batch": [message("page")]}))[:-12], encoding="gzip"
        ),
        400,
        contains="not valid gzip",
    ),
    Case(
        "gzip-corrupt-crc",
        lambda c: c.post(
            "/v1/batch",
            (lambda z: z[:-8] + bytes(8))(gzip.compress(orjson.dumps({"batch": [message("page")]}))),
            encoding="gzip",
        ),
        400,
        contains="not valid gzip",
    ),
    Case(
        "gzip-trailing-garbage",
        lambda c: c.post(
            "/v1/batch", gzip.compress(orjson.dumps({"batch": [message("page")]})) + b"garbage",
            encoding="gzip",
        ),
        400,
        contains="not valid gzip",
    ),
    Case(
        "gzip-many-members-over-500-kb",
        lambda c: c.post("/v1/batch", gzip.compress(b" " * 1000, mtime=0) * 600, encoding="gzip"),
        400,
        TOO_LARGE + " after decompression",
    ),
    Case(
        "gzip-bomb-600-kb",
        lambda c: c.post("/v1/batch", _gzip_bomb(600 * KB), encoding="gzip"),
        400,
        TOO_LARGE + " after decompression",
    ),
    Case(
        "gzip-bomb-256-mib",
        lambda c: c.post("/v1/batch", _gzip_bomb(256 << 20), encoding="gzip"),
        400,
        TOO_LARGE + " after decompression",
    ),
    Case(  # deflate expands at most ~1032 times: this one is over 500 KB before expanding
        "gzip-bomb-1-gib",
        lambda c: c.post("/v1/batch", _gzip_bomb(1 << 30), encoding="gzip"),
        400,
        TOO_LARGE,
    ),
    Case(
        "gzip-single-33-kb",
        lambda c: c.post("/v1/t", gzip.compress(orjson.dumps(_padded(33 * KB))), encoding="gzip"),
        400,
        "message exceeds 32 KB",
    ),
    Case(
        "encoding-br",
        lambda c: c.post("/v1/batch", b'{"batch": []}', encoding="br"),
        400,
        "Content-Encoding must be gzip or identity",
    ),
    Case(
        "encoding-deflate",
        lambda c: c.post("/v1/batch", zlib.compress(b'{"batch": [1]}'), encoding="deflate"),
        400,
        "Content-Encoding must be gzip or identity",
    ),
    # ------------------------------------------------- invalid messages: 200 with rejected
    Case(
        "batch-33-kb-message",
        lambda c: c.post("/v1/batch", {"batch": [_padded(33 * KB)]}),
        200,
        rejected=rejected("message exceeds 32 KB"),
    ),
    Case(
        "batch-nested-500-message",
        lambda c: c.post("/v1/batch", ('{"batch": [' + _nested(500) + "]}").encode()),
        200,
        rejected=rejected("each message must be a JSON object"),
    ),
    Case(
        "batch-of-zeros",
        lambda c: c.post("/v1/batch", ('{"batch": [' + ",".join("0" * 50_000) + "]}").encode()),
        200,
        rejected={i: "each message must be a JSON object" for i in range(50_000)},
    ),
    Case(
        "no-person",
        lambda c: c.one(anonymousId=None),
        200,
        rejected=rejected("'userId' or 'anonymousId' is required"),
    ),
    Case(
        "no-person-single",
        lambda c: c.one("/v1/track", anonymousId=None),
        200,
        rejected=rejected("'userId' or 'anonymousId' is required"),
    ),
    Case(
        "empty-person",
        lambda c: c.one(anonymousId="", userId=""),
        200,
        rejected=rejected("'userId' or 'anonymousId' is required"),
    ),
    Case(
        "null-person",
        lambda c: c.post("/v1/batch", {"batch": [{"type": "page", "anonymousId": None, "userId": None}]}),
        200,
        rejected=rejected("'userId' or 'anonymousId' is required"),
    ),
    Case(
        "track-without-event",
        lambda c: c.one(event=None),
        200,
        rejected=rejected("'event' is required for this type"),
    ),
    Case(
        "track-without-event-single",
        lambda c: c.one("/v1/t", event=None),
        200,
        rejected=rejected("'event' is required for this type"),
    ),
    Case("no-type-in-batch", lambda c: c.one(type=None), 200, rejected=rejected("'type' is required")),
    Case(
        "type-against-path",
        lambda c: c.one("/v1/page", type="track"),
        200,
        rejected=rejected("'type' must be 'page' on this path"),
    ),
    Case(
        "timestamp-before-1970",
        lambda c: c.one(timestamp="1969-12-31T23:59:59.999Z"),
        200,
        rejected=rejected("'timestamp' must not be before 1970"),
    ),
    Case(
        "timestamp-25-hours-ahead",
        lambda c: c.one(timestamp=_future(25)),
        200,
        rejected=rejected("'timestamp' must not be more than 24 hours in the future"),
    ),
    Case(
        "timestamp-25-hours-ahead-single",
        lambda c: c.one("/v1/s", type="screen", timestamp=_future(25)),
        200,
        rejected=rejected("'timestamp' must not be more than 24 hours in the future"),
    ),
    Case(
        "timestamp-offset-out-of-range",
        lambda c: c.one(timestamp="2025-06-01T12:00:00+24:00"),
        200,
        rejected=rejected("'timestamp'"),
    ),
    Case(
        "message-null",
        lambda c: c.post("/v1/batch", {"batch": [None]}),
        200,
        rejected=rejected("each message must be a JSON object"),
    ),
    Case(
        "message-string",
        lambda c: c.post("/v1/batch", {"batch": ["page"]}),
        200,
        rejected=rejected("each message must be a JSON object"),
    ),
    Case(
        "several-invalid",
        lambda c: c.post(
            "/v1/batch",
            {
                "batch": [
                    message("track", event=None),
                    5,
                    message("page", timestamp="1900-01-01T00:00:00Z"),
                    {"type": "identify"},
                ]
            },
        ),
        200,
        rejected={0: "'event'", 1: "JSON object", 2: "'timestamp'", 3: "'userId' or 'anonymousId'"},
    ),
    *[
        Case(
            f"wrong-{field}-{n}",
            lambda c, f=field, v=value: c.one(**_only(f, v)),
            200,
            rejected=rejected(fragment),
        )
        for n, (field, value, fragment) in enumerate(WRONG_TYPES)
    ],
    *[
        Case(
            f"wrong-{field}-{n}-single",
            lambda c, f=field, v=value: c.one("/v1/t", **_only(f, v)),
            200,
            rejected=rejected(
                fragment.replace("'type'", "'type' must be 'track'") if field == "type" else fragment
            ),
        )
        for n, (field, value, fragment) in enumerate(WRONG_TYPES)
    ],
    Case(
        "wrong-name-number",
        lambda c: c.post("/v1/p", {"anonymousId": "a", "name": 5}),
        200,
        rejected=rejected("'name' must be a string"),
    ),
    Case(
        "wrong-name-empty",
        lambda c: c.post("/v1/screen", {"anonymousId": "a", "name": ""}),
        200,
        rejected=rejected("'name' must be 1 to 200 characters"),
    ),
    Case(
        "wrong-name-in-batch",
        lambda c: c.post("/v1/b", {"batch": [{"type": "page", "anonymousId": "a", "name": ["Home"]}]}),
        200,
        rejected=rejected("'name' must be a string"),
    ),
    Case(
        "wrong-traits-list",
        lambda c: c.post("/v1/identify", {"userId": "u1", "traits": ["plan", "pro"]}),
        200,
        rejected=rejected("'traits' must be an object"),
    ),
    Case(
        "wrong-traits-string-in-batch",
        lambda c: c.post("/v1/batch", {"batch": [{"type": "identify", "userId": "u1", "traits": "pro"}]}),
        200,
        rejected=rejected("'traits' must be an object"),
    ),
    # ---------------------------------------------------------------- methods and paths
    Case("get-batch", lambda c: c.client.get("/v1/batch", headers=basic(c.wk)), 405, "Method not allowed"),
    Case(
        "put-track",
        lambda c: c.client.put("/v1/track", headers=basic(c.wk), content=b"{}"),
        405,
        "Method not allowed",
    ),
    Case("unknown-type-path", lambda c: c.post("/v1/launch", message("track")), 404, "Not found"),
]


@pytest.fixture(scope="module")
def ctx(shared_server, shared_db) -> Iterator[Ctx]:
    ws, apps, _ = shared_db.tenant(apps=3)
    rotated = apps[2].write_key
    assert shared_db.store.set_write_key(
        ws.workspace_id, apps[2].app_key, keys.generate_write_key(ws.workspace_id)
    )
    _, foreign, _ = shared_db.tenant()
    with shared_server.client(timeout=120.0) as client:
        yield Ctx(client, shared_server.url, apps[0].write_key, apps[1].app_id, rotated, foreign[0].write_key)


@pytest.fixture(scope="module")
def workspace_of(shared_db, ctx) -> int:
    ws_id = keys.write_key_workspace(ctx.wk)
    assert ws_id is not None
    return ws_id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_tracking_bad_input(ctx, workspace_of, shared_server, shared_db, case):
    tally("tracking bad inputs tried")
    stderr_before = len(shared_server.stderr())
    foreign_ws = keys.write_key_workspace(ctx.foreign_wk)
    assert foreign_ws is not None
    before = snapshot(shared_db.url, workspace_of), snapshot(shared_db.url, foreign_ws)
    response = case.send(ctx)
    status = response.status_code
    assert status < 500, (status, response.text[:500])
    assert status == case.status, (case.status, status, response.text[:500])
    if status == 200:
        body = response.json()
        assert set(body) == {"success", "rejected"} and body["success"] is True, body
        assert case.rejected is not None
        got = {r["index"]: r["message"] for r in body["rejected"]}
        assert all(set(r) == {"index", "message"} for r in body["rejected"])
        assert sorted(got) == sorted(case.rejected), body
        for index, fragment in case.rejected.items():
            assert fragment in got[index], (index, got[index], fragment)
    else:
        found = error_body(response)
        if case.message is not None:
            assert found["message"] == case.message, found
        if case.contains is not None:
            assert case.contains in found["message"], found
    if status not in (404, 405):  # Starlette's own refusals are not the tracking API's
        assert header(response, "access-control-allow-origin") is not None
    for name in RATE_HEADERS:
        assert header(response, name) is None, name
    # nothing else changed, in this workspace or in the other one
    assert (snapshot(shared_db.url, workspace_of), snapshot(shared_db.url, foreign_ws)) == before
    stderr = shared_server.stderr()[stderr_before:]
    assert "Traceback" not in stderr, stderr[-3000:]


def test_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_same_requests_made_valid_are_recorded(ctx, workspace_of, shared_db):
    """The check above would pass if nothing were ever recorded: the valid forms of the
    refused requests are recorded, and change the snapshot."""
    before = snapshot(shared_db.url, workspace_of)
    valid = [
        ctx.batch(message("page", "ok-1", NOW)),
        ctx.post("/v1/t", _padded(32 * KB)),
        ctx.post("/v1/batch", {"batch": [_padded(32 * KB)]}),
        ctx.post("/v1/b", gzip.compress(_batch_of(500 * KB)), encoding="gzip"),
        ctx.post("/v1/batch", {"writeKey": ctx.wk, "batch": [message("page", "ok-2", NOW)]}, key=None),
        # nested as deep as JSON may be here (1024 levels), with and without a messageId,
        # alone and in a batch over 32 KB (where each message is measured)
        ctx.post("/v1/t", _deep_message(1023, "ok-3")),
        ctx.post("/v1/t", _deep_message(300, "ok-4", message_id="deep-1")),
        ctx.post(
            "/v1/batch",
            b'{"batch": [' + _deep_message(1022, "ok-5") + b", " + orjson.dumps(_padded(30 * KB)) + b"]}",
        ),
        ctx.one(timestamp=_future(23)),
        ctx.one(timestamp="1970-01-01T00:00:00Z"),
        ctx.one(userId=12345, anonymousId=None),
    ]
    for response in valid:
        assert response.status_code == 200, response.text[:300]
        assert response.json() == {"success": True}, response.text[:300]
    after = snapshot(shared_db.url, workspace_of)
    assert len(after.events) == len(before.events) + 11 + len(orjson.loads(_batch_of(500 * KB))["batch"])
    # sent again, the deep messages without an id are recognised by their content
    again = ctx.post("/v1/t", _deep_message(1023, "ok-3"))
    assert again.status_code == 200 and again.json() == {"success": True}
    # (a repeat is ignored, though it counts against the app's message limit)
    assert replace(snapshot(shared_db.url, workspace_of), message_counts=()) == replace(
        after, message_counts=()
    )
