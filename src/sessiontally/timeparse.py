"""Lenient ISO-8601 parsing for the forms docs/api.md lists. Pure.

``ending_at`` accepts a date, or a datetime with ``T`` or a space, optional seconds and
fractional seconds, and an optional offset: ``Z``, ``+05:30``, ``+0530``, ``+05``,
``-5:00`` (one-digit hour, as in Braze's own docs) or `` 05:30`` (a ``+`` that an
unencoded query string turned into a space). Without an offset the value is wall time in
the bucketing zone; the caller decides the zone, so a naive datetime is returned.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

_PATTERN = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:
        [Tt\ ]
        (?P<hour>\d{2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
        (?P<offset>
            [Zz]
          | \ ?[+\-\ ](?:\d{2}:?\d{2}|\d:\d{2}|\d{1,2})  # not +123: a 1-digit hour needs ':'
        )?
    )?
    """,
    re.VERBOSE | re.ASCII,
)

_OFFSET = re.compile(r"\ ?(?P<sign>[+\- ])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?", re.ASCII)

MAX_TEXT_LENGTH = 64


class TimeParseError(ValueError):
    """The text is not one of the accepted ISO-8601 forms (the message says why)."""


def parse_timestamp(text: str) -> datetime:
    """Parse a date or datetime; aware if it carried an offset, naive (wall time) if not.

    A bare date is midnight wall time.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise TimeParseError("is too long to be an ISO-8601 date or datetime")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise TimeParseError(
            "is not an ISO-8601 date or datetime (e.g. 2025-06-01 or 2025-06-01T12:00:00Z)"
        )
    parts = match.groupdict()
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError as exc:
        raise TimeParseError(f"is not a valid calendar date ({exc})") from None
    if parts["hour"] is None:
        return datetime(day.year, day.month, day.day)
    hour, minute = int(parts["hour"]), int(parts["minute"])
    second = int(parts["second"] or 0)
    if hour > 23 or minute > 59:
        raise TimeParseError("has an hour or minute out of range")
    if second > 59:
        raise TimeParseError("has a second out of range (leap seconds are not supported)")
    fraction = parts["fraction"] or ""
    microsecond = int((fraction + "000000")[:6]) if fraction else 0
    tzinfo = _parse_offset(parts["offset"]) if parts["offset"] else None
    return datetime(day.year, day.month, day.day, hour, minute, second, microsecond, tzinfo)


def parse_instant(text: str) -> datetime:
    """Parse a datetime that must carry an offset (recorded session times)."""
    value = parse_timestamp(text)
    if value.tzinfo is None:
        raise TimeParseError("must be an ISO-8601 datetime with an offset (e.g. 'Z' or '+02:00')")
    return value


def _parse_offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    match = _OFFSET.fullmatch(text)
    if match is None:  # pragma: no cover - the outer pattern already constrains it
        raise TimeParseError("has an invalid UTC offset")
    hours = int(match["hours"])
    minutes = int(match["minutes"] or 0)
    if minutes > 59:
        raise TimeParseError("has an invalid UTC offset (minutes out of range)")
    delta = timedelta(hours=hours, minutes=minutes)
    if delta >= timedelta(hours=24):
        raise TimeParseError("has a UTC offset out of range (must be under 24 hours)")
    return timezone(-delta if match["sign"] == "-" else delta)


def to_epoch_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly (no float)."""
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
