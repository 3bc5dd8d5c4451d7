"""The OpenAPI 3.1 document of the API, and a dependency-free /docs page that renders it.

The document describes every authenticated endpoint and ``/healthz``, with the schemas of
parameters, request bodies and responses, and examples of each (taken from a server
holding ``sessiontally demo`` data). ``/openapi.json`` and ``/docs`` themselves are left
out: the fuzz suite calls every operation of the document and expects a key to be needed.
docs/api.md is the reference for people; this document is for tools and for ``/docs``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import __version__, limits
from ..service import INVALID_KEY, MISSING_KEY

_MESSAGE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
_RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text, "example": example}
    for name, text, example in (
        ("X-RateLimit-Limit", "requests allowed per UTC clock hour for the workspace", 250000),
        ("X-RateLimit-Remaining", "requests left in the current window", 249937),
        ("X-RateLimit-Reset", "UTC epoch seconds of the next full hour", 1796601600),
    )
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "example": 1826,
                                "description": "seconds until the next full UTC hour"}}
_RETRY_SOON = {"Retry-After": {"schema": {"type": "integer"}, "example": 1,
                               "description": "seconds to wait before retrying"}}

# Examples: identifiers and answers of a server holding `sessiontally demo` data.
_IOS_APP = "01731e03-428a-40c9-b810-2456fbbd6577"
_US_SEGMENT = "e74786f2-d77e-47fc-9ce7-46665d689ba3"
_PAYING_SEGMENT = "c2c8cfce-d61b-4b05-9447-b553538034b2"
_INVALID_KEY = INVALID_KEY


def _error(description: str, with_rate_headers: bool = True, example: str | None = None,
           headers: dict[str, Any] | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Message"}}
    if example is not None:
        media["example"] = {"message": example}
    response: dict[str, Any] = {"description": description, "content": {"application/json": media}}
    all_headers = {**(_RATE_HEADERS if with_rate_headers else {}), **(headers or {})}
    if all_headers:
        response["headers"] = all_headers
    return response


def _common_errors(permission: str) -> dict[str, Any]:
    return {
        "401": _error(f"no key (`{MISSING_KEY}`); a malformed, unknown or revoked key, or an "
                      f"address not allowed (`{INVALID_KEY}`)", False, _INVALID_KEY),
        "403": _error("the key lacks the endpoint's permission", True,
                      f"Access Denied: this API key does not have the {permission} permission"),
        "429": _error("over the workspace's hourly rate limit", True, "Over rate limit", _RETRY_AFTER),
        "503": _error("store or rate limiter unavailable; retry after Retry-After", False,
                      "Store unavailable; try again shortly", _RETRY_SOON),
    }


_TOO_LONG = _error("query string over 8 KiB", False, "Query string too long")
_TOO_LARGE = _error("body over 16 MiB", False, f"Request body exceeds {limits.MAX_BODY_BYTES} bytes")
_NOT_JSON = _error("Content-Type is not application/json", True, "Content-Type must be application/json")

# Identifiers never hold NUL (PostgreSQL text cannot store it; refused on every engine).
_NO_NUL = "^[^\\u0000]*$"
# Query values the service refuses when empty, over series_query.MAX_VALUE_LENGTH or with NUL.
_NON_EMPTY = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": _NO_NUL}


def _ci_pattern(*words: str) -> str:
    """A pattern matching any of ``words`` in any letter case (the parameters compare
    case-insensitively; an ``enum`` would claim that ``DAY`` is refused)."""
    return "^(" + "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in w) for w in words) + ")$"


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False,
           example: Any = None) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": required, "schema": schema,
                 "description": description}
    if example is not None:
        parameter["example"] = example
    return parameter


def _examples(**named: tuple[str, Any]) -> dict[str, Any]:
    """Named OpenAPI Example objects: ``name=(summary, value)``."""
    return {name: {"summary": summary, "value": value} for name, (summary, value) in named.items()}


def _batch_refusal(item_schema: str) -> dict[str, Any]:
    """A 400 body for a batch: the message, and per-item errors of ``item_schema``."""
    return {
        "type": "object", "required": ["message"],
        "properties": {"message": {"type": "string"}, "errors": {
            "type": "array", "items": {"$ref": f"#/components/schemas/{item_schema}"}}},
    }


def _json_body(schema: dict[str, Any], **examples: tuple[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema, "examples": _examples(**examples)}}


_SERIES_DAYS = {"data": [
    {"time": "2026-11-24", "sessions": 2861}, {"time": "2026-11-25", "sessions": 3058},
    {"time": "2026-11-26", "sessions": 3162}, {"time": "2026-11-27", "sessions": 3649},
    {"time": "2026-11-28", "sessions": 3723}, {"time": "2026-11-29", "sessions": 3258},
    {"time": "2026-11-30", "sessions": 3411},
], "message": "success"}
_SERIES_HOURS = {"data": [
    {"time": "2026-11-01T00:00:00-04:00", "sessions": 91},
    {"time": "2026-11-01T01:00:00-04:00", "sessions": 55},
    {"time": "2026-11-01T01:00:00-05:00", "sessions": 51},
    {"time": "2026-11-01T02:00:00-05:00", "sessions": 28},
], "message": "success"}
_SESSION = {
    "session_id": "8f14e45f-ceea-4e7a-9b1c-3f1d2a7c0001",
    "external_id": "user-0042",
    "app_id": _IOS_APP,
    "started_at": "2025-06-01T14:03:12Z",
    "ended_at": "2025-06-01T14:09:40Z",
}
_MIXED_SESSIONS = [
    {**_SESSION, "ended_at": None},
    {"session_id": "8f14e45f-ceea-4e7a-9b1c-3f1d2a7c0004", "external_id": "user-0044",
     "app_id": "not-an-app", "started_at": "2025-06-01T15:00:00Z"},
    {"session_id": "8f14e45f-ceea-4e7a-9b1c-3f1d2a7c0005", "external_id": "user-0045",
     "app_id": _IOS_APP, "started_at": "2025-06-01T15:00:00+02:00"},
]
_SESSION_ERRORS = [
    {"index": 1, "message": "'app_id' is not an app of this workspace"},
]
_USER = {
    "external_id": "user-0042", "country": "US", "plan": "pro", "age": 31, "beta_tester": True,
    "signup_date": "2025-05-02T09:15:00Z", "favorite_genres": ["jazz", "soul"],
    "last_coupon": {"$time": "2025-06-01"}, "nickname": None,
}
_USER_ERRORS = [
    {"index": 1, "message": "attribute 'score' is an object ('inc'); only {\"$time\": ...} is supported "
                            "(Braze's increments, array add/remove and nested attributes are not)"},
    {"index": 0, "part": "events",
     "message": "'events' are not supported by this service; only 'attributes' are processed"},
]
_SEGMENTS = [
    {"id": _US_SEGMENT, "name": "US users", "analytics_tracking_enabled": True, "tags": ["geo"]},
    {"id": _PAYING_SEGMENT, "name": "Paying users", "analytics_tracking_enabled": True,
     "tags": ["billing"]},
    {"id": "eef3e1dd-cf3a-4414-b100-8c368836047f", "name": "Recent sign-ups",
     "analytics_tracking_enabled": True, "tags": ["growth"]},
    {"id": "cc2a3ceb-f222-49dd-8074-46457ce899b4", "name": "German speakers",
     "analytics_tracking_enabled": False, "tags": ["geo"]},
]


# ------------------------------------------------------------------ the tracking API
# Write-key operations (CONTRACT section 10): their own credential, no workspace rate-limit
# headers, CORS headers on every answer. Message fields are typed here only where the
# service checks them for every message type; the per-type rules (``event`` for track,
# ``name`` for page and screen, ``originalTimestamp`` when there is no ``timestamp``) are
# typed on the single-message paths or said in words, so that data this document calls
# invalid is refused or rejected, never silently taken.

_INVALID_WRITE_KEY = "Invalid write key"
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": {"schema": {"type": "string"}, "example": "https://shop.example",
                                    "description": "the request's Origin, else *"},
    "Vary": {"schema": {"type": "string"}, "example": "Origin", "description": "Origin"},
}
_TRACK_TYPES = ("track", "page", "screen", "identify", "group", "alias")
_SHORT = {"track": "t", "page": "p", "screen": "s", "identify": "i", "group": "g", "alias": "a"}
_PERSON = {"type": ["string", "integer", "null"], "maxLength": limits.MAX_EXTERNAL_ID_LENGTH,
           "pattern": _NO_NUL}
# Not typed: a value that is not a string names no app and is ignored.
_APP_ID = {"description": "if a string, it must be the write key's own app id (else 401)"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _NO_NUL}


def _message_schema(kind: str | None) -> dict[str, Any]:
    """A message of a batch (``kind`` None) or the body of a single-message path."""
    properties: dict[str, Any] = {
        "type": {"type": "string", "enum": list(_TRACK_TYPES) if kind is None else [kind],
                 "description": "required in a batch; implied by a single-message path"},
        "userId": {**_PERSON, "description": "the user (a number is read as its decimal text)"},
        "anonymousId": {**_PERSON, "description": "the person when present; userId or "
                                                  "anonymousId is required"},
        "messageId": {"type": ["string", "null"], "minLength": 1, "maxLength": 128, "pattern": _NO_NUL,
                      "description": "recorded once per app; absent: made from the content"},
        "timestamp": {"type": ["string", "null"],
                      "description": "ISO-8601 (no offset = UTC), after 1970, at most 24 hours "
                                     "ahead; absent: originalTimestamp, else the time of receipt"},
        "originalTimestamp": {"description": "used when timestamp is absent, with its rules"},
        "properties": {"type": ["object", "null"]},
        "context": {"type": ["object", "null"]},
        "traits": {"type": ["object", "null"],
                   "description": "identify: set as the user's attributes"},
    }
    if kind == "track":
        properties["event"] = {**_NAME, "description": "the event's name (required)"}
    elif kind in ("page", "screen"):
        properties["name"] = {**_NAME, "type": ["string", "null"], "description": "the page's name"}
    else:
        properties["event"] = {"description": "track: the event's name, required, 1 to 200 characters"}
        properties["name"] = {"description": "page and screen: optional name, 1 to 200 characters"}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if kind == "track":
        schema["required"] = ["event"]
    if kind is not None:
        properties["writeKey"] = {"type": "string", "description": "the write key, when not sent "
                                                                   "as HTTP Basic"}
        properties["appId"] = _APP_ID
    return schema


_BATCH_BODY = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/TrackMessage"}},
        "writeKey": {"type": "string", "description": "the write key, when not sent as HTTP Basic"},
        "appId": _APP_ID,
        "sentAt": {"description": "accepted, not used"},
        "context": {"description": "accepted, not used"},
    },
}
_TRACK_ANSWER = {
    "type": "object",
    "required": ["success"],
    "properties": {
        "success": {"type": "boolean", "const": True},
        "rejected": {"type": "array", "items": {"$ref": "#/components/schemas/ItemError"},
                     "description": "the invalid messages, by index; the others are recorded"},
    },
}
_EXAMPLE_MESSAGES = [
    {"type": "page", "anonymousId": "a1", "name": "Home", "timestamp": "2025-06-01T12:00:00Z",
     "messageId": "ajs-4f1c2a"},
    {"type": "track", "anonymousId": "a1", "userId": "u1", "event": "Signed Up",
     "properties": {"plan": "pro"}, "timestamp": "2025-06-01T12:04:00Z"},
    {"type": "identify", "userId": "u1", "traits": {"plan": "pro", "age": 31}},
]
_EXAMPLE_SINGLE = {
    "track": {"anonymousId": "a1", "event": "Played", "timestamp": "2025-06-01T12:30:00Z"},
    "page": {"anonymousId": "a1", "name": "Pricing", "timestamp": "2025-06-01T12:31:00Z"},
    "screen": {"userId": "u1", "name": "Settings", "timestamp": "2025-06-01T12:32:00Z"},
    "identify": {"userId": "u1", "traits": {"plan": "pro", "country": "NO"}},
    "group": {"userId": "u1", "groupId": "acme", "traits": {"seats": 12}},
    "alias": {"userId": "u1", "previousId": "a1"},
}


def _tracking_error(description: str, example: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _error(description, False, example, {**_CORS_HEADERS, **(headers or {})})


def _tracking_responses(single: bool) -> dict[str, Any]:
    too_large = "message exceeds 32 KB" if single else "request exceeds 500 KB"
    return {
        "200": {
            "description": "every valid message is durable; invalid ones are listed in rejected",
            "headers": _CORS_HEADERS,
            "content": _json_body(
                _TRACK_ANSWER,
                recorded=("all recorded", {"success": True}),
                rejected=("one message rejected", {"success": True, "rejected": [
                    {"index": 0 if single else 2, "message": "'event' is required for this type"}]}),
            ),
        },
        "400": _tracking_error("the request cannot be read: not JSON, not valid gzip, too large, "
                               + ("not an object" if single else "no batch array or an empty one"),
                               too_large),
        "401": _tracking_error("missing, unknown or rotated write key, or one used with another "
                               "app's appId", _INVALID_WRITE_KEY),
        "403": _tracking_error("the request's Origin is not among the app's allowed origins",
                               "This app does not accept events from this origin"),
        "429": _tracking_error("over the app's hourly message limit; nothing recorded",
                               "Over the app's hourly message limit", _RETRY_AFTER),
        "503": _tracking_error("store unavailable; retry after Retry-After",
                               "Store unavailable; try again shortly", _RETRY_SOON),
    }


def _tracking_paths() -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"writeKey": []}]
    batch = {
        "post": {
            "summary": "Record a batch of tracking messages (Segment's HTTP Tracking API)",
            "description": "Messages of Segment's HTTP Tracking API, recorded once per app and "
                           "`messageId`; sessions are derived from `track`, `page` and `screen`. "
                           "Authenticate with the app's write key as the HTTP Basic user name "
                           "(empty password) or as `writeKey` in the body. The body is JSON "
                           "whatever the Content-Type (`text/plain` too), optionally gzip, at "
                           "most 500 KB (also after decompression) and 32 KB per message. CORS "
                           "is answered (`OPTIONS` preflight).",
            "security": security,
            "requestBody": {"required": True, "content": _json_body(
                _BATCH_BODY,
                mixed=("a page, a track and an identify", {"batch": _EXAMPLE_MESSAGES}),
                body_key=("the write key in the body", {"writeKey": "wk_1_5e0c8b1d6f2a4e3b9c7d1a2b3c4d5e6f",
                                                        "batch": _EXAMPLE_MESSAGES[:1]}),
            )},
            "responses": _tracking_responses(False),
        }
    }
    paths: dict[str, Any] = {
        "/v1/batch": {"post": {**batch["post"], "operationId": "trackBatch"}},
        "/v1/b": {"post": {**batch["post"], "operationId": "trackBatchShort",
                           "summary": "The same as /v1/batch (the short path analytics.js uses)"}},
    }
    for kind in _TRACK_TYPES:
        operation = {
            "summary": f"Record one {kind} message",
            "description": f"One `{kind}` message as the body, its type implied by the path; "
                           "everything else as for `/v1/batch`, with 32 KB for the whole body. "
                           "An invalid message is listed in `rejected` of the 200.",
            "security": security,
            "requestBody": {"required": True, "content": _json_body(
                {"$ref": f"#/components/schemas/Track{kind.capitalize()}"},
                one=(f"a {kind}", _EXAMPLE_SINGLE[kind]),
            )},
            "responses": _tracking_responses(True),
        }
        paths[f"/v1/{kind}"] = {"post": {**operation, "operationId": f"track{kind.capitalize()}"}}
        paths[f"/v1/{_SHORT[kind]}"] = {"post": {**operation, "operationId": f"track{kind.capitalize()}Short",
                                                 "summary": f"The same as /v1/{kind} (short path)"}}
    return paths


def _tracking_schemas() -> dict[str, Any]:
    schemas = {"TrackMessage": _message_schema(None)}
    schemas.update({f"Track{kind.capitalize()}": _message_schema(kind) for kind in _TRACK_TYPES})
    return schemas


# ------------------------------------------------------------------ KPIs and custom events

_KPI_TEXT = {
    "dau": ("Export daily active users by date",
            "Distinct persons with at least one session starting on each local day"),
    "mau": ("Export monthly active users by date",
            "Distinct persons with a session starting in the 30 local days ending on each day"),
    "new_users": ("Export new users by date",
                  "Persons whose first session ever (in the app, or in the workspace without "
                  "`app_id`) starts on each local day"),
    "uninstalls": ("Export app uninstalls by date",
                   "`track` events named `Application Uninstalled` on each local day"),
}
_KPI_EXAMPLES = {
    "dau": [1204, 1377, 1311], "mau": [4105, 4122, 4140],
    "new_users": [38, 41, 29], "uninstalls": [7, 4, 9],
}
_LENGTH = _query("length", {"type": "integer", "minimum": 1, "maximum": 100},
                 "number of buckets, ending with the one containing ending_at", True, 7)
_ENDING_AT = _query("ending_at", {"type": "string", "minLength": 10, "maxLength": 64},
                    "ISO-8601 date or datetime; default now; without offset it is "
                    "wall time in the bucketing zone", False, "2026-11-30")
_APP_ID_PARAM = _query("app_id", _NON_EMPTY, "an app of the workspace; default all apps", False, _IOS_APP)


def _series_answer(field: str, description: str, **examples: tuple[str, Any]) -> dict[str, Any]:
    """A 200 of a series whose points are ``{"time", field}``."""
    return {
        "description": description,
        "headers": _RATE_HEADERS,
        "content": _json_body(
            {
                "type": "object",
                "required": ["data", "message"],
                "properties": {
                    "message": {"type": "string"},
                    "data": {"type": "array", "items": {
                        "type": "object",
                        "required": ["time", field],
                        "properties": {
                            "time": {"type": "string",
                                     "description": "YYYY-MM-DD, or the hour's first instant with offset"},
                            field: {"type": "integer"}},
                    }},
                },
            },
            **examples,
        ),
    }


def _kpi_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for name, (summary, definition) in _KPI_TEXT.items():
        permission = f"kpi.{name}.data_series"
        days = ["2026-11-28", "2026-11-29", "2026-11-30"]
        example = {"data": [{"time": d, name: n} for d, n in zip(days, _KPI_EXAMPLES[name], strict=True)],
                   "message": "success"}
        paths[f"/kpi/{name}/data_series"] = {"get": {
            "summary": summary,
            "description": f"{definition}, in the workspace's time zone: `length` days, oldest "
                           "first, the last being the day of `ending_at`. Exact whatever the "
                           "order in which sessions and events arrived. Braze-compatible; "
                           "`time_zone` and `segment_id` are refused (400). Permission "
                           f"`{permission}`.",
            "operationId": f"kpi{''.join(w.capitalize() for w in name.split('_'))}DataSeries",
            "parameters": [
                _LENGTH,
                _query("unit", {"type": "string", "pattern": _ci_pattern("day")},
                       "day (case-insensitive), the only unit of a KPI; default day", False, "day"),
                {**_ENDING_AT, "description": "ISO-8601 date or datetime; default now; the series "
                                              "ends with its local date in the workspace's zone"},
                _APP_ID_PARAM,
            ],
            "responses": {
                "200": _series_answer(name, "the series, oldest first",
                                      days=("length=3&ending_at=2026-11-30", example)),
                "400": _error("invalid parameter (the message names it)", True,
                              "'time_zone' is not accepted here: KPI days are local days in the "
                              "workspace's time zone"),
                "414": _TOO_LONG,
                **_common_errors(permission),
            },
        }}
    return paths


def _event_paths() -> dict[str, Any]:
    return {
        "/events/list": {"get": {
            "summary": "List the workspace's custom event names, 250 per page, alphabetical",
            "description": "The names of the `track` events recorded in the workspace (any app). "
                           "Permission `events.list`.",
            "operationId": "eventsList",
            "parameters": [
                _query("page", {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                       "page number; default 0", False, 0),
            ],
            "responses": {
                "200": {
                    "description": "one page of names (empty past the last page)",
                    "headers": _RATE_HEADERS,
                    "content": _json_body(
                        {
                            "type": "object",
                            "required": ["events", "message"],
                            "properties": {
                                "message": {"type": "string"},
                                "events": {"type": "array", "maxItems": 250, "items": {"type": "string"}},
                            },
                        },
                        first_page=("the first page", {
                            "events": ["Added to Cart", "Application Installed", "Application Opened",
                                       "Application Uninstalled", "Order Completed"],
                            "message": "success"}),
                    ),
                },
                "400": _error("invalid parameter (the message names it)", True,
                              "'page' must be a non-negative integer"),
                "414": _TOO_LONG,
                **_common_errors("events.list"),
            },
        }},
        "/events/data_series": {"get": {
            "summary": "Export a custom event's occurrences by time",
            "description": "`track` events of one name per local day or hour: `length` buckets, "
                           "oldest first, the last containing `ending_at`, with every rule of "
                           "`/sessions/data_series` (units, zones, `time_zone`, labels). A name "
                           "never recorded counts 0 in every bucket. Braze-compatible. "
                           "Permission `events.data_series`.",
            "operationId": "eventsDataSeries",
            "parameters": [
                _query("event", _NON_EMPTY, "the custom event's name", True, "Order Completed"),
                _LENGTH,
                _query("unit", {"type": "string", "pattern": _ci_pattern("day", "hour")},
                       "bucket size, day or hour (case-insensitive); default day", False, "day"),
                _ENDING_AT,
                _APP_ID_PARAM,
                _query("segment_id", _NON_EMPTY,
                       "a segment of the workspace with analytics tracking on; default "
                       "all users", False, _US_SEGMENT),
                _query("time_zone", _NON_EMPTY,
                       "extension: IANA zone overriding the workspace zone", False,
                       "America/New_York"),
            ],
            "responses": {
                "200": _series_answer(
                    "count", "the series, oldest first",
                    days=("event=Order Completed&length=3&ending_at=2026-11-30", {"data": [
                        {"time": "2026-11-28", "count": 212}, {"time": "2026-11-29", "count": 187},
                        {"time": "2026-11-30", "count": 240}], "message": "success"}),
                    hours=("event=Order Completed&length=2&unit=hour&ending_at=2026-11-30T12:00:00Z",
                           {"data": [{"time": "2026-11-30T06:00:00-05:00", "count": 4},
                                     {"time": "2026-11-30T07:00:00-05:00", "count": 9}],
                            "message": "success"}),
                ),
                "400": _error("invalid parameter (the message names it)", True,
                              "'event' is required (the name of a custom event)"),
                "414": _TOO_LONG,
                **_common_errors("events.data_series"),
            },
        }},
    }


_DESCRIPTION = """\
Session analytics with a Braze-compatible sessions-by-time export.

Authenticate with `Authorization: Bearer <key>` (or the legacy `api_key` query parameter).
A key belongs to one workspace and carries one permission per endpoint. Missing, unknown or
revoked keys, and addresses outside the key's allowlist, all get 401 `{"message": "Invalid
API key"}`; a key without the endpoint's permission gets 403.

Each workspace has an hourly request limit per UTC clock hour, shared by all its keys and
endpoints; every counted response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset`, and over the limit the answer is 429 with `Retry-After`.

Every error is `{"message": "..."}` naming what is wrong; the track endpoints add `errors`,
one entry per refused item. Request bodies are JSON (`Content-Type: application/json`), at
most 16 MiB; query strings at most 8 KiB.

The tracking API (`/v1/batch`, `/v1/track`, ... and their short forms) is Segment's HTTP
Tracking API: it takes an app's write key (HTTP Basic user name, or `writeKey` in the
body) instead of an API key, answers CORS, is limited per app and hour by messages (not
by the workspace's request limit, so no rate-limit headers), and answers 200
`{"success": true}`, listing invalid messages in `rejected`.

Day buckets are local calendar days and hour buckets local clock hours of the workspace's
IANA zone (or `time_zone`), across DST changes and in zones such as Asia/Kolkata or
Australia/Lord_Howe; a session counts once, in the bucket of its `started_at`. The KPIs
(`/kpi/dau`, `/kpi/mau`, `/kpi/new_users`, `/kpi/uninstalls`) are per local day of the
workspace's zone only. The full reference is docs/api.md in the source repository."""


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    item_error = {
        "type": "object",
        "required": ["index", "message"],
        "properties": {"index": {"type": "integer"}, "message": {"type": "string"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sessiontally",
            "version": __version__,
            "description": _DESCRIPTION,
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Authorization: Bearer <key>"},
                "api_key": {"type": "apiKey", "in": "query", "name": "api_key",
                            "description": "legacy: the key as a query parameter, used only "
                                           "without an Authorization header"},
                "writeKey": {"type": "http", "scheme": "basic",
                             "description": "the tracking API only: an app's write key as the "
                                            "user name, with an empty password (or `writeKey` "
                                            "in the body)"},
            },
            "schemas": {
                **_tracking_schemas(),
                "Message": _MESSAGE,
                "ItemError": item_error,
                "UserItemError": {
                    "type": "object",
                    "required": ["index", "message"],
                    "properties": {
                        "index": {"type": "integer",
                                  "description": "index of the object within its part's array"},
                        "part": {"type": "string", "enum": ["events", "purchases"],
                                 "description": "absent for objects of 'attributes'"},
                        "message": {"type": "string"},
                    },
                },
                "UserAttributes": {
                    "type": "object",
                    "required": ["external_id"],
                    "description": "Other keys are attributes: a string, number, boolean, array "
                                   "of strings, ISO-8601 datetime (a string with an offset, or "
                                   '{"$time": "..."}), or null to remove the attribute.',
                    "properties": {
                        "external_id": {"type": "string", "minLength": 1, "pattern": _NO_NUL,
                                        "maxLength": limits.MAX_EXTERNAL_ID_LENGTH,
                                        "description": "the user"},
                        "_update_existing_only": {"type": "boolean",
                                                  "description": "only update a user that exists"},
                    },
                    "additionalProperties": {"type": ["string", "number", "boolean", "array", "object",
                                                      "null"]},
                },
                "Session": {
                    "type": "object",
                    "required": ["session_id", "external_id", "app_id", "started_at"],
                    "properties": {
                        "session_id": {"type": "string", "minLength": 1, "pattern": _NO_NUL,
                                       "maxLength": limits.MAX_SESSION_ID_LENGTH,
                                       "description": "your id of the session, unique in the "
                                                      "workspace (a repeat is a duplicate)"},
                        "external_id": {"type": "string", "minLength": 1, "pattern": _NO_NUL,
                                        "maxLength": limits.MAX_EXTERNAL_ID_LENGTH,
                                        "description": "the user"},
                        "app_id": {"type": "string", "minLength": 1, "pattern": _NO_NUL,
                                   "maxLength": limits.MAX_APP_ID_LENGTH,
                                   "description": "an app of the workspace"},
                        "started_at": {"type": "string", "format": "date-time",
                                       "description": "with an offset; from 1970 to 24 hours "
                                                      "ahead; the session counts in its bucket"},
                        "ended_at": {"type": ["string", "null"], "format": "date-time",
                                     "description": "optional, with an offset, not before "
                                                    "started_at"},
                    },
                },
            },
        },
        "security": [{"bearer": []}, {"api_key": []}],
        "paths": {
            "/sessions/data_series": {
                "get": {
                    "summary": "Export app sessions by time",
                    "description": "Sessions per local day or hour: `length` buckets, oldest "
                                   "first, the last containing `ending_at`, each counting every "
                                   "session that started in it. Braze-compatible. Permission "
                                   "`sessions.data_series`.",
                    "operationId": "sessionsDataSeries",
                    "parameters": [
                        _query("length", {"type": "integer", "minimum": 1, "maximum": 100},
                               "number of buckets, ending with the one containing ending_at", True, 7),
                        _query("unit", {"type": "string", "pattern": _ci_pattern("day", "hour")},
                               "bucket size, day or hour (case-insensitive); default day", False, "day"),
                        _query("ending_at", {"type": "string", "minLength": 10, "maxLength": 64},
                               "ISO-8601 date or datetime; default now; without offset it is "
                               "wall time in the bucketing zone", False, "2026-11-30"),
                        _query("app_id", _NON_EMPTY, "an app of the workspace; default all apps",
                               False, _IOS_APP),
                        _query("segment_id", _NON_EMPTY,
                               "a segment of the workspace with analytics tracking on; default "
                               "all users", False, _US_SEGMENT),
                        _query("time_zone", _NON_EMPTY,
                               "extension: IANA zone overriding the workspace zone", False,
                               "America/New_York"),
                    ],
                    "responses": {
                        "200": _series_answer(
                            "sessions", "the series, oldest first",
                            days=("length=7&unit=day&ending_at=2026-11-30", _SERIES_DAYS),
                            hours=("length=4&unit=hour&ending_at=2026-11-01T02:30:00-05:00 "
                                   "(a DST fall-back in America/New_York)", _SERIES_HOURS),
                        ),
                        "400": _error("invalid parameter (the message names it)", True,
                                      "'length' must be an integer from 1 to 100"),
                        "414": _TOO_LONG,
                        **_common_errors("sessions.data_series"),
                    },
                }
            },
            "/sessions/track": {
                "post": {
                    "summary": "Record sessions (1 to 10,000 per request)",
                    "description": "Items are independent: valid ones are recorded even when "
                                   "others are refused (listed in `errors`). A `session_id` the "
                                   "workspace already has is a duplicate, not counted again, so "
                                   "retries are safe. What the 201 reports is durable. Permission "
                                   "`sessions.track`.",
                    "operationId": "sessionsTrack",
                    "requestBody": {"required": True, "content": _json_body(
                        {
                            "type": "object",
                            "required": ["sessions"],
                            "properties": {"sessions": {
                                "type": "array", "minItems": 1,
                                "maxItems": limits.MAX_SESSIONS_PER_REQUEST,
                                "items": {"$ref": "#/components/schemas/Session"},
                            }},
                        },
                        one=("one session", {"sessions": [_SESSION]}),
                        mixed=("a duplicate, an unknown app, a new session",
                               {"sessions": _MIXED_SESSIONS}),
                    )},
                    "responses": {
                        "201": {
                            "description": "recorded; duplicates counted once",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                {
                                    "type": "object",
                                    "required": ["message", "sessions_processed", "duplicates"],
                                    "properties": {
                                        "message": {"type": "string"},
                                        "sessions_processed": {"type": "integer"},
                                        "duplicates": {"type": "integer"},
                                        "errors": {"type": "array",
                                                   "items": {"$ref": "#/components/schemas/ItemError"}},
                                    },
                                },
                                one=("one session recorded",
                                     {"message": "success", "sessions_processed": 1, "duplicates": 0}),
                                mixed=("the mixed batch, sent after the first example",
                                       {"message": "success", "sessions_processed": 1, "duplicates": 1,
                                        "errors": _SESSION_ERRORS}),
                            ),
                        },
                        "400": {
                            "description": "body of the wrong shape, or no valid item",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                _batch_refusal("ItemError"),
                                nothing_valid=("no valid item", {
                                    "message": "no valid sessions in the request",
                                    "errors": [{"index": 0, "message": "'started_at' must not be "
                                                                       "more than 24 hours in the future"}],
                                }),
                                shape=("not a sessions body", {
                                    "message": "'sessions' must hold at least one session"}),
                            ),
                        },
                        "413": _TOO_LARGE,
                        "415": _NOT_JSON,
                        "414": _TOO_LONG,
                        **_common_errors("sessions.track"),
                    },
                }
            },
            "/users/track": {
                "post": {
                    "summary": "Set or remove user attributes (the attributes part of Braze's endpoint)",
                    "description": "Each object of `attributes` names a user by `external_id` and "
                                   "sets attributes (null removes one); objects apply in order. "
                                   "Objects of `events` and `purchases` are refused in `errors`. "
                                   "Sessions count toward tracked segments by the attributes "
                                   "their user has when they are recorded. Permission `users.track`.",
                    "operationId": "usersTrack",
                    "requestBody": {"required": True, "content": _json_body(
                        {
                            "type": "object",
                            # at least one object in some part (an empty body is a 400)
                            "anyOf": [
                                {"required": [part], "properties": {part: {"type": "array", "minItems": 1}}}
                                for part in ("attributes", "events", "purchases")
                            ],
                            # null: the part is absent
                            "properties": {
                                "attributes": {"type": ["array", "null"], "maxItems": 75,
                                               "items": {"$ref": "#/components/schemas/UserAttributes"}},
                                "events": {"type": ["array", "null"], "maxItems": 75,
                                           "description": "not supported: each object is refused in errors"},
                                "purchases": {"type": ["array", "null"], "maxItems": 75,
                                              "description": "not supported: each object is refused in errors"},
                            },
                        },
                        attributes=("one attribute of each type, and one removed", {"attributes": [_USER]}),
                        refusals=("an unsupported value, and an events part", {
                            "attributes": [
                                {"external_id": "user-0043", "plan": "team"},
                                {"external_id": "user-0044", "score": {"inc": 1}},
                            ],
                            "events": [{"external_id": "user-0043", "name": "played",
                                        "time": "2025-06-01T10:00:00Z"}],
                        }),
                    )},
                    "responses": {
                        "201": {
                            "description": "attributes applied in order (the last write wins)",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                {
                                    "type": "object",
                                    "required": ["message", "attributes_processed"],
                                    "properties": {
                                        "message": {"type": "string"},
                                        "attributes_processed": {"type": "integer"},
                                        "errors": {"type": "array",
                                                   "items": {"$ref": "#/components/schemas/UserItemError"}},
                                    },
                                },
                                attributes=("all applied", {"message": "success", "attributes_processed": 1}),
                                refusals=("some refused", {"message": "success", "attributes_processed": 1,
                                                           "errors": _USER_ERRORS}),
                            ),
                        },
                        "400": {
                            "description": "body of the wrong shape or not JSON, or nothing valid in it",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                _batch_refusal("UserItemError"),
                                nothing_valid=("no valid attributes object", {
                                    "message": "no valid attributes objects in the request",
                                    "errors": [{"index": 0, "message": "'external_id' is required"}],
                                }),
                            ),
                        },
                        "413": _TOO_LARGE,
                        "415": _NOT_JSON,
                        "414": _TOO_LONG,
                        **_common_errors("users.track"),
                    },
                }
            },
            "/users/delete": {
                "post": {
                    "summary": "Erase users with every count they contributed (Braze's /users/delete)",
                    "description": "For each external id: its attributes, recorded sessions, events "
                                   "and derived sessions (and those of anonymous ids whose events "
                                   "carry it as userId), and every count they made (session series "
                                   "of every app and segment, KPIs, event counts), one transaction "
                                   "per user. `user_aliases` and `braze_ids` are refused (400). "
                                   "Permission `users.delete`.",
                    "operationId": "usersDelete",
                    "requestBody": {"required": True, "content": _json_body(
                        {
                            "type": "object",
                            "required": ["external_ids"],
                            "not": {"anyOf": [{"required": ["user_aliases"]}, {"required": ["braze_ids"]}]},
                            "properties": {
                                "external_ids": {
                                    "type": "array", "minItems": 1, "maxItems": 50,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 997,
                                              "pattern": _NO_NUL},
                                },
                            },
                        },
                        two=("two users", {"external_ids": ["user-0042", "user-0043"]}),
                    )},
                    "responses": {
                        "201": {
                            "description": "erased; `deleted` counts the ids of which anything was "
                                           "stored (0 for an id already erased or never seen)",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                {
                                    "type": "object",
                                    "required": ["deleted", "message"],
                                    "properties": {"deleted": {"type": "integer", "minimum": 0},
                                                   "message": {"type": "string"}},
                                },
                                two=("both had data", {"deleted": 2, "message": "success"}),
                                again=("a retry", {"deleted": 0, "message": "success"}),
                            ),
                        },
                        "400": _error("body not JSON or not {\"external_ids\": [1 to 50 strings]}, "
                                      "or user_aliases / braze_ids given (nothing is erased)", True,
                                      "'user_aliases' is not supported: name users by 'external_ids'"),
                        "413": _TOO_LARGE,
                        "415": _NOT_JSON,
                        "414": _TOO_LONG,
                        **_common_errors("users.delete"),
                    },
                }
            },
            "/segments/list": {
                "get": {
                    "summary": "List the workspace's segments, 100 per page by creation time",
                    "description": "Each segment with its id, name, tags and whether its analytics "
                                   "tracking is on (only tracked segments can be used as "
                                   "`segment_id` in /sessions/data_series). Permission "
                                   "`segments.list`.",
                    "operationId": "segmentsList",
                    "parameters": [
                        _query("page", {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                               "page number; default 0", False, 0),
                        _query("sort_direction", {"type": "string", "pattern": _ci_pattern("asc", "desc")},
                               "asc or desc, by creation time (case-insensitive); default asc",
                               False, "asc"),
                    ],
                    "responses": {
                        "200": {
                            "description": "one page of segments (empty past the last page)",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                {
                                    "type": "object",
                                    "required": ["segments", "message"],
                                    "properties": {
                                        "message": {"type": "string"},
                                        "segments": {"type": "array", "maxItems": 100, "items": {
                                            "type": "object",
                                            "required": ["id", "name", "analytics_tracking_enabled", "tags"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "name": {"type": "string"},
                                                "analytics_tracking_enabled": {"type": "boolean"},
                                                "tags": {"type": "array", "items": {"type": "string"}},
                                            },
                                        }},
                                    },
                                },
                                first_page=("the first page", {"segments": _SEGMENTS, "message": "success"}),
                            ),
                        },
                        "400": _error("invalid parameter (the message names it)", True,
                                      "'page' must be a non-negative integer"),
                        "414": _TOO_LONG,
                        **_common_errors("segments.list"),
                    },
                }
            },
            "/segments/details": {
                "get": {
                    "summary": "Details of one segment",
                    "description": "Its name, description, tags, times and its filter in words. "
                                   "Permission `segments.details`.",
                    "operationId": "segmentsDetails",
                    "parameters": [
                        _query("segment_id", {"type": "string", "minLength": 1},
                               "a segment of the workspace", True, _PAYING_SEGMENT),
                    ],
                    "responses": {
                        "200": {
                            "description": "the segment",
                            "headers": _RATE_HEADERS,
                            "content": _json_body(
                                {
                                    "type": "object",
                                    "required": ["created_at", "updated_at", "name", "description",
                                                 "text_description", "tags", "message"],
                                    "properties": {
                                        "created_at": {"type": "string", "format": "date-time"},
                                        "updated_at": {"type": "string", "format": "date-time"},
                                        "name": {"type": "string"},
                                        "description": {"type": "string"},
                                        "text_description": {"type": "string",
                                                             "description": "the filter in words"},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                        "message": {"type": "string"},
                                    },
                                },
                                paying=("a segment", {
                                    "created_at": "2026-12-06T23:29:05.757Z",
                                    "updated_at": "2026-12-06T23:29:05.757Z",
                                    "name": "Paying users",
                                    "description": "Users on a paid plan",
                                    "text_description": "plan is one of 'pro', 'team'",
                                    "tags": ["billing"],
                                    "message": "success",
                                }),
                            ),
                        },
                        "400": _error("segment_id missing, repeated, or not a segment of the workspace",
                                      True, "'segment_id' is not a segment of this workspace"),
                        "414": _TOO_LONG,
                        **_common_errors("segments.details"),
                    },
                }
            },
            **_kpi_paths(),
            **_event_paths(),
            **_tracking_paths(),
            "/healthz": {
                "get": {
                    "summary": "Health: 200 when the store answers",
                    "description": "No key needed, not rate limited.",
                    "operationId": "healthz",
                    "security": [],
                    "responses": {
                        "200": {"description": "healthy", "content": _json_body(
                            {"type": "object", "properties": {"status": {"type": "string"},
                                                              "message": {"type": "string"}}},
                            ok=("healthy", {"status": "ok", "message": "success"}),
                        )},
                        "503": _error("store unavailable", False, "Store unavailable"),
                    },
                }
            },
        },
    }


DOCS_HTML = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessiontally API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;border-radius:3px}
code{padding:.1rem .3rem}
pre{padding:.5rem .7rem;overflow-x:auto;font-size:13px;line-height:1.4}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
h4{font-size:.95rem;margin:.8rem 0 .3rem;font-weight:600}
table{border-collapse:collapse;margin:.3rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
.status{font-weight:600}
.muted{color:#666}
.intro{white-space:pre-line}
nav ul{columns:2}
</style></head>
<body><h1>sessiontally API</h1>
<p>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.
Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>.</p>
<div id="paths">Loading&hellip;</div>
<script>
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
// `code` spans of the document's texts, after escaping
const prose = s => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');
const pretty = v => JSON.stringify(v, null, 2);
const shellQuote = s => "'" + String(s).replace(/'/g, "'\\''") + "'";

function render(doc) {
  const resolve = s => {
    for (let i = 0; s && s.$ref && i < 20; i++)
      s = s.$ref.replace(/^#\//, '').split('/').reduce((o, k) => (o || {})[k], doc);
    return s || {};
  };
  const isArray = s => s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'));
  const typeOf = raw => {
    const s = resolve(raw);
    let t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type || (s.properties ? 'object' : 'any'));
    if (isArray(s) && s.items) t = t.replace('array', 'array of ' + typeOf(s.items));
    if (s.format) t += ' (' + s.format + ')';
    return t;
  };
  const limitsOf = raw => {
    const s = resolve(raw), out = [];
    if (s.enum) out.push('one of ' + s.enum.join(', '));
    if (s.minimum !== undefined || s.maximum !== undefined) out.push((s.minimum ?? '') + '..' + (s.maximum ?? ''));
    if (s.minLength !== undefined || s.maxLength !== undefined) out.push((s.minLength ?? 0) + '..' + (s.maxLength ?? '') + ' characters');
    if (s.minItems !== undefined || s.maxItems !== undefined) out.push((s.minItems ?? 0) + '..' + (s.maxItems ?? '') + ' items');
    return out.join('; ');
  };
  // one row per field, nested fields as a.b and a[].b
  const fieldRows = (raw, prefix, rows, depth) => {
    const s = resolve(raw);
    if (depth > 6) return rows;
    if (isArray(s) && s.items) return fieldRows(s.items, prefix + '[]', rows, depth + 1);
    const required = new Set(s.required || []);
    for (const [name, prop] of Object.entries(s.properties || {})) {
      const p = resolve(prop), path = prefix ? prefix + '.' + name : name;
      rows.push([path, typeOf(prop), required.has(name), [limitsOf(prop), p.description].filter(Boolean).join('; ')]);
      const inner = isArray(p) ? resolve(p.items) : p;
      if (inner && inner.properties) fieldRows(p, path, rows, depth + 1);
    }
    if (s.additionalProperties && typeof s.additionalProperties === 'object')
      rows.push([(prefix ? prefix + '.' : '') + '(any other key)', typeOf(s.additionalProperties), false, s.description || '']);
    return rows;
  };
  const fieldsTable = schema => {
    const rows = fieldRows(schema, '', [], 0);
    if (!rows.length) return '';
    return '<table><tr><th>field</th><th>type</th><th>required</th><th>rules</th></tr>' +
      rows.map(([n, t, r, d]) => `<tr><td><code>${esc(n)}</code></td><td>${esc(t)}</td><td>${r ? 'yes' : ''}</td><td>${prose(d)}</td></tr>`).join('') +
      '</table>';
  };
  const examplesOf = media => {
    if (!media) return [];
    if (media.examples) return Object.entries(media.examples).map(([k, e]) => [resolve(e).summary || k, resolve(e).value]);
    if (media.example !== undefined) return [['example', media.example]];
    return [];
  };
  const examplesHtml = media => examplesOf(media).map(([title, value]) =>
    `<p class="muted">${esc(title)}</p><pre>${esc(pretty(value))}</pre>`).join('');
  const curl = (method, path, op) => {
    const query = (op.parameters || []).filter(p => p.in === 'query' && p.required && p.example !== undefined)
      .map(p => encodeURIComponent(p.name) + '=' + encodeURIComponent(p.example)).join('&');
    const parts = [(method === 'get' ? 'curl -s ' : 'curl -s -X ' + method.toUpperCase() + ' ') +
                   shellQuote(location.origin + path + (query ? '?' + query : ''))];
    const security = op.security ?? doc.security ?? [];
    if (security.some(s => 'writeKey' in s)) parts.push('-u "$WRITE_KEY:"');
    else if (security.length > 0) parts.push('-H "Authorization: Bearer $KEY"');
    const body = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
    const first = examplesOf(body)[0];
    if (first) parts.push("-H 'Content-Type: application/json'", '-d ' + shellQuote(JSON.stringify(first[1])));
    return parts.join(' \\\n  ');
  };

  const out = [];
  if (doc.info && doc.info.description) out.push(`<div class="intro">${prose(doc.info.description)}</div>`);
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item)) ops.push([method, path, op]);
  const anchor = (m, p) => (m + p).replace(/[^A-Za-z0-9]+/g, '-');
  out.push('<nav><ul>' + ops.map(([m, p, op]) => `<li><a href="#${anchor(m, p)}"><code>${m.toUpperCase()} ${esc(p)}</code></a> ${esc(op.summary)}</li>`).join('') + '</ul></nav>');
  for (const [method, path, op] of ops) {
    out.push(`<h2 id="${anchor(method, path)}"><code>${method.toUpperCase()} ${esc(path)}</code></h2><p><b>${esc(op.summary)}</b></p>`);
    if (op.description) out.push(`<p>${prose(op.description)}</p>`);
    out.push(`<h3>Try it</h3><pre>${esc(curl(method, path, op))}</pre>`);
    if (op.parameters && op.parameters.length) {
      out.push('<h3>Parameters</h3><table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>description</th><th>example</th></tr>');
      for (const p of op.parameters)
        out.push(`<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${esc([typeOf(p.schema), limitsOf(p.schema)].filter(Boolean).join(', '))}</td><td>${p.required ? 'yes' : ''}</td><td>${prose(p.description)}</td><td>${p.example !== undefined ? '<code>' + esc(p.example) + '</code>' : ''}</td></tr>`);
      out.push('</table>');
    }
    if (op.requestBody) {
      const media = (op.requestBody.content || {})['application/json'];
      out.push(`<h3>Request body</h3><p>${op.requestBody.required ? 'Required. ' : ''}<code>Content-Type: application/json</code>.</p>`);
      if (media) out.push(fieldsTable(media.schema) + '<h4>Examples</h4>' + examplesHtml(media));
    }
    out.push('<h3>Responses</h3>');
    for (const [code, raw] of Object.entries(op.responses).sort(([a], [b]) => a.localeCompare(b))) {
      const r = resolve(raw), media = (r.content || {})['application/json'];
      out.push(`<h4><span class="status">${esc(code)}</span> ${prose(r.description)}</h4>`);
      const headers = Object.keys(r.headers || {});
      if (headers.length) out.push(`<p class="muted">Headers: ${headers.map(h => '<code>' + esc(h) + '</code>').join(', ')}</p>`);
      if (media && code.startsWith('2')) out.push(fieldsTable(media.schema));
      out.push(examplesHtml(media));
    }
  }
  return out.join('\n');
}

fetch('/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('paths').innerHTML = render(doc);
}).catch(err => {
  document.getElementById('paths').textContent = 'Could not load /openapi.json: ' + err;
});
</script></body></html>
"""
