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

# The examples in messages, each accepted by the field the message is about: a bare date
# is no instant (it has no offset), so the fields that need one show datetimes only.
TIMESTAMP_EXAMPLES = "e.g. 2025-06-01 or 2025-06-01T12:00:00Z"
INSTANT_EXAMPLES = "e.g. 2025-06-01T12:00:00Z or 2025-06-01T14:00:00+02:00"


class TimeParseError(ValueError):
    """The text is not one of the accepted ISO-8601 forms (the message says why)."""


def parse_timestamp(text: str, *, needs_offset: bool = False) -> datetime:
    """Parse a date or datetime; aware if it carried an offset, naive (wall time) if not.

    A bare date is midnight wall time. An unreadable text is told examples of the caller's
    field: datetimes with an offset when ``needs_offset``.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise TimeParseError("is too long to be an ISO-8601 date or datetime")
    match = _PATTERN.fullmatch(text)
    if match is None:
        if needs_offset:
            raise TimeParseError(f"is not an ISO-8601 datetime with an offset ({INSTANT_EXAMPLES})")
        raise TimeParseError(f"is not an ISO-8601 date or datetime ({TIMESTAMP_EXAMPLES})")
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
    value = parse_timestamp(text, needs_offset=True)
    if value.tzinfo is None:
        raise TimeParseError(f"must be an ISO-8601 datetime with an offset ({INSTANT_EXAMPLES})")
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


# The form nearly every client sends; checked first because datetime.fromisoformat (C) is
# several times faster than the lenient parser, which handles every other form.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def instant_micros(text: str, naive_is_utc: bool = False) -> int:
    """An instant's microseconds since the epoch. TimeParseError for text that is not a
    datetime, or has no offset (unless ``naive_is_utc``); OverflowError out of range."""
    if _CANONICAL.fullmatch(text):
        try:
            return (datetime.fromisoformat(text) - _EPOCH) // _MICROSECOND
        except (ValueError, OverflowError):
            pass  # e.g. 2025-02-30: the lenient parser says what is wrong
    if not naive_is_utc:
        return to_epoch_micros(parse_instant(text))
    parsed = parse_timestamp(text)
    return to_epoch_micros(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC))
