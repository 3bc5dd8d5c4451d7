"""Use cases of the KPIs and custom events (CONTRACT section 12, docs/api.md): the daily
KPI series, the workspace's event names, and custom events by time; and the scope of a
series that sessions and events by time share (bucketing zone, app, tracked segment,
buckets). Knows nothing of HTTP.

KPI days are local days in the workspace's zone, as the store keeps them (``kpi``): a
KPI series takes neither ``time_zone`` nor ``segment_id``, and only ``unit=day``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from . import audience, buckets, kpi
from .buckets import UNITS, Bucket
from .errors import InvalidInput
from .series_query import InvalidParameter, SeriesQuery, parse_series_query
from .store.base import Store, Workspace

EVENTS_PAGE_SIZE = 250  # Braze's page of /events/list
MAX_PAGE = 10_000_000
KPI_UNITS = ("day",)
# Parameters of the sessions series that a KPI series refuses, and why (a 400: ignoring
# them would answer another question than the one asked).
KPI_REFUSED = {
    "time_zone": "KPI days are local days in the workspace's time zone",
    "segment_id": "KPIs count every person of the workspace or app",
}
# Files of the system's zone directory that are not zone names: 'localtime' is whatever
# zone the server machine is set to (answers would depend on it).
_NOT_IANA_NAMES = frozenset({"localtime", "posixrules", "Factory"})
_UNKNOWN_ZONE = "'time_zone' is not a known IANA time zone name"


# ------------------------------------------------------------------ series scope


class SeriesScope(NamedTuple):
    """What a series of ``/sessions/data_series`` or ``/events/data_series`` counts: the
    buckets (in the bucketing zone), the app (0: all apps) and the tracked segment (0:
    all users)."""

    zone: ZoneInfo
    app_key: int
    segment_key: int
    series: tuple[Bucket, ...]


def parse_query(
    pairs: Iterable[tuple[str, str]],
    *,
    event: bool = False,
    units: Sequence[str] = UNITS,
    refused: Mapping[str, str] | None = None,
) -> SeriesQuery:
    """``series_query.parse_series_query``, its refusals as InvalidInput (a 400)."""
    try:
        return parse_series_query(pairs, event=event, units=units, refused=refused)
    except InvalidParameter as exc:
        raise InvalidInput(str(exc)) from None


def bucketing_zone(workspace: Workspace, time_zone: str | None) -> ZoneInfo:
    """``time_zone`` if given (else the workspace's zone), or InvalidInput."""
    zone_name = workspace.time_zone
    if time_zone is not None:
        # Zone names never hold a space, but "Etc/GMT+5" sent unencoded arrives as
        # "Etc/GMT 5" (a '+' in a query string decodes to a space): read it back as '+',
        # as ending_at does.
        zone_name = time_zone.replace(" ", "+")
        if zone_name in _NOT_IANA_NAMES or zone_name.startswith(("posix/", "right/")):
            raise InvalidInput(_UNKNOWN_ZONE)
    try:
        return buckets.load_zone(zone_name)
    except buckets.UnknownZoneError:
        raise InvalidInput(buckets.unknown_zone_message(_UNKNOWN_ZONE, zone_name)) from None


def app_key_of(store: Store, workspace: Workspace, app_id: str | None) -> int:
    """The store's key of the workspace's app ``app_id`` (0 for None: all apps), or
    InvalidInput (the same message for an unknown app and another workspace's)."""
    if app_id is None:
        return 0
    app = store.find_app(workspace.workspace_id, app_id)
    if app is None:
        raise InvalidInput("'app_id' is not an app of this workspace")
    return app.app_key


def series_scope(store: Store, workspace: Workspace, query: SeriesQuery, now: float) -> SeriesScope:
    """Resolve a parsed series query: the zone, the app, the segment, then the buckets
    (in that order: the first problem found is the one reported)."""
    zone = bucketing_zone(workspace, query.time_zone)
    app_key = app_key_of(store, workspace, query.app_id)
    segment_key = 0
    if query.segment_id is not None:
        segment_key = audience.tracked_segment_key(store, workspace, query.segment_id)
    try:
        ending = int(now) if query.ending_at is None else buckets.resolve_ending(query.ending_at, zone)
        series = buckets.series(query.unit, query.length, ending, zone)
    except (OverflowError, ValueError):
        raise InvalidInput("'ending_at' is out of the supported range") from None
    return SeriesScope(zone, app_key, segment_key, series)


@functools.lru_cache(maxsize=1024)
def quarter_edges(series: tuple[Bucket, ...]) -> tuple[tuple[int, ...], bool]:
    """The series' bucket edges as quarter indexes (rounded down), and whether every edge
    is on the quarter-hour grid. Memoised with the series themselves."""
    edges = [b.start for b in series] + [series[-1].end]
    return tuple(edge // 900 for edge in edges), all(edge % 900 == 0 for edge in edges)


# ------------------------------------------------------------------ KPIs


def kpi_days(workspace: Workspace, ending_at: datetime | None, length: int, now: float) -> range:
    """The ``length`` local days (days since 1970-01-01, in the workspace's zone) ending
    with the day of ``ending_at`` (a date or a wall time without offset: its own date; an
    instant: its local date), or of ``now``."""
    zone_name = workspace.time_zone
    try:
        if ending_at is None:
            last = kpi.local_day(zone_name, int(now) * 1_000_000)
        elif ending_at.tzinfo is None:
            last = ending_at.date().toordinal() - kpi.EPOCH_ORDINAL
        else:
            instant = buckets.resolve_ending(ending_at, buckets.load_zone(zone_name))
            last = kpi.local_day(zone_name, instant * 1_000_000)
    except (OverflowError, ValueError):
        raise InvalidInput("'ending_at' is out of the supported range") from None
    return range(last - length + 1, last + 1)


def kpi_series(
    store: Store, workspace: Workspace, name: str, pairs: Iterable[tuple[str, str]], now: float
) -> dict[str, Any]:
    """``GET /kpi/<name>/data_series``: ``{"data": [{"time", <name>}], "message"}``."""
    kind = kpi.KINDS[name]
    query = parse_query(pairs, units=KPI_UNITS, refused=KPI_REFUSED)
    app_key = app_key_of(store, workspace, query.app_id)
    days = kpi_days(workspace, query.ending_at, query.length, now)
    values = store.kpi_series(workspace.workspace_id, app_key, kind, days[0], days[-1])
    return {
        "data": [{"time": kpi.day_label(day), name: n} for day, n in zip(days, values, strict=True)],
        "message": "success",
    }


# ------------------------------------------------------------------ custom events


def event_names(store: Store, workspace: Workspace, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``GET /events/list``: one page of the workspace's event names, alphabetical."""
    page = _page(pairs)
    names = store.event_names(workspace.workspace_id, page * EVENTS_PAGE_SIZE, EVENTS_PAGE_SIZE)
    return {"events": names, "message": "success"}


def _page(pairs: Iterable[tuple[str, str]]) -> int:
    raw: str | None = None
    for name, value in pairs:
        if name != "page":
            continue
        if raw is not None:
            raise InvalidInput("'page' is given more than once")
        raw = value
    if raw is None:
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 8 or (len(raw) > 1 and raw[0] == "0"):
        raise InvalidInput("'page' must be a non-negative integer")
    if int(raw) > MAX_PAGE:
        raise InvalidInput("'page' is too large")
    return int(raw)


def event_series(
    store: Store, workspace: Workspace, pairs: Iterable[tuple[str, str]], now: float
) -> dict[str, Any]:
    """``GET /events/data_series``: ``track`` events of one name by the bucket of their
    time, with every rule of ``/sessions/data_series``. A name never recorded counts 0 in
    every bucket (it may simply not have happened yet)."""
    query = parse_query(pairs, event=True)
    scope = series_scope(store, workspace, query, now)
    assert query.event is not None
    name_key = store.event_name_key(workspace.workspace_id, query.event)
    if name_key is None:
        counts = [0] * len(scope.series)
    else:
        # Counted by quarter hour: a bucket edge off the quarter-hour grid (historical zone
        # rules only, e.g. Africa/Monrovia before 1972) is rounded down to its quarter.
        quarters, _ = quarter_edges(scope.series)
        counts = store.count_events_by_quarters(
            workspace.workspace_id, scope.app_key, scope.segment_key, name_key, quarters
        )
    return {
        "data": [{"time": b.label, "count": n} for b, n in zip(scope.series, counts, strict=True)],
        "message": "success",
    }
