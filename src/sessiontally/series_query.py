"""Parsing of the ``/sessions/data_series`` query string (docs/api.md), and of the other
series that follow its rules (``/events/data_series``, ``/kpi/*/data_series``). Pure.

Takes the raw (name, value) pairs so that a repeated parameter can be refused; unknown
parameters are ignored, as real Braze clients send some.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .buckets import MAX_LENGTH, UNITS
from .timeparse import TimeParseError, parse_timestamp

KNOWN = ("length", "unit", "ending_at", "app_id", "segment_id", "time_zone")
EVENT = "event"  # /events/data_series: the custom event's name
_DECIMAL = re.compile(r"[1-9][0-9]{0,2}", re.ASCII)  # no sign, no leading zero
MAX_VALUE_LENGTH = 256


class InvalidParameter(ValueError):
    """A 400: the message names the parameter and says what is wrong."""


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    length: int
    unit: str
    ending_at: datetime | None  # aware = instant; naive = wall time in the bucketing zone
    app_id: str | None
    segment_id: str | None
    time_zone: str | None
    event: str | None = None  # only with ``event=True``


def parse_series_query(
    pairs: Iterable[tuple[str, str]],
    *,
    event: bool = False,
    units: Sequence[str] = UNITS,
    refused: Mapping[str, str] | None = None,
) -> SeriesQuery:
    """The query, or InvalidParameter for the first problem found. ``event``: the
    ``event`` parameter is required (events series); ``units``: the units this series
    has; ``refused``: parameters of the sessions series that this one does not take,
    each with the reason given in its 400."""
    known = (*KNOWN, EVENT) if event else KNOWN
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in known:
            continue
        if name in values:
            raise InvalidParameter(f"'{name}' is given more than once")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidParameter(f"'{name}' is too long")
        if "\x00" in value:  # never a valid value, and PostgreSQL text cannot hold it
            raise InvalidParameter(f"'{name}' must not contain NUL (U+0000) characters")
        values[name] = value

    for name, reason in (refused or {}).items():
        if name in values:
            raise InvalidParameter(f"'{name}' is not accepted here: {reason}")

    event_name = values.get(EVENT)
    if event and not event_name:
        raise InvalidParameter("'event' is required (the name of a custom event)")

    raw_length = values.get("length")
    if raw_length is None:
        raise InvalidParameter("'length' is required (an integer from 1 to 100)")
    if not _DECIMAL.fullmatch(raw_length) or not 1 <= int(raw_length) <= MAX_LENGTH:
        raise InvalidParameter(f"'length' must be an integer from 1 to {MAX_LENGTH}")

    unit = values.get("unit", "day").lower()
    if unit not in units:
        raise InvalidParameter("'unit' must be " + " or ".join(f"'{u}'" for u in units))

    ending_at = None
    if "ending_at" in values:
        try:
            ending_at = parse_timestamp(values["ending_at"])
        except TimeParseError as exc:
            raise InvalidParameter(f"'ending_at' {exc}") from None
        if not 1971 <= ending_at.year <= 9998:
            raise InvalidParameter("'ending_at' must be between 1971 and 9998")

    for name in ("app_id", "segment_id", "time_zone"):
        if name in values and not values[name]:
            raise InvalidParameter(f"'{name}' must not be empty")

    return SeriesQuery(
        length=int(raw_length),
        unit=unit,
        ending_at=ending_at,
        app_id=values.get("app_id"),
        segment_id=values.get("segment_id"),
        time_zone=values.get("time_zone"),
        event=event_name,
    )
