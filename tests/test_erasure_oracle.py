"""The erasure oracle (issue 20 item 2): after ``Store.erase_user``, every series equals
that of a world where the erased persons never existed.

A history is a sequence of steps in one workspace (America/New_York, two apps whose
session timeouts differ, three tracked segments over the users' attributes): users'
attributes set (``audience.track_users``), recorded sessions, tracking-API messages
(track, with an uninstall among the names, page, screen, identify) of users and of
anonymous ids that carry a userId or none, most within two days of New York's fall-back
(2025-11-02), some weeks away; and erasures of random persons at random points. The
history is replayed into a workspace of its own; a second, fresh workspace gets the same
steps without the erasures and without every step that an erasure removes, computed
here from the definition (sharing no code with the implementation):

* erasing ``u`` at step k erases the persons P = {u} and every person whose messages
  before k (not already erased) carry ``userId`` = u;
* every step before k about a person of P goes: its messages (by person: anonymousId,
  else userId), its recorded sessions (by external id), its attributes; later steps stay.

Then every series of the two workspaces must be equal: sessions per hour and per day in
UTC, America/New_York and Asia/Kolkata, for each app and all apps, all users and each
tracked segment; DAU, MAU, new users and uninstalls for each app and all apps; each
event name's counts by the same buckets, apps and segments; and the list of event names.
On both engines.

Planted mutations (below) show that the comparison fails when erasure forgets the
segment rows, the all-apps rows, the coarse (hour and day) levels, or the anonymous
persons linked by userId.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import oracle_tenants
import pytest
from db_support import ENGINES, open_test_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_tenants import Tenant

from sessiontally import audience, buckets, insights, kpi
from sessiontally.store import erasure
from sessiontally.store.base import NewEvent, NewSession, Store

S = 1_000_000
MINUTE = 60 * S
HOUR = 3600 * S
DAY = 24 * HOUR
ZONE = "America/New_York"
ZONES = ("UTC", ZONE, "Asia/Kolkata")
TIMEOUTS_S = (1800, 600)
USERS = ("u1", "u2", "u3")
ANONYMOUS = ("a1", "a2", "a3")
UNINSTALL = "Application Uninstalled"
NAMES = ("Opened", "Bought", UNINSTALL)
BASE = int(datetime(2025, 11, 2, 6, tzinfo=UTC).timestamp()) * S  # New York falls back
SEGMENTS = (
    '{"attribute": "plan", "op": "eq", "value": "pro"}',
    '{"attribute": "country", "op": "eq", "value": "US"}',
    '{"attribute": "plan", "op": "not_exists"}',
)
# (unit, length, endings relative to BASE): every near step falls inside the hour series,
# every step inside the day series.
SERIES = (("hour", 100, (52 * HOUR, -48 * HOUR)), ("day", 100, (50 * DAY,)))


# --------------------------------------------------------------------------- histories


@dataclass(frozen=True)
class Attributes:
    user: str
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Recorded:
    app: int
    session: NewSession


@dataclass(frozen=True)
class Message:
    app: int
    event: NewEvent


@dataclass(frozen=True)
class Erase:
    person: str


Step = Attributes | Recorded | Message | Erase


def times() -> st.SearchStrategy[int]:
    near = st.integers(-46 * HOUR, 38 * HOUR).map(lambda t: BASE + t)
    far = st.sampled_from([-40 * DAY, -29 * DAY, -15 * DAY, 12 * DAY, 31 * DAY]).map(lambda t: BASE + t)
    return st.one_of(near, near, near, far)


@st.composite
def steps(draw, n: int) -> list[Step]:
    out: list[Step] = []
    for i in range(n):
        kind = draw(st.sampled_from(["attributes", "recorded", "message", "message", "message",
                                     "message", "erase"]))
        if kind == "attributes":
            values = (("plan", draw(st.sampled_from(["pro", "free", None]))),
                      ("country", draw(st.sampled_from(["US", "FR", None]))))
            out.append(Attributes(draw(st.sampled_from(USERS)), values))
        elif kind == "recorded":
            out.append(Recorded(draw(st.integers(0, 1)), NewSession(
                f"s{i}", draw(st.sampled_from(USERS)), 0, draw(times()), None)))
        elif kind == "message":
            person = draw(st.sampled_from(USERS + ANONYMOUS))
            user_id = person if person in USERS else draw(st.sampled_from((None, *USERS)))
            type_ = draw(st.sampled_from(["track", "track", "page", "screen", "identify"]))
            name = draw(st.sampled_from(NAMES)) if type_ == "track" else None
            at = draw(times())
            app = draw(st.integers(0, 1))
            out.append(Message(app, NewEvent(f"m{i}", type_, name, person, user_id, at, at)))
            if draw(st.integers(0, 3)) == 0:  # a second message soon after: sessions merge
                gap = draw(st.sampled_from([TIMEOUTS_S[app] * S, TIMEOUTS_S[app] * S + 1, MINUTE]))
                out.append(Message(app, NewEvent(f"m{i}b", "track", "Opened", person, user_id,
                                                 at + gap, at + gap)))
        else:
            out.append(Erase(draw(st.sampled_from(USERS + USERS + ANONYMOUS))))
    return out


def person_of(step: Step) -> str | None:
    if isinstance(step, Attributes):
        return step.user
    if isinstance(step, Recorded):
        return step.session.external_id
    if isinstance(step, Message):
        return step.event.person
    return None


def without_erased(history: Sequence[Step]) -> list[Step]:
    """The steps of a world where each erased person, up to its erasure, never existed."""
    kept: list[Step | None] = list(history)
    for k, step in enumerate(history):
        if not isinstance(step, Erase):
            continue
        kept[k] = None
        erased = {step.person} | {
            s.event.person for s in kept[:k] if isinstance(s, Message) and s.event.user_id == step.person}
        for i in range(k):
            if kept[i] is not None and person_of(kept[i]) in erased:  # type: ignore[arg-type]
                kept[i] = None
    return [s for s in kept if s is not None]


# ---------------------------------------------------------------------------- replay


def new_tenant(store: Store) -> Tenant:
    return oracle_tenants.new_tenant(store, ZONE, TIMEOUTS_S, SEGMENTS)


def replay(store: Store, steps_: Sequence[Step]) -> Tenant:
    tenant = new_tenant(store)
    w = tenant.workspace.workspace_id
    classify = audience.SegmentClassifier()
    for step in steps_:
        if isinstance(step, Attributes):
            audience.track_users(store, tenant.workspace, {"attributes": [
                {"external_id": step.user, **dict(step.values)}]}, BASE)
        elif isinstance(step, Recorded):
            store.record_sessions(w, [step.session._replace(app_key=tenant.apps[step.app].app_key)], classify)
        elif isinstance(step, Message):
            store.record_events(w, tenant.apps[step.app], [step.event], BASE + 60 * DAY, classify)
        else:
            store.erase_user(w, step.person, classify)
    return tenant


def snapshot(store: Store, tenant: Tenant) -> dict[str, Any]:
    """Every series of the workspace, keyed by what it is."""
    w = tenant.workspace.workspace_id
    names = store.event_names(w, 0, 100)
    found: dict[str, Any] = {"event names": names}
    edges = []
    for unit, length, endings in SERIES:
        for zone in ZONES:
            for ending in endings:
                series = buckets.series(unit, length, (BASE + ending) // S, buckets.load_zone(zone))
                edges.append((f"{unit} {zone} {ending // HOUR}h", insights.quarter_edges(series)[0]))
    for app_key in (0, *(a.app_key for a in tenant.apps)):
        for segment_key in range(len(SEGMENTS) + 1):
            for label, quarters in edges:
                found[f"sessions app {app_key} segment {segment_key} {label}"] = store.count_by_quarters(
                    w, app_key, segment_key, quarters)
                for name in names:
                    key = store.event_name_key(w, name)
                    assert key is not None
                    found[f"{name!r} app {app_key} segment {segment_key} {label}"] = (
                        store.count_events_by_quarters(w, app_key, segment_key, key, quarters))
        first, last = (BASE - 45 * DAY) // DAY, (BASE + 70 * DAY) // DAY
        for kind_name, kind in kpi.KINDS.items():
            found[f"{kind_name} app {app_key}"] = store.kpi_series(w, app_key, kind, first, last)
    return found


def check(store: Store, history: Sequence[Step]) -> None:
    erased_world = snapshot(store, replay(store, history))
    never_existed = snapshot(store, replay(store, without_erased(history)))
    for key, want in never_existed.items():
        got = erased_world[key]
        if got != want:
            raise AssertionError(f"{key}: after erasure {got}, never existed {want}")
    assert erased_world.keys() == never_existed.keys()


# ------------------------------------------------------------------------ the oracle


@pytest.fixture(scope="module", params=ENGINES)
def oracle_store(request, tmp_path_factory):
    with open_test_store(request.param, tmp_path_factory.mktemp("erasure-oracle")) as opened:
        yield request.param, opened


EXAMPLES = {"sqlite": 40, "postgres": 20, "citus": 10}


def test_erasure_leaves_the_series_of_a_world_without_the_person(oracle_store):
    engine, store = oracle_store

    @settings(max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=list(HealthCheck))
    @given(history=st.integers(8, 40).flatmap(steps))
    def run(history: list[Step]) -> None:
        check(store, history)

    run()


# ---------------------------------------------------------------- planted mutations


def message(id_: str, person: str, user_id: str | None, at: int, name: str | None = "Opened",
            app: int = 0) -> Message:
    return Message(app, NewEvent(id_, "track" if name else "page", name, person, user_id, at, at))


# amy (pro, US) and bob (free): recorded sessions in both apps, messages as themselves and
# through anonymous ids linked by userId (one uninstall), near the fall-back and weeks
# before it; then amy is erased, and bob goes on.
FIXED: list[Step] = [
    Attributes("u1", (("plan", "pro"), ("country", "US"))),
    Attributes("u2", (("plan", "free"),)),
    Recorded(0, NewSession("s1", "u1", 0, BASE + 30 * MINUTE, None)),
    Recorded(1, NewSession("s2", "u1", 0, BASE - 29 * DAY, None)),
    Recorded(1, NewSession("s3", "u2", 0, BASE + 2 * HOUR, None)),
    message("m1", "a1", "u1", BASE - 5 * HOUR),
    message("m2", "a1", None, BASE - 5 * HOUR + 10 * MINUTE, None),
    message("m3", "a1", "u1", BASE + 20 * HOUR, UNINSTALL, app=1),
    message("m4", "u1", "u1", BASE + 7 * HOUR, "Bought"),
    message("m5", "a2", "u2", BASE - 5 * HOUR),
    message("m6", "u2", "u2", BASE + 3 * HOUR, "Bought", app=1),
    Erase("u1"),
    message("m7", "a2", "u2", BASE + 30 * HOUR),
]

original_count = erasure._count


def count_all_users_only(deltas, app_key, started_at, segments):
    """A mutant of ``erasure._count``: the tracked segments' rows are forgotten."""
    original_count(deltas, app_key, started_at, ())


def count_own_app_only(deltas, app_key, started_at, segments):
    """A mutant of ``erasure._count``: the all-apps rows are forgotten."""
    scratch: Any = type(deltas)()
    original_count(scratch, app_key, started_at, segments)
    for key, n in scratch.items():
        if key[0] != 0:
            deltas[key] += n


def test_the_fixed_example_passes_unmutated(oracle_store):
    _, store = oracle_store
    check(store, FIXED)


@pytest.mark.parametrize(
    ("name", "mutant"),
    [("_count", count_all_users_only),
     ("_count", count_own_app_only),
     ("coarse_increments", lambda quarters: []),
     ("LINKED_PERSONS", erasure.LINKED_PERSONS + " AND 1 = 0")],
    ids=["forgets-segments", "forgets-all-apps", "forgets-hours-and-days", "forgets-linked-persons"],
)
def test_the_oracle_catches_a_planted_mutation(oracle_store, monkeypatch, name, mutant):
    _, store = oracle_store
    monkeypatch.setattr(erasure, name, mutant)
    with pytest.raises(AssertionError) as caught:
        check(store, FIXED)
    print(f"mutant {name} caught: {caught.value}")
