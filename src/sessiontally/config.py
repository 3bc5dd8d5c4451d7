"""Every setting of sessiontally, declared once.

A ``Setting`` names its field of ``Settings``, its environment variable and command-line
flag (either may be absent), its default, how its text is read and its help. The CLI
builds its options from these declarations, ``Settings.from_env`` reads them, and
docs/operations.md's configuration table is checked against them (tests/test_config.py).

Precedence: a value given explicitly (a CLI flag) wins over the environment, which wins
over the default. An empty value, given or in the environment, counts as not set. A value
that cannot be read is a ``ValueError`` whose message is one line naming the variable or
flag and the value.

This module imports nothing else of the package: every layer may depend on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One setting: where it comes from, its default, and how its text is read."""

    name: str  # the field of Settings
    default: T
    parse: Callable[[str], T]  # raises ValueError("must be ...") for text it cannot read
    help: str
    env: str | None = None  # environment variable
    flag: str | None = None  # command-line option
    every_command: bool = False  # the flag is on every command; otherwise on ``serve`` only
    shown_default: str | None = None  # the default as help and docs state it
    metavar: str | None = None  # the flag's value in usage and help

    @property
    def default_text(self) -> str:
        """The default as the CLI help and the docs show it."""
        return self.shown_default if self.shown_default is not None else str(self.default)

    def read(self, raw: str, source: str) -> T:
        """``raw`` read as this setting's value; ``source`` (the variable or flag it came
        from) names it in the error."""
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{source} {exc} (got {raw!r})") from None

    def value(self, environ: Mapping[str, str], given: T | None = None) -> T:
        """The value in force: ``given`` (already read, e.g. a CLI flag) unless None or
        empty, else the environment variable unless unset or empty, else the default."""
        if given is not None and given != "":
            return given
        raw = environ.get(self.env) if self.env else None
        if raw:
            return self.read(raw, self.env or self.name)
        return self.default


# ---------------------------------------------------------------------------- parsers


def _text(raw: str) -> str:
    return raw


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    reason = "must be a whole number" if high is None else f"must be a whole number from {low} to {high}"

    def parse(raw: str) -> int:
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(reason)
        number = int(raw)
        if number < low or (high is not None and number > high):
            raise ValueError(reason)
        return number

    return parse


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _redis_prefix(raw: str) -> str:
    if len(raw) > 100 or not raw.isprintable() or " " in raw:
        raise ValueError("must be at most 100 printable characters without spaces")
    return raw


ON = ("on", "true", "yes", "1")
OFF = ("off", "false", "no", "0")


def _on_off(raw: str) -> bool:
    if raw.lower() in ON:
        return True
    if raw.lower() in OFF:
        return False
    raise ValueError("must be on or off")


# ----------------------------------------------------------------------- declarations


DATABASE: Setting[str] = Setting(
    "database", "sessiontally.sqlite3", _text,
    "Store URL: a SQLite path, sqlite:///PATH or postgresql://...",
    env="SESSIONTALLY_DATABASE", flag="--database", every_command=True,
    shown_default="./sessiontally.sqlite3", metavar="URL",
)
HOST: Setting[str] = Setting(
    "host", "127.0.0.1", _text, "Address to listen on.", flag="--host", metavar="HOST",
)
PORT: Setting[int] = Setting(
    "port", 8000, _whole_number(1, 65535), "Port to listen on.", flag="--port", metavar="PORT",
)
WORKERS: Setting[int] = Setting(
    "workers", 1, _whole_number(1, 64), "Worker processes.", flag="--workers", metavar="N",
)
FORWARDED_ALLOW_IPS: Setting[str | None] = Setting(
    "forwarded_allow_ips", None, _text,
    "Comma-separated addresses of reverse proxies whose X-Forwarded-For is trusted for the "
    "client address (IP allowlists).",
    env="SESSIONTALLY_FORWARDED_ALLOW_IPS", flag="--forwarded-allow-ips",
    shown_default="none", metavar="IPS",
)
REDIS_URL: Setting[str | None] = Setting(
    "redis_url", None, _text,
    "Redis for the rate-limit counters; unset = counters in the store.",
    env="SESSIONTALLY_REDIS_URL", shown_default="unset",
)
REDIS_PREFIX: Setting[str] = Setting(
    "redis_prefix", "sessiontally:", _redis_prefix,
    "Prefix of every Redis key, so that several deployments can share one Redis.",
    env="SESSIONTALLY_REDIS_PREFIX",
)
METRICS: Setting[bool] = Setting(
    "metrics", True, _on_off,
    "Serve GET /metrics (Prometheus text format, no key; off = 404).",
    env="SESSIONTALLY_METRICS", shown_default="on",
)
LOG_LEVEL: Setting[str] = Setting(
    "log_level", "INFO", _log_level,
    "Level of the service's log; WARNING silences the per-request access log.",
    env="SESSIONTALLY_LOG_LEVEL",
)
READ_CACHE: Setting[int] = Setting(
    "read_cache", 512, _whole_number(0),
    "Read answers the embedded store keeps per connection while the database is unchanged; "
    "0 turns the cache off.",
    env="SESSIONTALLY_READ_CACHE",
)

SETTINGS: tuple[Setting[Any], ...] = (
    DATABASE, HOST, PORT, WORKERS, FORWARDED_ALLOW_IPS, REDIS_URL, REDIS_PREFIX, METRICS, LOG_LEVEL,
    READ_CACHE,
)


# -------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings of one run, one field per declaration in SETTINGS (same order).
    Frozen and picklable: ``serve`` hands it to each worker process."""

    database: str = DATABASE.default
    host: str = HOST.default
    port: int = PORT.default
    workers: int = WORKERS.default
    forwarded_allow_ips: str | None = FORWARDED_ALLOW_IPS.default
    redis_url: str | None = REDIS_URL.default
    redis_prefix: str = REDIS_PREFIX.default
    metrics: bool = METRICS.default
    log_level: str = LOG_LEVEL.default
    read_cache: int = READ_CACHE.default  # read answers kept per connection; 0 = off

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
        """The settings in force: each ``given`` value (already read; None = not given),
        else ``environ`` (default ``os.environ``), else the declared default."""
        unknown = set(given) - {setting.name for setting in SETTINGS}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        source = os.environ if environ is None else environ
        return cls(**{setting.name: setting.value(source, given.get(setting.name))
                      for setting in SETTINGS})


def redacted_url(url: str) -> str:
    """``url`` without its password (or user and password), for banners and messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def sqlite_file(database: str) -> str | None:
    """The file a ``database`` value names for the embedded store (a plain path, or
    ``sqlite:///PATH``); None for a PostgreSQL URL."""
    if database.startswith(POSTGRES_SCHEMES):
        return None
    if database.startswith(SQLITE_SCHEME):
        return database[len(SQLITE_SCHEME):]
    return database

