"""The KPI oracle (issue 18 item 2; CONTRACT section 12): DAU, MAU, new users and
uninstalls do not depend on the order or batching in which sessions and events arrived.

A history is a set of recorded sessions (``Store.record_sessions``, person =
``external_id``) and tracked events (``Store.record_events``, person = anonymousId else
userId, already resolved in ``NewEvent.person``) of a few persons, some of them in both
ways in, in two apps whose session timeouts differ (1800 s and 600 s), over about two
months around a DST change of America/New_York (the workspace's zone), many of them
minutes from a local midnight. Extra items are added late on purpose: before a person's
first session (its first day moves), in a gap of more than 30 days (MAU's window fills),
and on a day already counted (nothing changes); some items are sent twice. Each history
is replayed in several random orders and batchings, each into a workspace of its own, on
both engines; after each, every KPI series (all apps and each app, over the whole range)
must equal a brute force written here from the definitions, sharing no code with the
implementation (no ``kpi``, no ``sessionize``); then the last workspace's zone changes
(``Store.change_time_zone``) and every series must be the brute force's in the new zone:

* dedup events per (app, messageId), recorded sessions per session id;
* a person's sessions in an app: its distinct activity (track/page/screen) times, cut
  where a gap exceeds the app's timeout; each starts at its first time; recorded
  sessions start at their ``started_at``;
* a person is active on the local dates (``astimezone``) its sessions start;
* DAU(d): persons active on d; MAU(d): persons active in d-29..d; new users(d): persons
  whose earliest active day is d; uninstalls(d): ``Application Uninstalled`` track
  events on d.

Planted mutations (below) show that the check fails when the upkeep is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import oracle_tenants
import pytest
from db_support import ENGINES, open_test_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_tenants import Tenant

from sessiontally import kpi
from sessiontally.store import kpis
from sessiontally.store.base import NewEvent, NewSession, Store

S = 1_000_000
MINUTE = 60 * S
HOUR = 3600 * S
DAY = 24 * HOUR
ZONE = "America/New_York"
TIMEOUTS_S = (1800, 600)  # app 0, app 1
PERSONS = ("p0", "p1", "p2", "p3")
UNINSTALL = "Application Uninstalled"  # (spelled out here: not kpi.UNINSTALL_EVENT)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 2025-10-20 00:00Z; New York falls back on 2025-11-02 at 06:00Z.
ORIGIN = int(datetime(2025, 10, 20, tzinfo=UTC).timestamp()) * S
# Times of day (UTC) around New York's midnights: 04:00Z in EDT, 05:00Z in EST.
TIMES_OF_DAY = (4 * HOUR - 10 * MINUTE, 4 * HOUR - 1, 4 * HOUR, 4 * HOUR + 5 * MINUTE,
                5 * HOUR - 10 * MINUTE, 5 * HOUR - 1, 5 * HOUR, 5 * HOUR + 5 * MINUTE, 16 * HOUR)
DAYS = (0, 1, 2, 13, 14, 15, 28, 29, 30, 31, 45)  # day offsets near the MAU window's edges
DEDUP_TYPES = ("track", "track", "track", "page", "screen", "identify")


# --------------------------------------------------------------------------- histories


@dataclass(frozen=True)
class Event:
    app: int  # 0 or 1
    event: NewEvent


@dataclass(frozen=True)
class Recorded:
    app: int
    session: NewSession  # its app_key is set when replayed


Item = Event | Recorded


@dataclass(frozen=True)
class History:
    items: tuple[Item, ...]  # the base items, then repeats
    late: tuple[Item, ...]  # items meant to arrive after the others (they need not)

    @property
    def every(self) -> tuple[Item, ...]:
        return self.items + self.late


def at_of(item: Item) -> int:
    return item.event.occurred_at if isinstance(item, Event) else item.session.started_at


def person_of(item: Item) -> str:
    return item.event.person if isinstance(item, Event) else item.session.external_id


def gaps(app: int) -> st.SearchStrategy[int]:
    t = TIMEOUTS_S[app] * S
    return st.one_of(
        st.sampled_from([t - 1, t, t + 1, t // 2 + 1, 600 * S + 1, 1800 * S + 1, 40 * MINUTE]),
        st.sampled_from([DAY, 29 * DAY, 30 * DAY, 31 * DAY]),
        st.integers(1, 3 * t),
    )


def anchors() -> st.SearchStrategy[int]:
    return st.builds(lambda d, t: ORIGIN + d * DAY + t,
                     st.one_of(st.sampled_from(DAYS), st.integers(0, 50)),
                     st.one_of(st.sampled_from(TIMES_OF_DAY), st.integers(0, DAY - 1)))


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def new_event(draw, ids: Ids, app: int, person: str, at: int, type_: str | None = None) -> Event:
    type_ = type_ or draw(st.sampled_from(DEDUP_TYPES))
    name = draw(st.sampled_from(["Opened", "Opened", UNINSTALL])) if type_ == "track" else None
    user_id = draw(st.sampled_from([None, "u1", person]))
    return Event(app, NewEvent(ids("m"), type_, name, person, user_id, at, at))


def new_recorded(ids: Ids, app: int, person: str, at: int) -> Recorded:
    return Recorded(app, NewSession(ids("s"), person, 0, at, None))


@st.composite
def histories(draw) -> History:
    ids = Ids()
    items: list[Item] = []
    for app in (0, 1):
        for person in draw(st.lists(st.sampled_from(PERSONS), min_size=1, max_size=3, unique=True)):
            at = draw(anchors())
            for step in range(draw(st.integers(1, 6))):
                at += draw(gaps(app)) if step else 0
                items.append(new_event(draw, ids, app, person, at))
    for _ in range(draw(st.integers(0, 4))):
        items.append(new_recorded(ids, draw(st.integers(0, 1)), draw(st.sampled_from(PERSONS)),
                                  draw(anchors())))
    # Late on purpose, next to an item already there: before it (a person's first day
    # moves), 15 days after it (in a gap of a 30-day window), or the same local day.
    late: list[Item] = []
    for _ in range(draw(st.integers(0, 4))):
        near = draw(st.sampled_from(items))
        shift = draw(st.sampled_from([-DAY, -2 * DAY, -31 * DAY, -20 * MINUTE, -1, 15 * DAY, HOUR, 2 * HOUR]))
        app = draw(st.sampled_from([near.app, 1 - near.app]))
        at = at_of(near) + shift
        late.append(new_event(draw, ids, app, person_of(near), at, "track") if draw(st.booleans())
                    else new_recorded(ids, app, person_of(near), at))
    repeats = draw(st.lists(st.sampled_from(items + late), max_size=4))
    return History(tuple(items + repeats), tuple(late))


def _chains(items: Sequence[Item]) -> list[list[Item]]:
    chains: dict[tuple[int, str], list[Item]] = {}
    for item in sorted(items, key=at_of):
        chains.setdefault((item.app, person_of(item)), []).append(item)
    return list(chains.values())


def evens_then_odds(history: History) -> list[list[Item]]:
    chains = _chains(history.every)
    return [[i for c in chains for i in c[::2]], [i for c in chains for i in c[1::2]]]


# Orders that make late arrivals common, as parts (a batch never spans two parts).
ORDERS: dict[str, Callable[[History], list[list[Item]]]] = {
    "in time order": lambda h: [sorted(h.every, key=at_of)],
    "reverse time order": lambda h: [sorted(h.every, key=at_of, reverse=True)],
    "late ones last": lambda h: [list(h.items), list(h.late)],
    "evens then odds": evens_then_odds,
}


@st.composite
def orderings(draw, history: History, count: int) -> list[list[list[Item]]]:
    replays = []
    for _ in range(count):
        how = draw(st.sampled_from(["random", "random", "late ones last", *ORDERS]))
        if how == "random":
            parts = [draw(st.permutations(history.every))]
        else:
            parts = [draw(st.permutations(part)) if how == "late ones last" else part
                     for part in ORDERS[how](history)]
        batches = []
        for order in parts:
            cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=6)))
            edges = [0, *cuts, len(order)]
            batches += [order[a:b] for a, b in zip(edges, edges[1:], strict=False) if a < b]
        replays.append(batches)
    return replays


# ------------------------------------------------------------------- the brute force


def local_date(at: int, zone: str = ZONE) -> int:
    """The local date in ``zone`` of an instant, as days since 1970-01-01."""
    moment = (EPOCH + timedelta(microseconds=at)).astimezone(ZoneInfo(zone))
    return moment.date().toordinal() - date(1970, 1, 1).toordinal()


@dataclass
class Truth:
    days: dict[int | None, dict[str, set[int]]]  # scope (app 0/1, None = all) -> person -> days
    uninstalls: dict[int | None, dict[int, int]]  # scope -> day -> events

    @classmethod
    def of(cls, items: Sequence[Item], zone: str = ZONE) -> Truth:
        events: dict[tuple[int, str], NewEvent] = {}
        sessions: dict[str, Recorded] = {}
        for item in items:
            if isinstance(item, Event):
                events.setdefault((item.app, item.event.message_id), item.event)
            else:
                sessions.setdefault(item.session.session_id, item)
        times: dict[tuple[int, str], set[int]] = {}
        starts: list[tuple[int, str, int]] = []
        uninstalls: dict[int | None, dict[int, int]] = {0: {}, 1: {}, None: {}}
        for (app, _), e in events.items():
            if e.type in ("track", "page", "screen"):
                times.setdefault((app, e.person), set()).add(e.occurred_at)
            if e.type == "track" and e.event == UNINSTALL:
                for scope in (app, None):
                    day = local_date(e.occurred_at, zone)
                    uninstalls[scope][day] = uninstalls[scope].get(day, 0) + 1
        for (app, person), found in times.items():
            ordered = sorted(found)
            for i, t in enumerate(ordered):
                if i == 0 or t - ordered[i - 1] > TIMEOUTS_S[app] * S:
                    starts.append((app, person, t))
        starts += [(r.app, r.session.external_id, r.session.started_at) for r in sessions.values()]
        days: dict[int | None, dict[str, set[int]]] = {0: {}, 1: {}, None: {}}
        for app, person, t in starts:
            for scope in (app, None):
                days[scope].setdefault(person, set()).add(local_date(t, zone))
        return cls(days, uninstalls)

    def series(self, scope: int | None, kind: str, first: int, last: int) -> list[int]:
        days = self.days[scope].values()
        if kind == "dau":
            return [sum(d in mine for mine in days) for d in range(first, last + 1)]
        if kind == "mau":
            return [sum(any(d - 29 <= x <= d for x in mine) for mine in days) for d in range(first, last + 1)]
        if kind == "new_users":
            return [sum(min(mine) == d for mine in days) for d in range(first, last + 1)]
        return [self.uninstalls[scope].get(d, 0) for d in range(first, last + 1)]


# ---------------------------------------------------------------------------- replay


def new_tenant(store: Store) -> Tenant:
    return oracle_tenants.new_tenant(store, ZONE, TIMEOUTS_S)


def replay(store: Store, batches: Sequence[Sequence[Item]]) -> Tenant:
    tenant = new_tenant(store)
    w = tenant.workspace.workspace_id
    now = ORIGIN + 400 * DAY
    for batch in batches:
        for app in (0, 1):
            events = [i.event for i in batch if isinstance(i, Event) and i.app == app]
            if events:
                store.record_events(w, tenant.apps[app], events, now)
        sessions = [i.session._replace(app_key=tenant.apps[i.app].app_key)
                    for i in batch if isinstance(i, Recorded)]
        if sessions:
            store.record_sessions(w, sessions)
    return tenant


KIND_NAMES = {"dau": kpi.DAU, "mau": kpi.MAU, "new_users": kpi.NEW_USERS, "uninstalls": kpi.UNINSTALLS}


def check_tenant(store: Store, tenant: Tenant, truth: Truth, first: int, last: int) -> None:
    for scope in (None, 0, 1):
        app_key = 0 if scope is None else tenant.apps[scope].app_key
        for name, kind in KIND_NAMES.items():
            got = store.kpi_series(tenant.workspace.workspace_id, app_key, kind, first, last)
            want = truth.series(scope, name, first, last)
            if got != want:
                day = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
                raise AssertionError(f"{name} of {'all apps' if scope is None else f'app {scope}'} "
                                     f"differs from day {kpi.day_label(first + day)}: "
                                     f"got {got[day]}, want {want[day]}")


def check(store: Store, history: History, replays: Sequence[Sequence[Sequence[Item]]],
          new_zone: str | None = None) -> None:
    """Replay ``history`` as each of ``replays`` into a workspace of its own; every KPI
    series must be the brute force's. Then, with ``new_zone``, the last workspace's zone
    changes: every series must be the brute force's in that zone."""
    times = [at_of(item) for item in history.every]

    def expect(zone: str) -> tuple[Truth, int, int]:
        first, last = local_date(min(times), zone) - 2, local_date(max(times), zone) + 32
        return Truth.of(history.every, zone), first, last

    tenants = [replay(store, batches) for batches in replays]
    for tenant in tenants:
        check_tenant(store, tenant, *expect(ZONE))
    if new_zone is not None:
        store.change_time_zone(tenants[-1].workspace.workspace_id, new_zone)
        check_tenant(store, tenants[-1], *expect(new_zone))


# ------------------------------------------------------------------------ the oracle


@pytest.fixture(scope="module", params=ENGINES)
def oracle_store(request, tmp_path_factory):
    with open_test_store(request.param, tmp_path_factory.mktemp("kpi-oracle")) as opened:
        yield request.param, opened


EXAMPLES = {"sqlite": 150, "postgres": 80, "citus": 30}  # ~25 s, ~35 s and ?
ORDERINGS = 3
NEW_ZONES = ("Asia/Kathmandu", "Australia/Lord_Howe", "America/Los_Angeles", "UTC")


def test_kpis_do_not_depend_on_order_or_batching(oracle_store):
    engine, store = oracle_store

    @settings(max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        history = data.draw(histories(), label="history")
        replays = data.draw(orderings(history, ORDERINGS), label="orderings")
        check(store, history, replays, data.draw(st.sampled_from(NEW_ZONES), label="new zone"))

    run()


# ---------------------------------------------------------------- planted mutations


def local_time(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(ZONE)).timestamp()) * S


def track(message_id: str, person: str, text: str, app: int = 0, name: str = "Opened") -> Event:
    at = local_time(text)
    return Event(app, NewEvent(message_id, "track", name, person, None, at, at))


def recorded(session_id: str, person: str, text: str, app: int = 0) -> Recorded:
    return Recorded(app, NewSession(session_id, person, 0, local_time(text), None))


# p0: recorded sessions on Nov 20, then (late) Nov 3: its first day moves and the earlier
# day's MAU stops where the later day's begins. p1: a derived session from 00:10 on Nov 2
# (the fall-back day), then (late) an event at 23:50 on Nov 1: the start, and p1's day,
# move back. p2: sessions at 23:40 and 00:20 across a midnight, then (late) one at 00:00
# merging them. p3: a second session on a day already counted, then an uninstall.
FIXED_LATE = (
    recorded("a", "p0", "2025-11-03T12:00"),
    track("b2", "p1", "2025-11-01T23:50"),
    track("c3", "p2", "2025-11-05T00:00"),
    recorded("d2", "p3", "2025-11-06T18:00"),
    track("d3", "p3", "2025-11-07T01:00", app=1, name=UNINSTALL),
)
FIXED_FIRST = (
    recorded("z", "p0", "2025-11-20T12:00"),
    track("b1", "p1", "2025-11-02T00:10"),
    track("c1", "p2", "2025-11-04T23:40"),
    track("c2", "p2", "2025-11-05T00:20"),
    recorded("d1", "p3", "2025-11-06T09:00", app=1),
)
FIXED = History(FIXED_FIRST, FIXED_LATE)
FIXED_REPLAYS = [
    [list(FIXED_FIRST), list(FIXED_LATE)],  # late ones late
    [[item] for item in reversed(FIXED.every)],  # one at a time, late ones first
    [list(FIXED.every)],  # all at once
]

original_mau_span = kpi.mau_span
original_new_user_changes = kpi.new_user_changes
original_upkeep = kpis.upkeep


def mau_ignoring_next(day, around):
    """A mutant of ``kpi.mau_span``: MAU as if no later active day covered the window."""
    return original_mau_span(day, kpi.Neighbours(around.previous, None))


def upkeep_ignoring_removals(tx, workspace_id, zone, starts):
    """A mutant of ``kpis.upkeep``: derived sessions that stop counting (moved or merged
    away, sign -1) are not taken off their days."""
    original_upkeep(tx, workspace_id, zone, [s for s in starts if s[3] > 0])


def new_users_not_moved(day, around, sign):
    """A mutant of ``kpi.new_user_changes``: a new first day does not take the person off
    the old first day's new users."""
    changes = original_new_user_changes(day, around, sign)
    return changes[:1] if sign > 0 else changes


def new_users_not_given_back(day, around, sign):
    """A mutant of ``kpi.new_user_changes``: when the first day goes, the next day does
    not become the first again."""
    changes = original_new_user_changes(day, around, sign)
    return changes[:1] if sign < 0 else changes


def test_the_fixed_example_passes_unmutated(oracle_store):
    """The control of the mutation tests: the same check passes on the code as is."""
    _, store = oracle_store
    check(store, FIXED, FIXED_REPLAYS)


@pytest.mark.parametrize(
    ("target", "name", "mutant"),
    [(kpi, "mau_span", mau_ignoring_next),
     (kpis, "upkeep", upkeep_ignoring_removals),
     (kpi, "new_user_changes", new_users_not_moved)],
    ids=["mau-ignores-next", "derived-removals-ignored", "new-users-not-moved"],
)
def test_the_oracle_catches_a_planted_mutation(oracle_store, monkeypatch, target, name, mutant):
    """With the mutant in place of the step (where ``kpi.DayChanges``, store/kpis.py and
    store/derived.py look it up), the KPI series no longer match the brute force."""
    _, store = oracle_store
    monkeypatch.setattr(target, name, mutant)
    with pytest.raises(AssertionError) as caught:
        check(store, FIXED, FIXED_REPLAYS)
    print(f"mutant {mutant.__name__} caught: {caught.value}")


def test_a_first_day_never_given_back_is_caught_by_the_pure_property(monkeypatch):
    """The give-back of new users (a first day that goes makes the next day first again)
    is unreachable through the store as it is: a derived start only ever moves earlier,
    and ``kpis.upkeep`` applies a batch's days in increasing order, so the earlier day
    is active before the old first day goes (which is then no longer first). The pure
    property of ``tests/test_kpi.py`` catches the mutant instead."""
    from test_kpi import test_activations_in_any_order_add_up_to_the_brute_force_of_the_final_sets as prop

    monkeypatch.setattr(kpi, "new_user_changes", new_users_not_given_back)
    with pytest.raises(AssertionError) as caught:
        prop()
    print(f"mutant {new_users_not_given_back.__name__} caught: {str(caught.value).splitlines()[0]}")
