"""What every page for people shares: templates, security headers, the member's cookie.

Pages are plain HTML files of this package with ``{{name}}`` placeholders, filled with
HTML-escaped text; the page's behaviour lives in static files, so the Content-Security-
Policy allows no inline script or style at all. The member's session travels in one
cookie, ``HttpOnly`` (scripts never see it), ``SameSite=Lax`` (other sites' forms and
requests don't carry it) and ``Secure`` when the request came over HTTPS.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Literal

from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

SESSION_COOKIE = "sessiontally_session"
SIGN_IN_COOKIE = "sessiontally_sign_in"  # the sign-in form's CSRF token (double submit)
MAX_COOKIE_HEADER = 8192
MAX_TOKEN_LENGTH = 128  # a session token is far shorter; longer values are not looked up

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PRIVATE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}  # pages and data of one member

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_MARKER = re.compile(r"<!--([a-z-]+)-->")


@cache
def template(name: str) -> str:
    return resources.files("sessiontally.api").joinpath(f"templates/{name}").read_text("utf-8")


def render(name: str, values: Mapping[str, str], markup: Mapping[str, str] | None = None) -> str:
    """The template ``name`` with each ``{{key}}`` replaced by ``values[key]``, escaped, and
    each ``<!--key-->`` by ``markup[key]``: HTML the server wrote, never a request's text
    (markers left over vanish with their comment)."""
    text = _PLACEHOLDER.sub(lambda match: html.escape(values[match.group(1)]), template(name))
    return _MARKER.sub(lambda match: (markup or {}).get(match.group(1), ""), text)


def page(name: str, values: Mapping[str, str], status: int = 200,
         headers: Mapping[str, str] | None = None, markup: Mapping[str, str] | None = None) -> Response:
    return HTMLResponse(render(name, values, markup), status, {**PRIVATE, **(headers or {})})


def cookie(scope: Scope, name: str) -> str | None:
    """The value of the cookie ``name`` the request carries: the first, if repeated (in
    the order of the ``Cookie`` headers and of the pairs within one).

    Split on ``;`` leniently, as browsers write and as Django's ``parse_cookie`` reads: a
    malformed pair (an unterminated quote, a name without ``=``) is skipped, never the
    rest of the header with it. A header over MAX_COOKIE_HEADER bytes is ignored."""
    for header, value in scope["headers"]:
        if header != b"cookie" or len(value) > MAX_COOKIE_HEADER:
            continue
        text: str = value.decode("latin-1")
        for chunk in text.split(";"):
            key, equals, found = chunk.partition("=")
            if equals and key.strip() == name:
                found = found.strip()
                if len(found) >= 2 and found[0] == found[-1] == '"':
                    found = found[1:-1]
                return found
    return None


def is_https(scope: Scope) -> bool:
    # Behind a proxy that ends TLS, uvicorn takes the scheme from X-Forwarded-Proto
    # (from the addresses in FORWARDED_ALLOW_IPS).
    return scope.get("scheme") == "https"


def set_cookie(response: Response, scope: Scope, name: str, value: str, max_age: int,
               path: str = "/", same_site: Literal["lax", "strict"] = "lax") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite=same_site, secure=is_https(scope))


def clear_cookie(response: Response, scope: Scope, name: str, path: str = "/") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=is_https(scope))


def session_token(scope: Scope) -> str | None:
    token = cookie(scope, SESSION_COOKIE)
    return token if token and len(token) <= MAX_TOKEN_LENGTH else None
