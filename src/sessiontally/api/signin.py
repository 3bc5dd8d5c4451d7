"""``/sign-in`` and ``/sign-out``: how a member starts and ends a dashboard session.

Both forms are protected against cross-site requests twice: the browser must send the
form's token (the sign-in form's is kept in a short-lived cookie of its own, the
sign-out form's is derived from the session), and a request whose ``Origin`` names
another site is refused outright. Refusals are pages, never tracebacks.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import members
from ..errors import RateLimited, SessiontallyError, Unauthenticated, Unavailable
from ..service import Service
from .http import BodyTooLarge, read_body
from .pages import (
    PRIVATE,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    clear_cookie,
    cookie,
    page,
    session_token,
    set_cookie,
)

log = logging.getLogger("sessiontally.api")

MAX_FORM_BYTES = 8192
SIGN_IN_FORM_SECONDS = 3600  # how long a sign-in form stays usable
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
EXPIRED_FORM = "This form has expired. Please sign in again."


async def sign_in_form(request: Request) -> Response:
    """``GET /sign-in``: the form, or the dashboard for a member already signed in."""
    service: Service = request.app.state.service
    token = session_token(request.scope)
    already = token is not None and await run_in_threadpool(_signed_in, service, token)
    if already:
        return RedirectResponse("/", 303, PRIVATE)
    return _form(request, "")


async def sign_in(request: Request) -> Response:
    """``POST /sign-in``: check the form, count the attempt, verify the password."""
    form = await _form_fields(request)
    if form is None:
        return _form(request, "The sign-in form could not be read. Please try again.", 400)
    expected = cookie(request.scope, SIGN_IN_COOKIE)
    if not expected or not _same(expected, form.get("csrf_token", "")) or not _same_origin(request):
        return _form(request, EXPIRED_FORM, 403)
    service: Service = request.app.state.service
    client = request.client.host if request.client else None
    try:
        signed = await run_in_threadpool(
            _sign_in, service, form.get("email", ""), form.get("password", ""), client)
    except RateLimited as exc:
        retry = str(max(1, exc.reset - int(time.time())))
        return _form(request, exc.message, 429, {"Retry-After": retry})
    except Unauthenticated as exc:
        return _form(request, exc.message, 401)
    except Unavailable:
        return _form(request, "The service is unavailable; try again shortly.", 503, {"Retry-After": "1"})
    except SessiontallyError as exc:  # an e-mail that cannot be one, say
        return _form(request, exc.message, 400)
    response = RedirectResponse("/", 303, PRIVATE)
    set_cookie(response, request.scope, SESSION_COOKIE, signed.token, members.SESSION_SECONDS)
    clear_cookie(response, request.scope, SIGN_IN_COOKIE, path="/sign-in")
    log.info("member %d of workspace %d signed in", signed.member.member_id,
             signed.workspace.workspace_id)
    return response


async def sign_out(request: Request) -> Response:
    """``POST /sign-out``: end the session (its token must come with the form)."""
    token = session_token(request.scope)
    form = await _form_fields(request)
    if token and (form is None or not members.csrf_matches(token, form.get("csrf_token", ""))
                  or not _same_origin(request)):
        return _form(request, EXPIRED_FORM, 403)
    if token:
        service: Service = request.app.state.service
        await run_in_threadpool(members.sign_out, service.store, token)
    response = RedirectResponse("/sign-in", 303, PRIVATE)
    clear_cookie(response, request.scope, SESSION_COOKIE)
    return response


def _signed_in(service: Service, token: str) -> bool:
    service.ensure_migrated()
    return members.signed_in(service.store, token, time.time()) is not None


def _sign_in(service: Service, email: str, password: str, client: str | None) -> members.SignedIn:
    service.ensure_migrated()
    return members.sign_in(service.store, email, password, client, time.time())


def _form(request: Request, message: str, status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    """The sign-in page with a fresh form token (in the form and in its cookie)."""
    token = secrets.token_urlsafe(32)
    response = page("sign_in.html", {"csrf_token": token, "message": message}, status, headers)
    set_cookie(response, request.scope, SIGN_IN_COOKIE, token, SIGN_IN_FORM_SECONDS,
               path="/sign-in", same_site="strict")
    return response


async def _form_fields(request: Request) -> dict[str, str] | None:
    """The fields of an URL-encoded form (the first of each name), or None when the body
    is not one or is over MAX_FORM_BYTES."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM_MEDIA_TYPE:
        return None
    try:
        raw = await read_body(request, MAX_FORM_BYTES)
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (BodyTooLarge, UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _same(expected: str, presented: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def _same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (when the browser sent one) is this site: the
    ``Host`` it was sent to, or the ``X-Forwarded-Host`` a reverse proxy that rewrites
    ``Host`` (nginx's default ``proxy_set_header Host $proxy_host``) passes on.

    Believing ``X-Forwarded-Host`` keeps the protection: a form or a ``fetch`` of another
    site cannot set that header (it is not a CORS-safelisted one, so a cross-site request
    carrying it needs a preflight this service never grants), and a program that can set
    it can set ``Origin`` too; a forged cross-site post therefore still names another site
    in ``Origin`` and nothing it controls among the hosts."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    hosts = [request.headers.get("host", "")]
    hosts += [h.strip() for h in request.headers.get("x-forwarded-host", "").split(",")]
    return any(origin in (f"http://{host}", f"https://{host}") for host in hosts if host)
