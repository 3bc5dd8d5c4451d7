"""The OpenAPI 3.1 document of the API, and a dependency-free /docs page that renders it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import __version__, limits

_MESSAGE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
_RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("X-RateLimit-Limit", "requests allowed per UTC clock hour for the workspace"),
        ("X-RateLimit-Remaining", "requests left in the current window"),
        ("X-RateLimit-Reset", "UTC epoch seconds of the next full hour"),
    )
}


def _error(description: str, with_rate_headers: bool = True) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
    }
    if with_rate_headers:
        response["headers"] = _RATE_HEADERS
    return response


def _common_errors() -> dict[str, Any]:
    return {
        "401": _error("missing, unknown or revoked key, or address not allowed", False),
        "403": _error("the key lacks the endpoint's permission"),
        "429": _error("over the workspace's hourly rate limit"),
        "503": _error("rate limiter unavailable", False),
    }


# Identifiers never hold NUL (PostgreSQL text cannot store it; refused on every engine).
_NO_NUL = "^[^\\u0000]*$"
# Query values the service refuses when empty, over series_query.MAX_VALUE_LENGTH or with NUL.
_NON_EMPTY = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": _NO_NUL}


def _ci_pattern(*words: str) -> str:
    """A pattern matching any of ``words`` in any letter case (the parameters compare
    case-insensitively; an ``enum`` would claim that ``DAY`` is refused)."""
    return "^(" + "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in w) for w in words) + ")$"


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


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
            "description": "Session analytics with a Braze-compatible sessions-by-time export.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "api_key": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
            "schemas": {
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
                                        "maxLength": limits.MAX_EXTERNAL_ID_LENGTH},
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
                                       "maxLength": limits.MAX_SESSION_ID_LENGTH},
                        "external_id": {"type": "string", "minLength": 1, "pattern": _NO_NUL,
                                        "maxLength": limits.MAX_EXTERNAL_ID_LENGTH},
                        "app_id": {"type": "string", "minLength": 1, "pattern": _NO_NUL,
                                   "maxLength": limits.MAX_APP_ID_LENGTH},
                        "started_at": {"type": "string", "format": "date-time"},
                        "ended_at": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            },
        },
        "security": [{"bearer": []}, {"api_key": []}],
        "paths": {
            "/sessions/data_series": {
                "get": {
                    "summary": "Export app sessions by time",
                    "operationId": "sessionsDataSeries",
                    "parameters": [
                        _query("length", {"type": "integer", "minimum": 1, "maximum": 100},
                               "number of buckets, ending with the one containing ending_at", True),
                        _query("unit", {"type": "string", "pattern": _ci_pattern("day", "hour")},
                               "bucket size, day or hour (case-insensitive); default day"),
                        _query("ending_at", {"type": "string", "minLength": 10, "maxLength": 64},
                               "ISO-8601 date or datetime; default now; without offset it is "
                               "wall time in the bucketing zone"),
                        _query("app_id", _NON_EMPTY, "an app of the workspace"),
                        _query("segment_id", _NON_EMPTY,
                               "a segment of the workspace with analytics tracking on"),
                        _query("time_zone", _NON_EMPTY,
                               "extension: IANA zone overriding the workspace zone"),
                    ],
                    "responses": {
                        "200": {
                            "description": "the series, oldest first",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "required": ["data", "message"],
                                "properties": {
                                    "message": {"type": "string"},
                                    "data": {"type": "array", "items": {
                                        "type": "object",
                                        "required": ["time", "sessions"],
                                        "properties": {"time": {"type": "string"},
                                                       "sessions": {"type": "integer"}},
                                    }},
                                },
                            }}},
                        },
                        "400": _error("invalid parameter (the message names it)"),
                        "414": _error("query string too long", False),
                        **_common_errors(),
                    },
                }
            },
            "/sessions/track": {
                "post": {
                    "summary": "Record sessions (1 to 10,000 per request)",
                    "operationId": "sessionsTrack",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["sessions"],
                        "properties": {"sessions": {
                            "type": "array", "minItems": 1,
                            "maxItems": limits.MAX_SESSIONS_PER_REQUEST,
                            "items": {"$ref": "#/components/schemas/Session"},
                        }},
                    }}}},
                    "responses": {
                        "201": {
                            "description": "recorded; duplicates counted once",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "required": ["message", "sessions_processed", "duplicates"],
                                "properties": {
                                    "message": {"type": "string"},
                                    "sessions_processed": {"type": "integer"},
                                    "duplicates": {"type": "integer"},
                                    "errors": {"type": "array",
                                               "items": {"$ref": "#/components/schemas/ItemError"}},
                                },
                            }}},
                        },
                        "400": {
                            "description": "body of the wrong shape, or no valid item",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
                                "type": "object", "required": ["message"],
                                "properties": {"message": {"type": "string"}, "errors": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/ItemError"}}},
                            }}},
                        },
                        "413": _error("body over 16 MiB", False),
                        "415": _error("Content-Type is not application/json"),
                        "414": _error("query string too long", False),
                        **_common_errors(),
                    },
                }
            },
            "/users/track": {
                "post": {
                    "summary": "Set or remove user attributes (the attributes part of Braze's endpoint)",
                    "operationId": "usersTrack",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object",
                        # at least one object in some part (an empty body is a 400)
                        "anyOf": [
                            {"required": [part], "properties": {part: {"minItems": 1}}}
                            for part in ("attributes", "events", "purchases")
                        ],
                        "properties": {
                            "attributes": {"type": "array", "maxItems": 75,
                                           "items": {"$ref": "#/components/schemas/UserAttributes"}},
                            "events": {"type": "array", "maxItems": 75,
                                       "description": "not supported: each object is refused in errors"},
                            "purchases": {"type": "array", "maxItems": 75,
                                          "description": "not supported: each object is refused in errors"},
                        },
                    }}}},
                    "responses": {
                        "201": {
                            "description": "attributes applied in order (the last write wins)",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "required": ["message", "attributes_processed"],
                                "properties": {
                                    "message": {"type": "string"},
                                    "attributes_processed": {"type": "integer"},
                                    "errors": {"type": "array",
                                               "items": {"$ref": "#/components/schemas/UserItemError"}},
                                },
                            }}},
                        },
                        "400": {
                            "description": "body of the wrong shape or not JSON, or nothing valid in it",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
                                "type": "object", "required": ["message"],
                                "properties": {"message": {"type": "string"}, "errors": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/UserItemError"}}},
                            }}},
                        },
                        "413": _error("body over 16 MiB", False),
                        "415": _error("Content-Type is not application/json"),
                        "414": _error("query string too long", False),
                        **_common_errors(),
                    },
                }
            },
            "/segments/list": {
                "get": {
                    "summary": "List the workspace's segments, 100 per page by creation time",
                    "operationId": "segmentsList",
                    "parameters": [
                        _query("page", {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                               "page number; default 0"),
                        _query("sort_direction", {"type": "string", "pattern": _ci_pattern("asc", "desc")},
                               "asc or desc, by creation time (case-insensitive); default asc"),
                    ],
                    "responses": {
                        "200": {
                            "description": "one page of segments (empty past the last page)",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
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
                            }}},
                        },
                        "400": _error("invalid parameter (the message names it)"),
                        "414": _error("query string too long", False),
                        **_common_errors(),
                    },
                }
            },
            "/segments/details": {
                "get": {
                    "summary": "Details of one segment",
                    "operationId": "segmentsDetails",
                    "parameters": [
                        _query("segment_id", {"type": "string", "minLength": 1},
                               "a segment of the workspace", True),
                    ],
                    "responses": {
                        "200": {
                            "description": "the segment",
                            "headers": _RATE_HEADERS,
                            "content": {"application/json": {"schema": {
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
                            }}},
                        },
                        "400": _error("segment_id missing, repeated, or not a segment of the workspace"),
                        "414": _error("query string too long", False),
                        **_common_errors(),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Health: 200 when the store answers",
                    "operationId": "healthz",
                    "security": [],
                    "responses": {
                        "200": {"description": "healthy", "content": {"application/json": {
                            "schema": {"type": "object"}}}},
                        "503": _error("store unavailable", False),
                    },
                }
            },
        },
    }


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessiontally API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
</style></head>
<body><h1>sessiontally API</h1>
<p>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.
Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>.</p>
<div id="paths">Loading&hellip;</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const out = [];
  const esc = s => String(s ?? '').replace(/[&<>]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      out.push(`<h2><code>${method.toUpperCase()} ${esc(path)}</code></h2><p>${esc(op.summary)}</p>`);
      if (op.parameters) {
        out.push('<table><tr><th>parameter</th><th>required</th><th>description</th></tr>');
        for (const p of op.parameters)
          out.push(`<tr><td><code>${esc(p.name)}</code></td><td>${p.required ? 'yes' : ''}</td><td>${esc(p.description)}</td></tr>`);
        out.push('</table>');
      }
      out.push('<p>Responses: ' + Object.entries(op.responses).map(([c, r]) => `<b>${c}</b> ${esc(r.description)}`).join('; ') + '</p>');
    }
  }
  document.getElementById('paths').innerHTML = out.join('\\n');
});
</script></body></html>
"""
