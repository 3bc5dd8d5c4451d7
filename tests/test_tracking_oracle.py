"""The order-independence oracle of derived sessions (issue 17 item 4; CONTRACT sections
10 and 11): the series depend only on the set of (deduplicated) events, never on the
order, batching or repetition in which they arrived.

A history is a set of Segment messages for a few persons in two apps whose session
timeouts differ (1800 s and 600 s), with gaps concentrated around the timeouts
(timeout - 1 µs, timeout, timeout + 1 µs, the other app's timeout, much larger), messages
sent twice (in the same batch or another), messages without ``messageId`` (deduplicated
by content), message ids shared by the two apps (each app's own), non-activity messages,
and a few recorded sessions (``record_sessions``), all near a DST change of
America/New_York. Each history is replayed in several random orders and batchings, each
into a workspace of its own, on both engines; after each, the derived sessions and every
series (``unit=hour`` and ``unit=day``; UTC, America/New_York, Asia/Kolkata,
Asia/Kathmandu; each app and all apps) must equal the brute-force model:

* dedup per app by ``messageId``, else by the message's content (canonical JSON);
* a person is its ``anonymousId``, else its ``userId``; activity is track/page/screen;
* sessions by definition: sort a person's distinct times, cut where a gap exceeds the
  timeout; each counts once at its start, beside the recorded sessions;
* buckets from ``tests/oracle.py`` (zoneinfo, stepping through time; not ``buckets.py``).

Two variants: the store (messages validated with ``tracking.validate_message``, recorded
with ``Store.record_events``) and the service (``Service.track_messages``, which also
rejects invalid messages and sets identify traits).

Planted mutations show that the check can fail: resolve ignoring merges, and a store read
that misses the sessions just after a batch (so that a late event does not move a start).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import oracle_tenants
import orjson
import pytest
from db_support import ENGINES, open_test_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import as_zone, label_of, labels
from oracle_tenants import Tenant
from segment_support import FakeClock, service_for

from sessiontally import sessionize, tracking
from sessiontally.store import derived
from sessiontally.store.base import NewEvent, NewSession, Store

S = 1_000_000
HOUR = 3600 * S
TIMEOUTS_S = (1800, 600)  # app 0 (the default), app 1
PERSONS = ("p0", "p1", "p2")
USERS = (None, "u1", "u2")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# America/New_York's DST changes of 2025: spring forward at 07:00Z, fall back at 06:00Z.
BASES = (
    int(datetime(2025, 3, 9, 7, tzinfo=UTC).timestamp()) * S,
    int(datetime(2025, 11, 2, 6, tzinfo=UTC).timestamp()) * S,
)
SPREAD = 6 * HOUR  # first events within this of the base; recorded sessions within twice it
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
WORKSPACE_ZONE = "America/New_York"  # its series are read without time_zone
# (unit, length, ending relative to the base): every event and session falls inside.
SERIES = (("hour", 84, 42 * HOUR), ("day", 6, 3 * 24 * HOUR))
KINDS = ("track", "track", "track", "page", "page", "screen", "identify", "group")  # mostly activity
OFFSETS = (UTC, timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(hours=-5)))


# --------------------------------------------------------------------------- histories


@dataclass(frozen=True)
class Sent:
    """One message as sent to one app (``app`` 0 or 1), and its event time."""

    app: int
    message: dict[str, Any]
    at: int


@dataclass(frozen=True)
class Recorded:
    session: NewSession  # app_key holds the app's index until replayed


@dataclass(frozen=True)
class History:
    base: int
    items: tuple[Sent | Recorded, ...]  # repeats included
    now_us: int  # the receipt time (every event is before it)


def iso(at_us: int, offset: timezone) -> str:
    text = (EPOCH + timedelta(microseconds=at_us)).astimezone(offset).isoformat()
    return text.replace("+00:00", "Z")


def gaps(timeout_s: int) -> st.SearchStrategy[int]:
    """Gaps where mistakes live: around this app's timeout and the other's, none, far; and
    just over half the timeout, so that two such gaps make a merge when the middle event
    comes late."""
    t = timeout_s * S
    near = st.sampled_from([t - 1, t, t + 1, t // 2 + 1, 3 * t // 4, t // 2 + 1, 3 * t // 4])
    other = st.sampled_from([0, 1, 1800 * S + 1, 600 * S, 2 * t, 2 * t + 1, 4 * HOUR])
    return st.one_of(near, near, other, st.integers(1, 2 * t))


@st.composite
def messages_of(draw, app: int, person: str, start: int, ids: list[int]) -> list[Sent]:
    sent = []
    at = start
    for step in range(draw(st.integers(1, 8))):
        if step:
            at += draw(gaps(TIMEOUTS_S[app]))
        kind = draw(st.sampled_from(KINDS))
        message: dict[str, Any] = {"type": kind}
        user_id = draw(st.sampled_from(USERS))
        if user_id is not None and draw(st.integers(0, 7)) == 0:
            message["userId"] = user_id  # no anonymousId: the user id is the person
        else:
            message["anonymousId"] = person
            if user_id is not None:
                message["userId"] = user_id
        if kind == "track":
            message["event"] = draw(st.sampled_from(["Opened", "Bought"]))
        elif kind == "identify" and "userId" in message:
            message["traits"] = {"plan": draw(st.sampled_from(["free", "pro"]))}
        field = draw(st.sampled_from(["timestamp", "timestamp", "originalTimestamp"]))
        message[field] = iso(at, draw(st.sampled_from(OFFSETS)))
        if draw(st.integers(0, 3)):  # else no messageId: deduplicated by content
            ids[0] += 1
            message["messageId"] = f"m{ids[0]}"  # counters per app: ids recur across apps
        sent.append(Sent(app, message, at))
    return sent


@st.composite
def histories(draw) -> History:
    base = draw(st.sampled_from(BASES))
    unique: list[Sent | Recorded] = []
    for app in (0, 1):
        ids = [0]
        for person in draw(st.lists(st.sampled_from(PERSONS), min_size=1, max_size=3, unique=True)):
            start = base + draw(st.integers(-SPREAD, SPREAD))
            unique += draw(messages_of(app, person, start, ids))
    for n in range(draw(st.integers(0, 3))):
        started = base + draw(st.integers(-2 * SPREAD, 2 * SPREAD))
        unique.append(Recorded(NewSession(f"s{n}", draw(st.sampled_from(PERSONS)),
                                          draw(st.sampled_from([0, 1])), started, None)))
    repeats = draw(st.lists(st.sampled_from(unique), max_size=6))
    return History(base, tuple(unique + repeats), base + 3 * 24 * HOUR)


def _time(item: Sent | Recorded) -> int:
    return item.at if isinstance(item, Sent) else item.session.started_at


def _chains(items: list[Sent | Recorded]) -> list[list[Sent | Recorded]]:
    """The items of each (app, person) in time order (recorded sessions: one chain)."""
    chains: dict[object, list[Sent | Recorded]] = {}
    for item in sorted(items, key=_time):
        key = (item.app, item.message.get("anonymousId") or item.message["userId"]) \
            if isinstance(item, Sent) else "recorded"
        chains.setdefault(key, []).append(item)
    return list(chains.values())


def evens_then_odds(items: list[Sent | Recorded]) -> list[list[Sent | Recorded]]:
    """Every other event of each person first, then the rest: the late ones fall between
    earlier sessions (merges) and before their starts (moves)."""
    chains = _chains(items)
    return [[i for c in chains for i in c[::2]], [i for c in chains for i in c[1::2]]]


# Orders that make late events common, as parts (a batch never spans two parts).
ORDERS: dict[str, Callable[[list[Sent | Recorded]], list[list[Sent | Recorded]]]] = {
    "in time order": lambda items: [sorted(items, key=_time)],
    "reverse time order": lambda items: [sorted(items, key=_time, reverse=True)],
    "evens then odds": evens_then_odds,
    "odds then evens": lambda items: evens_then_odds(items)[::-1],
}


@st.composite
def orderings(draw, history: History, count: int) -> list[list[list[Sent | Recorded]]]:
    """``count`` replays of the history: each a random permutation, or one of ``ORDERS``,
    cut into random batches."""
    replays = []
    items = list(history.items)
    for _ in range(count):
        how = draw(st.sampled_from(["random", "random", "evens then odds", *ORDERS]))
        parts = [draw(st.permutations(items))] if how == "random" else ORDERS[how](items)
        batches = []
        for order in parts:
            cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=6)))
            edges = [0, *cuts, len(order)]
            batches += [order[a:b] for a, b in zip(edges, edges[1:], strict=False) if a < b]
        replays.append(batches)
    return replays


# ------------------------------------------------------------------------------- model


def by_definition(times: Sequence[int], timeout_us: int) -> list[tuple[int, int]]:
    """Maximal runs of the distinct sorted times with consecutive gaps <= timeout."""
    ordered = sorted(set(times))
    runs, first = [], 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] - ordered[i - 1] > timeout_us:
            runs.append((ordered[first], ordered[i - 1]))
            first = i
    return runs


@dataclass
class Model:
    sessions: dict[int, list[tuple[str, int, int]]]  # app -> (person, start, end), sorted
    recorded: dict[int, list[int]]  # app -> recorded session starts

    @classmethod
    def of(cls, history: History) -> Model:
        seen: set[tuple[int, str]] = set()
        times: dict[tuple[int, str], list[int]] = {}
        recorded: dict[int, list[int]] = {0: [], 1: []}
        recorded_ids: set[str] = set()
        for item in history.items:
            if isinstance(item, Recorded):
                if item.session.session_id not in recorded_ids:
                    recorded_ids.add(item.session.session_id)
                    recorded[item.session.app_key].append(item.session.started_at)
                continue
            message = item.message
            key = message.get("messageId") or orjson.dumps(message, option=orjson.OPT_SORT_KEYS).decode()
            if (item.app, key) in seen:
                continue
            seen.add((item.app, key))
            if message["type"] in ("track", "page", "screen"):
                person = message.get("anonymousId") or message["userId"]
                times.setdefault((item.app, person), []).append(item.at)
        sessions: dict[int, list[tuple[str, int, int]]] = {0: [], 1: []}
        for (app, person), person_times in times.items():
            sessions[app] += [(person, s, e) for s, e in by_definition(person_times, TIMEOUTS_S[app] * S)]
        return cls({app: sorted(found) for app, found in sessions.items()}, recorded)

    def starts(self, app: int | None) -> list[int]:
        apps = (0, 1) if app is None else (app,)
        return [s for a in apps for _, s, _ in self.sessions[a]] + [s for a in apps for s in self.recorded[a]]


@functools.cache
def series_labels(unit: str, zone: str, length: int, ending_us: int) -> tuple[str, ...]:
    return tuple(labels(unit, zone, length, ending_us))


def expected_series(starts: Sequence[int], unit: str, zone: str, length: int, ending_us: int) -> list[int]:
    wanted = series_labels(unit, zone, length, ending_us)
    counts = dict.fromkeys(wanted, 0)
    for start in starts:
        label = label_of(unit, as_zone(zone), start)
        if label in counts:
            counts[label] += 1
    return [counts[label] for label in wanted]


# ------------------------------------------------------------------------------ replay


def new_tenant(store: Store) -> Tenant:
    return oracle_tenants.new_tenant(store, WORKSPACE_ZONE, TIMEOUTS_S)


# Sends one app's messages of a batch: (store, service, tenant, app index, messages, now_us).
Send = Callable[[Store, Any, Tenant, int, list[dict[str, Any]], int], None]


def send_to_store(store: Store, service: Any, tenant: Tenant, app: int,
                  messages: list[dict[str, Any]], now_us: int) -> None:
    """Validated as the tracking API does, recorded with ``Store.record_events``."""
    events = []
    for message in messages:
        m = tracking.validate_message(message, "batch", now_us)
        events.append(NewEvent(m.message_id, m.type, m.event, m.person, m.user_id, m.occurred_at, now_us))
    store.record_events(tenant.workspace.workspace_id, tenant.apps[app], events, now_us, service.classifier)


INVALID = ({"type": "track", "anonymousId": "p0", "timestamp": "2025-03-09T07:00:00Z"},  # no event
           {"type": "page", "anonymousId": "p0", "timestamp": "1969-12-31T23:00:00Z"})


def send_to_service(store: Store, service: Any, tenant: Tenant, app: int,
                    messages: list[dict[str, Any]], now_us: int) -> None:
    """Through ``Service.track_messages`` as a ``/v1/batch`` body, with invalid messages
    mixed in (they are rejected and change nothing)."""
    batch = [*messages, *INVALID[: len(messages) % 3]]
    body = {"batch": batch, "writeKey": tenant.apps[app].write_key}
    request = tracking.read_request(body, "batch")
    answer = service.track_messages(tenant.apps[app], request, "batch", len(orjson.dumps(body)))
    rejected = [r["index"] for r in answer.get("rejected", [])]
    assert answer["success"] is True and rejected == list(range(len(messages), len(batch))), answer


def replay(store: Store, service: Any, history: History, batches: list[list[Sent | Recorded]],
           send: Send) -> Tenant:
    tenant = new_tenant(store)
    for batch in batches:
        for app in (0, 1):
            messages = [item.message for item in batch if isinstance(item, Sent) and item.app == app]
            if messages:
                send(store, service, tenant, app, messages, history.now_us)
        sessions = [item.session._replace(app_key=tenant.apps[item.session.app_key].app_key)
                    for item in batch if isinstance(item, Recorded)]
        if sessions:
            store.record_sessions(tenant.workspace.workspace_id, sessions, service.classifier)
    return tenant


def check_series(service: Any, tenant: Tenant, model: Model, base: int) -> None:
    """Every series of the tenant equals the model's."""
    for unit, length, ahead in SERIES:
        ending_us = base + ahead
        for zone in ZONES:
            for app in (None, 0, 1):
                pairs = [("length", str(length)), ("unit", unit), ("ending_at", iso(ending_us, UTC))]
                if zone != WORKSPACE_ZONE:
                    pairs.append(("time_zone", zone))
                if app is not None:
                    pairs.append(("app_id", tenant.apps[app].app_id))
                points = service.data_series(tenant.workspace, pairs)
                assert [p["time"] for p in points] == list(series_labels(unit, zone, length, ending_us))
                got = [p["sessions"] for p in points]
                want = expected_series(model.starts(app), unit, zone, length, ending_us)
                assert got == want, (unit, zone, app)


def check_sessions(store: Store, tenant: Tenant, model: Model) -> None:
    for app in (0, 1):
        stored = store.derived_sessions(tenant.workspace.workspace_id, tenant.apps[app].app_key)
        assert stored == model.sessions[app], f"app {app}"


def check(store: Store, service: Any, history: History, replays: list[list[list[Sent | Recorded]]],
          send: Send, sessions: bool = True) -> None:
    """Replay ``history`` in each of ``replays`` into a workspace of its own and compare
    with the model (the derived sessions too, unless ``sessions`` is False)."""
    model = Model.of(history)
    for batches in replays:
        tenant = replay(store, service, history, batches, send)
        if sessions:
            check_sessions(store, tenant, model)
        check_series(service, tenant, model, history.base)


# ------------------------------------------------------------------------- the oracle


@pytest.fixture(scope="module", params=ENGINES)
def oracle_store(request, tmp_path_factory):
    with open_test_store(request.param, tmp_path_factory.mktemp("tracking-oracle")) as opened:
        yield request.param, opened


def service_at(store: Store, now_us: int) -> Any:
    return service_for(store, FakeClock(now_us / S))


EXAMPLES = {"sqlite": 100, "postgres": 60, "citus": 25}
ORDERINGS = 3


@pytest.mark.parametrize("send", [send_to_store, send_to_service], ids=["store", "service"])
def test_series_do_not_depend_on_order_batching_or_repetition(oracle_store, send):
    """Each drawn history, replayed in 3 random orders and batchings, gives the model's
    derived sessions and series every time."""
    engine, store = oracle_store

    @settings(max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        history = data.draw(histories(), label="history")
        replays = data.draw(orderings(history, ORDERINGS), label="orderings")
        check(store, service_at(store, history.now_us), history, replays, send)

    run()


# ----------------------------------------------------------------- planted mutations

TAU = TIMEOUTS_S[0] * S
T = BASES[0] + 20 * 60 * S  # 07:20Z: the merge below changes which hour counts a session


def event(at: int, message_id: str, app: int = 0) -> Sent:
    message = {"type": "track", "event": "Opened", "anonymousId": "p0", "timestamp": iso(at, UTC),
               "messageId": message_id}
    return Sent(app, message, at)


# Two sessions of p0 in app 0, then a late event within the timeout of both (a merge),
# then one a timeout before the first start (a move).
FIXED = History(BASES[0], (event(T, "a"), event(T + 2 * TAU, "b"), event(T + TAU, "c"),
                           event(T - TAU, "d")), BASES[0] + 3 * 24 * HOUR)
FIXED_REPLAYS = [
    [[FIXED.items[0], FIXED.items[1]], [FIXED.items[2]], [FIXED.items[3]]],  # late: merge, move
    [list(FIXED.items)],  # all at once
]


def resolve_ignoring_merges(stored, times, timeout_us):
    """A mutant of ``sessionize.resolve``: new times extend or move the stored session they
    reach first, but a stored session is never joined to another."""
    parts: list[tuple[list[sessionize.Interval], list[sessionize.Activity]]] = [
        ([iv], []) for iv in sorted(stored)]
    alone: list[sessionize.Activity] = []
    for activity in times:
        near = next((p for p in parts if p[0][0].started_at - timeout_us <= activity.at
                     <= p[0][0].ended_at + timeout_us), None)
        (near[1] if near else alone).append(activity)
    changes = sessionize.Changes([], [])
    for part_stored, part_times in [*parts, ([], alone)]:
        if part_times:
            found = sessionize.resolve(part_stored, part_times, timeout_us)
            changes.removed.extend(found.removed)
            changes.added.extend(found.added)
    return changes


def window_missing_later_sessions(times, timeout_us):
    """A mutant of ``sessionize.window``: the read stops at the batch's last time, so a
    session that starts just after a late event is not seen (its start does not move)."""
    lo, _ = sessionize.window(times, timeout_us)
    return lo, max(a.at for a in times)


@pytest.mark.parametrize("send", [send_to_store, send_to_service], ids=["store", "service"])
def test_the_fixed_example_passes_unmutated(oracle_store, send):
    """The control of the mutation tests below: the same check passes on the code as is."""
    _, store = oracle_store
    check(store, service_at(store, FIXED.now_us), FIXED, FIXED_REPLAYS, send)


@pytest.mark.parametrize(
    ("target", "mutant"),
    [("resolve", resolve_ignoring_merges), ("window", window_missing_later_sessions)],
    ids=["merges-ignored", "start-does-not-move"],
)
def test_the_oracle_catches_a_planted_mutation(oracle_store, monkeypatch, target, mutant):
    """With the mutant in place of the store's step, the series alone (not just the
    derived sessions) no longer match the model."""
    _, store = oracle_store
    monkeypatch.setattr(derived, target, mutant)
    with pytest.raises(AssertionError) as caught:
        check(store, service_at(store, FIXED.now_us), FIXED, FIXED_REPLAYS, send_to_store, sessions=False)
    print(f"mutant {mutant.__name__} caught: {str(caught.value).splitlines()[0]}")
