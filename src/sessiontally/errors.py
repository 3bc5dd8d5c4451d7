"""Every error sessiontally raises on purpose, in one tree at the bottom of the package.

The service and the stores raise these; only the HTTP layer turns them into status codes
(``api/errors.py``) and only the CLI turns them into one-line messages. Nothing here knows
of HTTP.

* SessiontallyError           any refusal a caller or operator can be told about
  - InvalidInput              the request or its parameters break a rule (optional ``errors``)
  - Unauthenticated           no valid credentials
    · SignInFailed            a member's e-mail or password is wrong
    · WorkspaceGone           the workspace was deleted while a request to it ran
  - Forbidden                 valid credentials without the permission needed
  - NotFound                  the thing named does not exist (in this workspace)
    · AppGone                 an app of a batch was deleted while the batch was recorded
  - Conflict                  the thing would clash with one that exists
    · DuplicateName           a workspace or other uniquely named thing of that name exists
  - TooLarge                  the request is over a size limit
  - RateLimited               the workspace is over its hourly request limit
  - Unavailable               a dependency cannot be reached now; retrying later may work
    · StoreUnavailable        the database (down, restarting, no pooled connection in time)
    · StoreBusy               the database stayed locked past the wait allowed
    · RateLimiterUnavailable  the rate-limit counters (file or Redis) cannot be reached
    · MissingExtra            an optional dependency (pyproject's extras) is not installed

``WouldBlock`` is not an error: the service raises it when an answer would need a scan,
so that a caller on an event loop retries the call in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SessiontallyError(Exception):
    """A refusal with a message meant for the caller, shown as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SessiontallyError):
    """The request, a parameter or an item breaks a rule of the API (docs/api.md).

    ``errors`` lists per-item problems of a batch (JSON objects), when there are any."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors


class Unauthenticated(SessiontallyError):
    """No credentials, or credentials that admit nobody."""


class SignInFailed(Unauthenticated):
    """A dashboard sign-in whose e-mail or password is wrong (which of the two is not said)."""

    def __init__(self, message: str = "E-mail or password is wrong") -> None:
        super().__init__(message)


class WorkspaceGone(Unauthenticated):
    """The workspace was deleted while a request admitted to it was running: its key no
    longer works, as the next request will find."""

    def __init__(self, message: str = "Invalid API key") -> None:
        super().__init__(message)


class Forbidden(SessiontallyError):
    """Valid credentials that lack the permission the request needs."""


class NotFound(SessiontallyError):
    """The workspace, app, key, segment or user named does not exist."""


class AppGone(NotFound):
    """An app a batch writes to was deleted after the request resolved it (its key or
    write key) and before the batch was recorded: nothing of the batch was recorded."""

    def __init__(self, message: str = "an app of this batch was deleted; nothing was recorded") -> None:
        super().__init__(message)


class Conflict(SessiontallyError):
    """The change would clash with what is stored."""


class DuplicateName(Conflict):
    """A workspace (or other uniquely named thing) of that name already exists."""


class TooLarge(SessiontallyError):
    """The request is over one of the limits in ``limits.py``."""


class RateLimited(SessiontallyError):
    """The workspace has used its requests for this hour; ``reset`` is when it may retry."""

    def __init__(self, message: str, reset: int) -> None:
        super().__init__(message)
        self.reset = reset


class Unavailable(SessiontallyError):
    """A dependency cannot be reached right now; the same request may succeed later."""


class StoreUnavailable(Unavailable):
    """The database is down, restarting, or gave no connection in time."""


class StoreBusy(Unavailable):
    """The database stayed locked by another writer past the wait allowed."""


class RateLimiterUnavailable(Unavailable):
    """The rate-limit counters cannot be reached: the request must not be served uncounted."""


class MissingExtra(Unavailable):
    """A feature needs an optional dependency that is not installed; the message names the
    extra to install (``pip install 'sessiontally[postgres]'``)."""


# The extras of pyproject.toml: the modules each brings, and what they are for.
EXTRAS = {
    "postgres": (frozenset({"psycopg", "psycopg_pool", "psycopg_binary"}), "PostgreSQL"),
    "redis": (frozenset({"redis"}), "Redis"),
}


@contextmanager
def needs_extra(extra: str) -> Iterator[None]:
    """Imports in this block that fail for a module of ``extra`` raise MissingExtra, whose
    one line says what to install (not ``No module named 'psycopg'``)."""
    modules, what = EXTRAS[extra]
    try:
        yield
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in modules:
            raise
        raise MissingExtra(f"{what} support is not installed (no module {missing!r}): "
                           f"pip install 'sessiontally[{extra}]'") from None


class WouldBlock(Exception):
    """The answer needs a scan of raw rows: a caller on an event loop runs it in a thread."""
