"""The oracle of segment counting: random histories against a brute-force model.

A history interleaves, in one workspace whose zone is America/New_York:

* attribute updates of a few users (country, plan, age, signup datetime, tags, vip; values
  of the wrong type now and then; removals with null; ``_update_existing_only``),
* batches of sessions of those users (and of a user who never gets attributes) at random
  instants of a 10-day window that holds the spring-forward of 2025-03-09, with session
  ids drawn from a small pool so that ids recur, and whole batches re-sent,
* segment analytics tracking turned on and off.

Everything goes through ``Service.track_users``, ``Service.record_items`` and
``admin.set_segment_analytics``; the series come from ``Service.data_series``. The model
keeps each user's attributes, evaluates every filter with a small evaluator of its own
(``segment_support.reference_match``, not ``segments.py``) when a new session is
recorded, for the segments tracked at that moment only, and counts per local day with
``zoneinfo``.
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from db_support import ENGINES, open_test_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_support import FakeClock, filter_trees, new_workspace, reference_match, service_for

from sessiontally import admin
from sessiontally.api.errors import error_body, status_of
from sessiontally.errors import SessiontallyError

ZONE_NAME = "America/New_York"
ZONE = ZoneInfo(ZONE_NAME)
WINDOW_START = datetime(2025, 3, 4, tzinfo=ZONE)  # local midnight
WINDOW_SECONDS = 10 * 86_400 - 3_600  # 10 local days; 2025-03-09 has 23 hours
CLOCK = datetime(2025, 3, 20, tzinfo=UTC).timestamp()
ENDING_AT = "2025-03-14"
LENGTH = 12  # 2025-03-03 .. 2025-03-14: one empty day on each side of the window
DAYS = [(date(2025, 3, 14) - timedelta(days=LENGTH - 1 - i)).isoformat() for i in range(LENGTH)]

USERS = ("ann", "bob", "cat", "dan")
STRANGER = "eve"  # sessions, never attributes
UNTRACKED_MESSAGE = "'segment_id' names a segment whose analytics tracking is off"

# ----------------------------------------------------------------------------- values

SIGNUPS = [datetime(2024, 12, 31, 23, tzinfo=UTC) + timedelta(hours=7 * i) for i in range(12)]
OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-4))]


@st.composite
def signup_value(draw) -> Any:
    """A datetime as a client sends it: ISO-8601 with an offset, or {"$time": ...}."""
    moment = draw(st.sampled_from(SIGNUPS)).astimezone(draw(st.sampled_from(OFFSETS)))
    text = moment.isoformat()
    if draw(st.booleans()):
        return {"$time": text}
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


ATTRIBUTE_VALUES = {
    "country": st.sampled_from(["US", "FR", "DE", "USA", "us"]) | st.just(5),
    "plan": st.sampled_from(["free", "pro", "team"]),
    "age": st.integers(15, 70) | st.sampled_from([30.5, 40.0, 18.25]),
    "signup": signup_value(),
    "tags": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    "vip": st.booleans(),
}


@st.composite
def attribute_update(draw) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(ATTRIBUTE_VALUES)), min_size=1, max_size=4, unique=True))
    update: dict[str, Any] = {"external_id": draw(st.sampled_from(USERS))}
    for name in names:
        update[name] = None if draw(st.integers(0, 4)) == 0 else draw(ATTRIBUTE_VALUES[name])
    if draw(st.integers(0, 5)) == 0:
        update["_update_existing_only"] = True
    return update


# ---------------------------------------------------------------------------- filters


def filter_time(draw) -> Any:
    moment = draw(st.sampled_from(SIGNUPS))
    return draw(st.sampled_from([
        {"$time": moment.isoformat()},
        {"$time": moment.strftime("%Y-%m-%dT%H:%M:%S")},  # no offset: UTC
        moment.astimezone(OFFSETS[1]).isoformat(),  # a string with an offset: also a datetime
    ]))


@st.composite
def condition(draw) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(ATTRIBUTE_VALUES)))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return {"attribute": name, "op": draw(st.sampled_from(["exists", "not_exists"]))}
    if name == "country":
        op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "starts_with", "contains", "gt", "lt"]))
        if op in ("in", "not_in"):
            value: Any = draw(st.lists(st.sampled_from(["US", "FR", "DE"]), min_size=1, max_size=3))
        elif op in ("starts_with", "contains"):
            value = draw(st.sampled_from(["U", "S", "D", "us"]))
        elif op == "eq" and kind == 1:
            value = 5  # a number: matches only the users whose country is the number 5
        else:
            value = draw(st.sampled_from(["US", "FR", "DE", "G"]))
    elif name == "plan":
        op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "gte", "lt"]))
        choices = st.sampled_from(["free", "pro", "team", "m"])
        value = draw(st.lists(choices, min_size=1, max_size=2)) if op in ("in", "not_in") else draw(choices)
    elif name == "age":
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in"]))
        numbers = st.integers(15, 70) | st.sampled_from([30.5, 40, 40.0])
        value = draw(st.lists(numbers, min_size=1, max_size=3)) if op in ("in", "not_in") else draw(numbers)
    elif name == "signup":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]))
        value = filter_time(draw)
    elif name == "tags":
        op = "contains"
        value = draw(st.sampled_from(["a", "b", "c"]))
    else:
        op = draw(st.sampled_from(["eq", "ne"]))
        value = draw(st.booleans())
    return {"attribute": name, "op": op, "value": value}


filters = filter_trees(condition(), max_leaves=5)

# ------------------------------------------------------------------------ the evaluator


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def model_value(raw: Any) -> tuple[str, Any]:
    """What the model remembers of an attribute value as sent: (type, value)."""
    if isinstance(raw, bool):
        return ("b", raw)
    if isinstance(raw, int | float):
        return ("n", raw)
    if isinstance(raw, list):
        return ("a", tuple(raw))
    if isinstance(raw, dict):
        return ("d", _instant(raw["$time"]))
    if "T" in raw and raw[-1] in "Z0123456789" and ("+" in raw[10:] or "-" in raw[10:] or raw[-1] == "Z"):
        return ("d", _instant(raw))
    return ("s", raw)


def candidates(value: Any) -> list[tuple[str, Any]]:
    """The typed values a filter value compares with."""
    if isinstance(value, str) and not ("T" in value and value[:4].isdigit()):
        return [("s", value)]
    if isinstance(value, str):  # an ISO datetime with an offset: a string and a datetime
        return [("s", value), ("d", _instant(value))]
    return [model_value(value)]


ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def holds(node: dict[str, Any], user: dict[str, tuple[str, Any]]) -> bool:
    return reference_match(node, user, _compare)


def _compare(op: str, kind: str, value: Any, given: Any) -> bool:
    """The typed operators, on the model's values (datetimes as ``datetime``s)."""
    given_values = given if op in ("in", "not_in") else [given]
    same_type = [v for t, v in (c for g in given_values for c in candidates(g)) if t == kind]
    if op in ("eq", "in"):
        return kind != "a" and any(v == value for v in same_type)
    if op in ("ne", "not_in"):
        return bool(same_type) and all(v != value for v in same_type)
    return any(ORDER[op](value, v) for v in same_type)


# ---------------------------------------------------------------------------- the model


@dataclass
class Model:
    users: dict[str, dict[str, tuple[str, Any]]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    tracked: set[int] = field(default_factory=set)
    all_users: Counter[str] = field(default_factory=Counter)
    per_segment: dict[int, Counter[str]] = field(default_factory=dict)

    def update(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            external_id = obj["external_id"]
            if obj.get("_update_existing_only") and external_id not in self.users:
                continue
            attributes = self.users.setdefault(external_id, {})
            for name, raw in obj.items():
                if name in ("external_id", "_update_existing_only"):
                    continue
                if raw is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = model_value(raw)

    def record(self, items: list[dict[str, Any]], segment_filters: list[dict[str, Any]]) -> None:
        for item in items:
            if item["session_id"] in self.seen:
                continue
            self.seen.add(item["session_id"])
            day = _instant(item["started_at"]).astimezone(ZONE).date().isoformat()
            self.all_users[day] += 1
            user = self.users.get(item["external_id"], {})
            for index in self.tracked:
                if holds(segment_filters[index], user):
                    self.per_segment.setdefault(index, Counter())[day] += 1

    def series(self, index: int | None) -> list[int]:
        counts = self.all_users if index is None else self.per_segment.get(index, Counter())
        return [counts[day] for day in DAYS]


# ------------------------------------------------------------------------ the histories


@st.composite
def session_batch(draw, app_id: str) -> list[dict[str, Any]]:
    items = []
    for _ in range(draw(st.integers(1, 6))):
        started = WINDOW_START + timedelta(seconds=draw(st.integers(0, WINDOW_SECONDS - 1)))
        offset = draw(st.sampled_from(OFFSETS))
        items.append({
            "session_id": f"s{draw(st.integers(0, 60))}",
            "external_id": draw(st.sampled_from((*USERS, STRANGER))),
            "app_id": app_id,
            "started_at": started.astimezone(offset).isoformat().replace("+00:00", "Z"),
        })
    return items


def operations(app_id: str, segment_count: int):
    return st.lists(
        st.one_of(
            st.tuples(st.just("attributes"), st.lists(attribute_update(), min_size=1, max_size=3)),
            st.tuples(st.just("attributes"), st.lists(attribute_update(), min_size=1, max_size=3)),
            st.tuples(st.just("sessions"), session_batch(app_id)),
            st.tuples(st.just("sessions"), session_batch(app_id)),
            st.tuples(st.just("resend"), st.integers(0, 100)),
            st.tuples(st.just("tracking"), st.tuples(st.integers(0, segment_count - 1), st.booleans())),
        ),
        min_size=6,
        max_size=40,
    )


@pytest.fixture(scope="module", params=ENGINES)
def oracle_store(request, tmp_path_factory):
    with open_test_store(request.param, tmp_path_factory.mktemp("oracle")) as opened:
        yield request.param, opened


def _series(service, ws, segment_id: str | None) -> list[int]:
    pairs = [("length", str(LENGTH)), ("unit", "day"), ("ending_at", ENDING_AT)]
    if segment_id is not None:
        pairs.append(("segment_id", segment_id))
    points = service.data_series(ws, pairs)
    assert [p["time"] for p in points] == DAYS
    return [p["sessions"] for p in points]


def test_segment_series_match_the_brute_force_model(oracle_store):
    engine, store = oracle_store
    service = service_for(store, FakeClock(CLOCK))
    examples = 400 if engine == "sqlite" else 250

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        ws = new_workspace(store, ZONE_NAME)
        app = admin.create_app(store, ws, "app")
        segment_filters = data.draw(st.lists(filters, min_size=1, max_size=4), label="filters")
        initially = data.draw(st.lists(st.booleans(), min_size=len(segment_filters),
                                       max_size=len(segment_filters)), label="tracked at creation")
        model = Model()
        segments = []
        for index, (filter_json, on) in enumerate(zip(segment_filters, initially, strict=True)):
            segments.append(admin.create_segment(
                store, ws, f"segment {index}", orjson.dumps(filter_json).decode(), analytics=on))
            if on:
                model.tracked.add(index)
        batches: list[list[dict[str, Any]]] = []
        for kind, argument in data.draw(operations(app.app_id, len(segments)), label="operations"):
            if kind == "attributes":
                response = service.track_users(ws, {"attributes": argument})
                assert response == {"message": "success", "attributes_processed": len(argument)}
                model.update(argument)
            elif kind in ("sessions", "resend"):
                if kind == "resend":
                    if not batches:
                        continue
                    argument = batches[argument % len(batches)]
                new = len({i["session_id"] for i in argument} - model.seen)
                result = service.record_items(ws, argument)
                assert (result.recorded, result.duplicates) == (new, len(argument) - new)
                model.record(argument, segment_filters)
                batches.append(argument)
            else:
                index, on = argument
                admin.set_segment_analytics(store, ws, segments[index].segment_id, on)
                (model.tracked.add if on else model.tracked.discard)(index)

        assert _series(service, ws, None) == model.series(None)
        for index, segment in enumerate(segments):
            if index in model.tracked:
                got = _series(service, ws, segment.segment_id)
                assert got == model.series(index), (segment_filters[index], model.users)
            else:
                with pytest.raises(SessiontallyError) as refused:
                    _series(service, ws, segment.segment_id)
                assert (status_of(refused.value), error_body(refused.value)) == (
                    400, {"message": UNTRACKED_MESSAGE})
        # Turning tracking on is not retroactive: the series of every segment is now what
        # it counted while it was tracked, nothing more.
        for index, segment in enumerate(segments):
            admin.set_segment_analytics(store, ws, segment.segment_id, True)
            assert _series(service, ws, segment.segment_id) == model.series(index), segment_filters[index]

    run()


# ------------------------------------------------------------- the evaluator's own tests


def test_model_evaluator_on_named_cases():
    """The model must be right on its own: the contract's rules on a few named cases."""
    user = {
        "country": ("s", "US"),
        "age": ("n", 31),
        "tags": ("a", ("a", "b")),
        "signup": ("d", datetime(2025, 1, 1, tzinfo=UTC)),
        "vip": ("b", True),
    }
    cases = [
        ({"attribute": "country", "op": "eq", "value": "US"}, True),
        ({"attribute": "country", "op": "ne", "value": 5}, False),  # type mismatch: no match
        ({"attribute": "country", "op": "not_in", "value": ["FR"]}, True),
        ({"attribute": "plan", "op": "ne", "value": "pro"}, False),  # missing: no match
        ({"not": {"attribute": "plan", "op": "eq", "value": "pro"}}, True),
        ({"attribute": "plan", "op": "not_exists"}, True),
        ({"attribute": "age", "op": "eq", "value": 31.0}, True),
        ({"attribute": "age", "op": "gt", "value": "30"}, False),
        ({"attribute": "vip", "op": "eq", "value": 1}, False),
        ({"attribute": "tags", "op": "contains", "value": "a"}, True),
        ({"attribute": "tags", "op": "eq", "value": "a"}, False),
        ({"attribute": "country", "op": "contains", "value": "S"}, True),
        ({"attribute": "signup", "op": "eq", "value": "2025-01-01T05:30:00+05:30"}, True),
        ({"attribute": "signup", "op": "lt", "value": {"$time": "2025-01-01T00:00:01"}}, True),
        ({"attribute": "signup", "op": "gte", "value": "2025-01-02"}, False),  # no offset: a string
        ({"any": [{"attribute": "x", "op": "exists"}, {"attribute": "age", "op": "lte", "value": 31}]}, True),
    ]
    for node, expected in cases:
        assert holds(node, user) is expected, node
    assert model_value("2025-06-01T12:00:00+02:00") == ("d", datetime(2025, 6, 1, 10, tzinfo=UTC))
    assert model_value("2025-06-01") == ("s", "2025-06-01")
    assert model_value("USA") == ("s", "USA")
