"""Dashboard members (CONTRACT section 13): operators add, list, remove them and reset
their passwords; members sign in (throttled per e-mail and per address), hold a session
token, and sign out. A member sees only its workspace.

A session token is ``<workspace_id>.<secret>``: the workspace id routes its lookup to one
shard on Citus, and only its SHA-256 is stored. The CSRF token of a session is derived
from its token, so nothing more is stored for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import time
from typing import NamedTuple

from . import passwords
from .errors import DuplicateName, InvalidInput, NotFound, RateLimited, SignInFailed
from .store.base import Member, Store, Workspace

SESSION_SECONDS = 7 * 86400
SIGN_IN_WINDOW_S = 900
MAX_ATTEMPTS_PER_EMAIL = 10
MAX_ATTEMPTS_PER_ADDRESS = 50
MAX_EMAIL_LENGTH = 254
EXAMPLE_EMAIL = "name@example.com"
MAX_TOKEN_LENGTH = 80
_MAX_MEMBER_ID_DIGITS = 18  # within a signed 64-bit integer
_TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{43})")  # token_urlsafe(32): 43 characters


class SignedIn(NamedTuple):
    member: Member
    workspace: Workspace
    token: str  # the session token (the cookie's value)
    expires_at: int  # seconds since the epoch


# ------------------------------------------------------------------------- e-mails


def normalise_email(text: str) -> str:
    """The e-mail as stored: trimmed, in lower case, shaped like ``local@domain`` with no
    spaces or control characters, at most MAX_EMAIL_LENGTH characters."""
    email = text.strip().lower()
    local, at, domain = email.rpartition("@")
    if (not at or not local or not domain or "@" in local or len(email) > MAX_EMAIL_LENGTH
            or any(c.isspace() or not c.isprintable() for c in email)
            or domain.startswith(".") or domain.endswith(".")):
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidInput(f"an e-mail must look like {EXAMPLE_EMAIL}, at most {MAX_EMAIL_LENGTH}"
                           f" characters without spaces (got {shown!r})")
    return email


# ----------------------------------------------------------------- operators' use cases


def add_member(
    store: Store, workspace: Workspace, email: str, password: str | None = None,
    now: float | None = None,
) -> tuple[Member, str]:
    """Add a member to ``workspace``; return it and its password (generated when None)."""
    email = normalise_email(email)
    password = _new_password(password)
    now_us = _us(now)
    try:
        member = store.add_member(workspace.workspace_id, email, passwords.hash_password(password), now_us)
    except DuplicateName:  # of any workspace: which one is not said
        raise DuplicateName(f"a member with e-mail {email!r} already exists") from None
    return member, password


def list_members(store: Store, workspace: Workspace) -> list[Member]:
    return store.list_members(workspace.workspace_id)


def resolve_member(store: Store, workspace: Workspace, ref: str) -> Member:
    """A member of ``workspace`` by e-mail or by numeric id; NotFound otherwise (a member
    of another workspace too)."""
    ref = ref.strip()
    found: Member | None = None
    if ref.isascii() and ref.isdigit():
        if len(ref) <= _MAX_MEMBER_ID_DIGITS:
            found = store.get_member(workspace.workspace_id, int(ref))
    else:
        try:
            email = normalise_email(ref)
        except InvalidInput:
            email = None
        found = store.find_member(email) if email else None
    if found is None or found.workspace_id != workspace.workspace_id:
        raise NotFound(f"no member {ref!r} in workspace {workspace.name!r}")
    return found


def remove_member(store: Store, workspace: Workspace, ref: str) -> Member:
    """Remove the member and end its sessions; return it."""
    member = resolve_member(store, workspace, ref)
    if not store.remove_member(workspace.workspace_id, member.member_id):
        raise NotFound(f"no member {ref!r} in workspace {workspace.name!r}")
    return member


def reset_password(
    store: Store, workspace: Workspace, ref: str, password: str | None = None,
    now: float | None = None,
) -> str:
    """Give the member a new password (generated when None) and end every session of it;
    return the password."""
    member = resolve_member(store, workspace, ref)
    password = _new_password(password)
    if not store.set_member_password(workspace.workspace_id, member.member_id,
                                     passwords.hash_password(password), _us(now)):
        raise NotFound(f"no member {ref!r} in workspace {workspace.name!r}")
    return password


def _new_password(password: str | None) -> str:
    if password is None:
        return passwords.generate_password()
    passwords.check_password_rules(password)
    return password


def _us(now: float | None) -> int:
    return int((time.time() if now is None else now) * 1_000_000)


# ---------------------------------------------------------------- signing in and out


def sign_in(store: Store, email: str, password: str, client_ip: str | None, now: float) -> SignedIn:
    """A new session for the member whose e-mail and password these are.

    The attempt is counted first, per client address (``address_key``) and then per
    e-mail, in SIGN_IN_WINDOW_S windows: over a limit, RateLimited, and the password is
    not even checked (nor, over the address's limit, the e-mail counted). An unknown
    e-mail costs the time of a known one (a verification against a dummy hash), so that
    timing does not tell which e-mails are members; either way SignInFailed."""
    try:
        normalised: str | None = normalise_email(email)
    except InvalidInput:
        normalised = None
    window = _window(now)
    # The address first: over its limit, the e-mail's key is not even counted, so that one
    # client trying fresh e-mails adds at most MAX_ATTEMPTS_PER_ADDRESS + 1 rows a window.
    if client_ip:
        _count(store, address_key(client_ip), MAX_ATTEMPTS_PER_ADDRESS, window, now)
    given = (normalised or email.strip().lower()).encode("utf-8", "surrogatepass")
    _count(store, "email:" + hashlib.sha256(given).hexdigest(), MAX_ATTEMPTS_PER_EMAIL, window, now)
    member = store.find_member(normalised) if normalised else None
    if member is None or len(password) > passwords.MAX_PASSWORD_LENGTH:
        passwords.spend_verify_time(password[:passwords.MAX_PASSWORD_LENGTH])
        raise SignInFailed()
    if not passwords.verify_password(member.password_hash, password):
        raise SignInFailed()
    workspace = store.get_workspace(member.workspace_id)
    if workspace is None:
        raise SignInFailed()
    if passwords.needs_rehash(member.password_hash):
        # The parameters changed since it was hashed; the password did not, so the
        # member's other sessions stay.
        rehashed = passwords.hash_password(password)
        store.set_member_password(member.workspace_id, member.member_id, rehashed, _us(now),
                                  end_sessions=False)
        member = dataclasses.replace(member, password_hash=rehashed)
    token = f"{member.workspace_id}.{secrets.token_urlsafe(32)}"
    now_s, expires_at = int(now), int(now) + SESSION_SECONDS
    store.start_member_session(member.workspace_id, member.member_id, _token_hash(token), now_s, expires_at)
    member = dataclasses.replace(member, last_sign_in_at=now_s * 1_000_000)
    return SignedIn(member, workspace, token, expires_at)


def address_key(client_ip: str) -> str:
    """The throttle key of a client address: an IPv6 address counts for its /64 (what one
    subscriber usually holds, so that rotating through it gains nothing), an IPv4-mapped
    IPv6 address as its IPv4 address; anything else (not an IP address) as given."""
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0])  # no zone id
    except ValueError:
        return "ip:" + client_ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((int(address) >> 64 << 64, 64))}"
    return f"ip:{address}"


def purge_sign_in_attempts(store: Store, now: float) -> int:
    """Delete the sign-in counts of every window before the current one (the maintenance
    job's); how many rows went."""
    return store.purge_sign_in_attempts(_window(now))


def _window(now: float) -> int:
    return int(now) - int(now) % SIGN_IN_WINDOW_S


def _count(store: Store, key: str, limit: int, window: int, now: float) -> None:
    """Count one attempt for ``key``; RateLimited when that puts it over ``limit``."""
    (count,) = store.count_sign_in_attempts([key], window)
    if count > limit:
        retry_at = window + SIGN_IN_WINDOW_S
        minutes = max(1, math.ceil((retry_at - now) / 60))
        raise RateLimited(f"Too many sign-in attempts; try again in {minutes} "
                          f"minute{'s' if minutes != 1 else ''}", retry_at)


def signed_in(store: Store, token: str | None, now: float) -> SignedIn | None:
    """The session a token stands for; None when there is none (also for any malformed
    token, of any length: it never raises on what a browser sends)."""
    workspace_id = _token_workspace(token)
    if workspace_id is None or token is None:
        return None
    found = store.member_session_expiry(workspace_id, _token_hash(token), int(now))
    if found is None:
        return None
    member, expires_at = found
    workspace = store.get_workspace(workspace_id)
    if workspace is None or member.workspace_id != workspace_id:
        return None
    return SignedIn(member, workspace, token, expires_at)


def sign_out(store: Store, token: str | None) -> None:
    """End the session (nothing for an unknown or malformed token)."""
    workspace_id = _token_workspace(token)
    if workspace_id is not None and token is not None:
        store.end_member_session(workspace_id, _token_hash(token))


def _token_workspace(token: str | None) -> int | None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    return int(match.group(1)) if match else None


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# ----------------------------------------------------------------------------- CSRF


def csrf_token(token: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 keyed by its session token (only the
    session's holder can know it; nothing more is stored)."""
    return hmac.new(token.encode("utf-8", "surrogatepass"), b"csrf", hashlib.sha256).hexdigest()


def csrf_matches(token: str | None, presented: str | None) -> bool:
    """Whether ``presented`` is the CSRF token of the session ``token`` (in constant time)."""
    if not token or not presented or len(presented) > 128:
        return False
    return hmac.compare_digest(csrf_token(token).encode(), presented.encode("utf-8", "surrogatepass"))
