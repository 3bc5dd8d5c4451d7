"""The use cases: authenticate, rate-limit, record sessions, export sessions by time.

Knows nothing of HTTP: the API layer turns requests into these calls, and their results
and ``sessiontally.errors`` into responses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from . import (
    audience,
    buckets,
    erasure,
    ingest,
    insights,
    intake,
    ipallow,
    keys,
    retention,
    tracking,
)
from .answers import AnswerCache
from .config import Settings
from .errors import Forbidden, InvalidInput, Unauthenticated, WouldBlock
from .ratelimit import RateDecision, RateLimiter, open_limiter
from .store import open_store
from .store.base import ApiKey, App, NewSession, Store, Workspace

log = logging.getLogger("sessiontally.service")

INVALID_KEY = "Invalid API key"
# No key at all: say how to send one (a wrong key stays INVALID_KEY, which tells nothing).
MISSING_KEY = ("Missing API key: send it in the header 'Authorization: Bearer <key>' "
               "(or as the api_key parameter)")
KEY_TOUCH_INTERVAL_S = 60


@dataclass(frozen=True, slots=True)
class Principal:
    key: ApiKey
    workspace: Workspace


@dataclass(slots=True)
class TrackResult:
    recorded: int
    duplicates: int
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": "success",
            "sessions_processed": self.recorded,
            "duplicates": self.duplicates,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class Service:
    """The use cases over one store and one rate limiter."""

    def __init__(
        self,
        store: Store,
        limiter: RateLimiter,
        clock: Callable[[], float] = time.time,
        answers: AnswerCache | None = None,
        touch_in_background: bool = False,
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.clock = clock
        self.answers = answers if answers is not None else AnswerCache()
        # Where the occasional last-seen write runs: inline, or (for the HTTP app, which
        # authenticates reads on its event loop) in a thread of its own.
        self._toucher = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="touch") if touch_in_background else None
        )
        self._touched: dict[tuple[int, int], float] = {}
        self.migrated = False  # set once by ensure_migrated
        self.classifier = audience.SegmentClassifier()
        self._maintenance: retention.Maintenance | None = None

    @classmethod
    def open(cls, settings: Settings) -> Service:
        """The service the settings describe: their store, rate limiter and answer cache,
        with last-seen writes in the background. ``close`` releases them."""
        store = open_store(settings.database, read_cache=settings.read_cache)
        try:
            limiter = open_limiter(settings)
        except BaseException:
            store.close()
            raise
        return cls(store, limiter, answers=AnswerCache(settings.read_cache), touch_in_background=True)

    def start_maintenance(self) -> None:
        """Run the retention job in a background thread until ``close`` (a server worker)."""
        if self._maintenance is None:
            self._maintenance = retention.Maintenance(self.store, self.clock)
            self._maintenance.start()

    def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.stop()
        if self._toucher is not None:
            self._toucher.shutdown(wait=True)
        self.limiter.close()
        self.store.close()

    def ensure_migrated(self) -> None:
        """Apply pending migrations once per service. No lock: ``migrate`` serialises in
        the database, and callers must not queue behind one that waits for a dead store."""
        if not self.migrated:
            self.store.migrate()
            self.migrated = True

    def healthy(self) -> bool:
        """Whether the store answers (False, not an exception, when it is down)."""
        try:
            return self.store.ping()
        except Exception:  # whatever the driver raises for a dead database
            return False

    def readiness(self) -> dict[str, bool]:
        """Each dependency and whether it answers now (``GET /readyz``): the store, and the
        rate-limit counters under their own name ("redis", "counter_file") unless they
        live in the store's database."""
        found = {"store": self.healthy()}
        name = getattr(self.limiter, "dependency", "rate_limiter")
        try:
            up = bool(self.limiter.ping())
        except Exception:  # whatever a dead dependency raises: it is down
            up = False
        found[name] = found.get(name, True) and up
        return found

    # ------------------------------------------------------------------ access

    def authenticate(self, token: str | None, client_ip: str | None) -> Principal:
        """The key's principal, or Unauthenticated: MISSING_KEY when none was sent (None),
        else one message for every reason."""
        if token is None:
            raise Unauthenticated(MISSING_KEY)
        if not token or len(token) > keys.MAX_KEY_LENGTH:
            raise Unauthenticated(INVALID_KEY)
        workspace_id = keys.workspace_of(token)
        if workspace_id is None:
            raise Unauthenticated(INVALID_KEY)
        presented = keys.hash_key(token)
        # A key admitted from this address is remembered while the stored data are
        # unchanged (revoking it, or any other write, forgets it); refusals never are.
        cache = self.answers.under(self.store.change_token())
        remembered = (_PRINCIPAL, workspace_id, presented, client_ip)
        principal = cache.get(remembered) if cache is not None else None
        if principal is None:
            principal = self._admitted(workspace_id, presented, client_ip)
            if cache is not None:
                cache[remembered] = principal
        self._touch(principal.key)
        return principal

    def _admitted(self, workspace_id: int, presented: bytes, client_ip: str | None) -> Principal:
        record = self.store.find_key_by_hash(workspace_id, presented)
        if (
            record is None
            or not keys.hashes_match(presented, record.key_hash)
            or record.revoked
            or not ipallow.is_allowed(client_ip, record.allowed_ips)
        ):
            raise Unauthenticated(INVALID_KEY)
        workspace = self.store.get_workspace(record.workspace_id)
        if workspace is None:
            raise Unauthenticated(INVALID_KEY)
        return Principal(record, workspace)

    def _touch(self, record: ApiKey) -> None:
        """Keep last-seen current to the minute without a write on every request."""
        now = self.clock()
        marker = (record.workspace_id, record.key_id)
        if now - self._touched.get(marker, 0.0) >= KEY_TOUCH_INTERVAL_S:
            self._touched[marker] = now
            touch = functools.partial(self.store.touch_key, record.workspace_id, record.key_id, int(now))
            if self._toucher is None:
                touch()
            else:
                # (Refused while shutting down: this last-seen update is then dropped.)
                with contextlib.suppress(RuntimeError):
                    self._toucher.submit(_logged, touch)

    def count_request(self, principal: Principal) -> RateDecision:
        return self.limiter.hit(
            principal.workspace.workspace_id, principal.workspace.rate_limit, self.clock()
        )

    @staticmethod
    def require(principal: Principal, permission: str) -> None:
        if permission not in principal.key.permissions:
            raise Forbidden(f"Access Denied: this API key does not have the {permission} permission")

    # ------------------------------------------------------------------ record

    def record_sessions(self, workspace: Workspace, body: Any) -> TrackResult:
        try:
            items = ingest.batch_items(body)
        except ingest.BatchShapeError as exc:
            raise InvalidInput(str(exc)) from None
        return self.record_items(workspace, items)

    def record_items(self, workspace: Workspace, items: list[Any]) -> TrackResult:
        """Validate and record; InvalidInput when no item is valid."""
        now_us = int(self.clock() * 1_000_000)
        valid, errors = ingest.validate_batch(items, now_us)
        app_keys = {app.app_id: app.app_key for app in self.store.list_apps(workspace.workspace_id)}
        rows: list[NewSession] = []
        oldest = _oldest_us(workspace, now_us)
        for index, session in valid:
            app_key = app_keys.get(session.app_id)
            if app_key is None:
                errors.append(ingest.ItemError(index, "'app_id' is not an app of this workspace"))
                continue
            if oldest is not None and session.started_at < oldest:
                # (its id may be forgotten already: counted again, it would count twice)
                errors.append(ingest.ItemError(index, PAST_RETENTION))
                continue
            rows.append(
                NewSession(
                    session.session_id,
                    session.external_id,
                    app_key,
                    session.started_at,
                    session.ended_at,
                )
            )
        errors.sort(key=lambda e: e.index)
        error_list = [e.as_json() for e in errors]
        if not rows:
            raise InvalidInput("no valid sessions in the request", error_list)
        outcome = self.store.record_sessions(workspace.workspace_id, rows, self.classifier)
        return TrackResult(outcome.recorded, outcome.duplicates, error_list)

    # ------------------------------------------------------------------ tracking API

    def admit_write_key(self, write_key: str | None, origin: str | None) -> App:
        """The app a tracking-API request writes to: Unauthenticated for a write key that
        admits nobody, Forbidden for a browser origin the app does not accept. An
        admitted key is remembered while the stored data are unchanged (rotating it, or
        any other write, forgets it)."""
        cache = self.answers.under(self.store.change_token())
        remembered = (_WRITE_KEY, write_key)
        app: App | None = cache.get(remembered) if cache is not None else None
        if app is None:
            app = intake.admit(self.store, write_key)
            if cache is not None:
                cache[remembered] = app
        intake.check_origin(app, origin)
        return app

    def track_messages(
        self, app: App, request: tracking.Request, path_type: str, body_size: int
    ) -> dict[str, Any]:
        """Record a tracking-API request's valid messages durably; the 200 body.
        ``body_size``: the request's JSON size (messages are measured one by one only
        when it could hold one over the limit)."""
        now_us = int(self.clock() * 1_000_000)
        workspace = self.store.get_workspace(app.workspace_id)
        oldest = _oldest_us(workspace, now_us) if workspace is not None else None
        return intake.record(self.store, app, request, path_type, now_us, self.classifier,
                             body_size > tracking.MAX_MESSAGE_BYTES, oldest)

    # ------------------------------------------------------------------ export

    def data_series(
        self, workspace: Workspace, query_pairs: Iterable[tuple[str, str]], may_scan: bool = True
    ) -> list[dict[str, Any]]:
        """The series' points. With ``may_scan=False``, WouldBlock instead of counting from
        the raw rows (off-grid zone rules) so that an event loop never runs a scan.

        Answers are kept while the stored data are unchanged (``answers``), so a repeated
        query skips parsing, bucketing and the rollup read while the stored data are
        unchanged. An answer without ``ending_at`` depends on the clock only through the
        bucket holding "now": it is reused while the clock stays in that bucket."""
        answer = self._cached_series(workspace, query_pairs, may_scan)
        points: list[dict[str, Any]] = orjson.loads(answer.json)
        return points

    def data_series_json(
        self, workspace: Workspace, query_pairs: Iterable[tuple[str, str]], may_scan: bool = True
    ) -> orjson.Fragment:
        """``data_series`` already serialised as JSON (kept with the cached answer, so a
        repeated query is not serialised again)."""
        return orjson.Fragment(self._cached_series(workspace, query_pairs, may_scan).json)

    def _cached_series(
        self, workspace: Workspace, query_pairs: Iterable[tuple[str, str]], may_scan: bool
    ) -> _SeriesAnswer:
        # The legacy api_key parameter names no part of the answer (the workspace does),
        # and a key's secret is not kept in a cache.
        pairs = tuple([pair for pair in query_pairs if pair[0] != "api_key"])
        cache = self.answers.under(self.store.change_token())
        key = (_SERIES_ANSWER, workspace, pairs)
        now = self.clock()
        if cache is not None:
            kept: _SeriesAnswer | None = cache.get(key)
            if kept is not None and kept.valid_from <= now < kept.valid_until:
                return kept
        answer = self._series_answer(workspace, pairs, now, may_scan)
        if cache is not None:
            cache[key] = answer
        return answer

    def _series_answer(
        self, workspace: Workspace, query_pairs: tuple[tuple[str, str], ...], now: float,
        may_scan: bool,
    ) -> _SeriesAnswer:
        query = insights.parse_query(query_pairs)
        scope = insights.series_scope(self.store, workspace, query, now)
        series = scope.series
        counts = self._count(workspace.workspace_id, scope.app_key, scope.segment_key, series, may_scan)
        serialised = orjson.dumps(_points(series, tuple(counts)))
        if query.ending_at is None:  # "now": the same answer while now is in the last bucket
            return _SeriesAnswer(serialised, series[-1].start, series[-1].end)
        return _SeriesAnswer(serialised, float("-inf"), float("inf"))

    def tracked_segment_key(self, workspace: Workspace, segment_id: str) -> int:
        return audience.tracked_segment_key(self.store, workspace, segment_id)

    # ------------------------------------------------------------------ users, segments

    def track_users(self, workspace: Workspace, body: Any) -> dict[str, Any]:
        return audience.track_users(self.store, workspace, body, int(self.clock() * 1_000_000))

    def delete_users(self, workspace: Workspace, body: Any) -> dict[str, Any]:
        """``POST /users/delete``: erase users with every count they contributed."""
        return erasure.delete_users(self.store, workspace, body, self.classifier)

    def list_segments(self, workspace: Workspace, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        return audience.list_segments(self.store, workspace, pairs)

    def segment_details(
        self, workspace: Workspace, pairs: Iterable[tuple[str, str]]
    ) -> dict[str, Any]:
        return audience.segment_details(self.store, workspace, pairs)

    # ------------------------------------------------------------------ KPIs, custom events

    def kpi_series(
        self, workspace: Workspace, kind: str, pairs: Iterable[tuple[str, str]]
    ) -> dict[str, Any]:
        """``GET /kpi/<kind>/data_series`` (``kind``: a name of ``kpi.KINDS``)."""
        return insights.kpi_series(self.store, workspace, kind, pairs, self.clock())

    def event_names(self, workspace: Workspace, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """``GET /events/list``."""
        return insights.event_names(self.store, workspace, pairs)

    def event_series(self, workspace: Workspace, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """``GET /events/data_series``."""
        return insights.event_series(self.store, workspace, pairs, self.clock())

    def _count(
        self,
        workspace_id: int,
        app_key: int,
        segment_key: int,
        series: tuple[buckets.Bucket, ...],
        may_scan: bool = True,
    ) -> list[int]:
        quarters, on_grid = insights.quarter_edges(series)
        if segment_key or on_grid:
            # Segment membership is only in the rollup: a boundary off the grid (below) is
            # rounded down to its quarter-hour there.
            return self.store.count_by_quarters(workspace_id, app_key, segment_key, quarters)
        # A historical zone rule whose boundaries are not on the quarter-hour grid
        # (e.g. Africa/Monrovia before 1972): count those buckets from the raw sessions.
        if not may_scan:
            raise WouldBlock
        return [
            self.store.count_raw_in_range(
                workspace_id, app_key, b.start * 1_000_000, b.end * 1_000_000
            )
            for b in series
        ]


PAST_RETENTION = "'started_at' is older than the workspace's retention: no longer accepted"


def _oldest_us(workspace: Workspace, now_us: int) -> int | None:
    """The oldest instant the workspace still accepts (its retention horizon), if any."""
    if workspace.retention_days is None:
        return None
    return retention.horizon_us(workspace.retention_days, now_us / 1_000_000)


def _logged(work: Callable[[], None]) -> None:
    """Run a background write; log its failure (it has no caller to tell)."""
    try:
        work()
    except Exception as exc:  # e.g. the store is down: last-seen waits for the next one
        log.warning("background write failed: %s", type(exc).__name__)


# Key prefixes of the answers the service keeps (one cache holds both kinds).
_SERIES_ANSWER = "series-answer"
_PRINCIPAL = "principal"
_WRITE_KEY = "write-key"


class _SeriesAnswer(NamedTuple):
    """A series' points, and the clock readings (epoch seconds) for which they hold."""

    json: bytes  # the points, serialised: a few KB (a list of dicts would be ~30 KB)
    valid_from: float
    valid_until: float


@functools.lru_cache(maxsize=1024)
def _points(series: tuple[buckets.Bucket, ...], counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """The answer's points. Memoised (a repeated series with the same counts is the same
    list): callers only serialise it, never change it."""
    return [{"time": b.label, "sessions": n} for b, n in zip(series, counts, strict=True)]
