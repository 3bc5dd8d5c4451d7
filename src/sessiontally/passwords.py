"""Members' passwords: argon2id hashes, the rules a chosen password follows, and generated
passwords. Pure apart from the hasher's cost: no store, no HTTP."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
GENERATED_BYTES = 15  # 20 URL-safe characters, 120 bits

# argon2id with the library's defaults: RFC 9106's low-memory profile (64 MiB, t=3, p=4).
PRODUCTION = PasswordHasher()
_hasher = PRODUCTION
_dummy_hash: str | None = None  # of no one's password, made by _hasher on first use


def use_fast_hashing_for_tests() -> None:
    """Hash with the cheapest argon2id parameters from now on (tests only: a hash then
    costs microseconds instead of tens of milliseconds). Hashes made before still verify,
    since each names its own parameters."""
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    _dummy_hash = None


def hash_password(password: str) -> str:
    """The PHC string (``$argon2id$v=19$m=...``) of ``password``, with a new random salt."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; False, never an error, for
    a wrong password or a stored value that is no argon2 hash."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError, ValueError):
        return False


def spend_verify_time(password: str) -> None:
    """Verify ``password`` against a hash of no one's password: the time a known e-mail's
    check takes, spent when the e-mail is unknown so that timing does not tell which."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(GENERATED_BYTES))
    verify_password(_dummy_hash, password)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with parameters other than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def generate_password() -> str:
    """A random password of 20 URL-safe characters (it passes check_password_rules)."""
    return secrets.token_urlsafe(GENERATED_BYTES)


def check_password_rules(password: str) -> None:
    """InvalidInput unless ``password`` has 10 to 1024 characters, is not all whitespace and
    is valid Unicode text."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password must have at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise InvalidInput("a password must not be all whitespace")
    try:
        password.encode()
    except UnicodeEncodeError:  # a lone surrogate (from undecodable bytes): hashes as nothing
        raise InvalidInput("a password must be valid Unicode text") from None
