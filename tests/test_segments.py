"""The segment filter language (sessiontally.segments): parsing, evaluation, JSON, text."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segment_support import filter_trees, reference_match

from sessiontally.attributes import Value, string_instant, to_epoch_micros
from sessiontally.segments import (
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_NODES,
    OPERATORS,
    AllOf,
    AnyOf,
    Condition,
    FilterError,
    Not,
    Time,
    compile_filter,
    describe,
    filter_to_json,
    parse_filter,
    parse_filter_json,
    referenced_attributes,
)


def us(*args: int, tz=UTC) -> int:
    return to_epoch_micros(datetime(*args, tzinfo=tz))


JAN1 = us(2025, 1, 1)
MISSING = object()


def cond(op: str, value=MISSING, attribute: str = "x") -> dict:
    node = {"attribute": attribute, "op": op}
    if value is not MISSING:
        node["value"] = value
    return node


def evaluate(filter, attributes) -> bool:
    """Whether a user with these attributes matches: the node's compiled ``match``."""
    return filter.match(attributes)


def matches(filter_json: dict, attribute_value) -> bool:
    attrs = {} if attribute_value is MISSING else {"x": attribute_value}
    filter = parse_filter(filter_json)
    result = evaluate(filter, attrs)
    assert compile_filter(filter)(attrs) is result
    return result


# Attribute values of every type (t) used across the operator matrix.
S = Value("s", "banana")
S_EMPTY = Value("s", "")
N = Value("n", 10)
N_FLOAT = Value("n", 10.0)
N_HALF = Value("n", 10.5)
B_TRUE = Value("b", True)
B_FALSE = Value("b", False)
D = Value("d", JAN1)
ARR = Value("a", ("x", "banana"))
ARR_EMPTY = Value("a", ())
ALL_TYPES = [S, N, B_TRUE, D, ARR, MISSING]


def _table(op, value, expected_by_attr):
    return [
        pytest.param(cond(op, value), attr, exp, id=f"{op}-{value!r}-{attr!r}")
        for attr, exp in expected_by_attr
    ]


CASES = [
    # ------------------------------------------------------------------ eq
    *_table(
        "eq",
        "banana",
        [
            (S, True),
            (Value("s", "Banana"), False),
            (S_EMPTY, False),
            (N, False),
            (B_TRUE, False),
            (D, False),
            (ARR, False),
            (MISSING, False),
        ],
    ),
    *_table("eq", "", [(S_EMPTY, True), (S, False), (ARR_EMPTY, False), (MISSING, False)]),
    *_table(
        "eq",
        10,
        [
            (N, True),
            (N_FLOAT, True),
            (N_HALF, False),
            (Value("s", "10"), False),
            (B_TRUE, False),
            (D, False),
            (ARR, False),
            (MISSING, False),
        ],
    ),
    *_table("eq", 10.5, [(N_HALF, True), (N, False)]),
    *_table("eq", 1, [(B_TRUE, False), (Value("n", 1), True)]),
    *_table("eq", 0, [(B_FALSE, False), (Value("n", 0.0), True), (Value("n", -0.0), True)]),
    *_table(
        "eq",
        True,
        [
            (B_TRUE, True),
            (B_FALSE, False),
            (Value("n", 1), False),
            (Value("s", "true"), False),
            (MISSING, False),
        ],
    ),
    *_table("eq", False, [(B_FALSE, True), (B_TRUE, False), (Value("n", 0), False), (MISSING, False)]),
    *_table(
        "eq",
        "2025-01-01T00:00:00Z",
        [
            (D, True),
            (Value("d", JAN1 + 1), False),
            (Value("s", "2025-01-01T00:00:00Z"), True),
            (MISSING, False),
        ],
    ),
    *_table("eq", "2025-01-01T02:00:00+02:00", [(D, True), (Value("s", "2025-01-01T00:00:00Z"), False)]),
    *_table("eq", "2024-12-31T19:00:00-05:00", [(D, True)]),
    *_table("eq", "2025-01-01", [(D, False), (Value("s", "2025-01-01"), True)]),
    *_table(
        "eq",
        {"$time": "2025-01-01"},
        [(D, True), (Value("s", "2025-01-01"), False), (Value("n", JAN1), False), (MISSING, False)],
    ),
    *_table("eq", {"$time": "2025-01-01T05:30:00+05:30"}, [(D, True)]),
    # ------------------------------------------------------------------ ne
    *_table(
        "ne",
        "banana",
        [
            (S, False),
            (Value("s", "apple"), True),
            (S_EMPTY, True),
            (N, False),
            (B_TRUE, False),
            (D, False),
            (ARR, False),
            (MISSING, False),
        ],
    ),
    *_table(
        "ne",
        10,
        [
            (N, False),
            (N_FLOAT, False),
            (N_HALF, True),
            (Value("s", "11"), False),
            (B_TRUE, False),
            (MISSING, False),
        ],
    ),
    *_table("ne", True, [(B_TRUE, False), (B_FALSE, True), (Value("n", 0), False), (MISSING, False)]),
    *_table(
        "ne",
        "2025-01-01T00:00:00Z",
        [(D, False), (Value("d", JAN1 - 1), True), (Value("s", "other"), True), (N, False), (MISSING, False)],
    ),
    *_table(
        "ne",
        {"$time": "2025-01-01T01:00:00+01:00"},
        [(D, False), (Value("d", 0), True), (Value("s", "x"), False)],
    ),
    # ------------------------------------------------------------------ ordering: numbers
    *_table("gt", 9, [(N, True), (N_HALF, True), (Value("n", 9), False), (Value("n", 8.99), False)]),
    *_table(
        "gt",
        10,
        [
            (N, False),
            (N_FLOAT, False),
            (N_HALF, True),
            (Value("s", "11"), False),
            (B_TRUE, False),
            (D, False),
            (ARR, False),
            (MISSING, False),
        ],
    ),
    *_table("gte", 10, [(N, True), (N_FLOAT, True), (Value("n", 9.999), False), (MISSING, False)]),
    *_table("lt", 10, [(N, False), (Value("n", 9.5), True), (Value("n", -1e300), True), (MISSING, False)]),
    *_table("lte", 10, [(N, True), (N_HALF, False), (Value("n", -3), True), (S, False), (MISSING, False)]),
    *_table("gt", -0.5, [(Value("n", 0), True), (Value("n", -1), False)]),
    *_table("lt", 0, [(B_FALSE, False), (ARR, False)]),
    *_table("gte", 0, [(B_TRUE, False), (B_FALSE, False), (ARR_EMPTY, False)]),
    *_table("lte", 1, [(B_TRUE, False), (B_FALSE, False), (Value("a", ("1",)), False)]),
    *_table("gte", "", [(S_EMPTY, True), (ARR, False), (B_TRUE, False)]),
    *_table("lte", "zzz", [(S, True), (ARR, False), (B_FALSE, False)]),
    # ------------------------------------------------------------------ ordering: strings (code points)
    *_table(
        "gt",
        "apple",
        [
            (S, True),
            (Value("s", "apple"), False),
            (Value("s", "Zebra"), False),
            (N, False),
            (ARR, False),
            (MISSING, False),
        ],
    ),
    *_table("gte", "banana", [(S, True), (Value("s", "banan"), False), (Value("s", "bananas"), True)]),
    *_table("lt", "cherry", [(S, True), (Value("s", "cherry"), False), (Value("s", "é"), False), (D, False)]),
    *_table("lte", "banana", [(S, True), (S_EMPTY, True), (Value("s", "c"), False), (MISSING, False)]),
    *_table("gt", "10", [(N, False), (Value("s", "9"), True)]),
    # ------------------------------------------------------------------ ordering: datetimes as instants
    *_table(
        "gt",
        "2024-12-31T23:59:59Z",
        [(D, True), (Value("d", us(2024, 12, 31, 23, 59, 59)), False), (MISSING, False)],
    ),
    *_table("gt", "2025-01-01T01:00:00+02:00", [(D, True)]),  # = 2024-12-31T23:00Z
    *_table("gt", "2024-12-31T20:00:00-05:00", [(D, False)]),  # = 2025-01-01T01:00Z
    *_table("gte", "2025-01-01T05:30:00+05:30", [(D, True), (Value("d", JAN1 - 1), False)]),
    *_table("lt", "2025-01-01T00:00:00.000001Z", [(D, True), (Value("d", JAN1 + 1), False)]),
    *_table("lte", "2024-12-31T19:00:00-05:00", [(D, True), (Value("d", JAN1 + 1), False), (N, False)]),
    *_table("gt", {"$time": "2024-12-31"}, [(D, True), (Value("s", "2025"), False), (MISSING, False)]),
    *_table("lt", {"$time": "2025-06-01T00:00:00"}, [(D, True), (Value("d", us(2025, 6, 1)), False)]),
    *_table("gt", "2024-12-31", [(D, False), (Value("s", "2025"), True)]),  # no offset: a string only
    *_table(
        "gt",
        "2024-12-31T00:00:00Z",
        [(Value("s", "2024-12-31T00:00:00Z"), False), (Value("s", "2025"), True)],
    ),
    # ------------------------------------------------------------------ in / not_in
    *_table(
        "in",
        ["apple", "banana"],
        [(S, True), (Value("s", "cherry"), False), (N, False), (ARR, False), (D, False), (MISSING, False)],
    ),
    *_table("in", ["banana"], [(S, True), (ARR, False), (Value("a", ("banana",)), False)]),
    *_table(
        "in",
        [1, 10, 100],
        [
            (N, True),
            (N_FLOAT, True),
            (N_HALF, False),
            (Value("s", "10"), False),
            (B_TRUE, False),
            (MISSING, False),
        ],
    ),
    *_table("in", [10.5, 11], [(N_HALF, True), (N, False)]),
    *_table("in", [True], [(B_TRUE, True), (B_FALSE, False), (Value("n", 1), False)]),
    *_table("in", [False, True], [(B_TRUE, True), (B_FALSE, True), (N, False)]),
    *_table(
        "in",
        ["2025-01-01T01:00:00+01:00", "2026-01-01T00:00:00Z"],
        [(D, True), (Value("d", 0), False), (MISSING, False)],
    ),
    *_table("in", ["2025-01-01", "x"], [(D, False)]),
    *_table(
        "in",
        [{"$time": "1970-01-01"}, {"$time": "2025-01-01"}],
        [(D, True), (Value("d", 0), True), (Value("d", 1), False), (S, False)],
    ),
    *_table(
        "not_in",
        ["apple", "banana"],
        [
            (S, False),
            (Value("s", "cherry"), True),
            (N, False),
            (ARR, False),
            (D, False),
            (B_TRUE, False),
            (MISSING, False),
        ],
    ),
    *_table("not_in", [1, 10], [(N, False), (N_FLOAT, False), (N_HALF, True), (S, False), (MISSING, False)]),
    *_table("not_in", [True], [(B_TRUE, False), (B_FALSE, True), (Value("n", 0), False)]),
    *_table(
        "not_in", ["2025-01-01T00:00:00Z"], [(D, False), (Value("d", 0), True), (S, True), (MISSING, False)]
    ),
    *_table("not_in", [{"$time": "2025-01-01"}], [(D, False), (Value("d", 0), True), (S, False)]),
    # ------------------------------------------------------------------ contains
    *_table(
        "contains",
        "nan",
        [
            (S, True),
            (Value("s", "NAN"), False),
            (S_EMPTY, False),
            (N, False),
            (B_TRUE, False),
            (D, False),
            (ARR, False),
            (MISSING, False),
        ],
    ),
    *_table(
        "contains", "banana", [(S, True), (ARR, True), (Value("a", ("bananas",)), False), (ARR_EMPTY, False)]
    ),
    *_table("contains", "x", [(ARR, True), (Value("s", "xyz"), True), (Value("s", "X"), False)]),
    *_table(
        "contains",
        "",
        [(S, True), (S_EMPTY, True), (ARR, False), (Value("a", ("",)), True), (N, False), (MISSING, False)],
    ),
    *_table("contains", "1", [(Value("n", 1), False), (Value("n", 10), False)]),
    # ------------------------------------------------------------------ starts_with
    *_table(
        "starts_with",
        "ban",
        [
            (S, True),
            (Value("s", "Ban"), False),
            (Value("s", "urban"), False),
            (N, False),
            (B_TRUE, False),
            (D, False),
            (Value("a", ("banana",)), False),
            (MISSING, False),
        ],
    ),
    *_table("starts_with", "", [(S, True), (S_EMPTY, True), (ARR, False), (MISSING, False)]),
    *_table("starts_with", "2025", [(D, False), (Value("s", "2025-01"), True)]),
    # ------------------------------------------------------------------ exists / not_exists
    *_table(
        "exists",
        MISSING,
        [
            (S, True),
            (S_EMPTY, True),
            (N, True),
            (Value("n", 0), True),
            (B_FALSE, True),
            (B_TRUE, True),
            (D, True),
            (ARR, True),
            (ARR_EMPTY, True),
            (MISSING, False),
        ],
    ),
    *_table(
        "not_exists",
        MISSING,
        [
            (S, False),
            (S_EMPTY, False),
            (N, False),
            (B_FALSE, False),
            (D, False),
            (ARR_EMPTY, False),
            (MISSING, True),
        ],
    ),
]


@pytest.mark.parametrize(("filter_json", "attribute", "expected"), CASES)
def test_operator_matrix(filter_json, attribute, expected):
    assert matches(filter_json, attribute) is expected


def test_matrix_covers_every_operator_and_type():
    seen = {
        (case.values[0]["op"], case.values[1].t if isinstance(case.values[1], Value) else "missing")
        for case in CASES
    }
    for op in OPERATORS:
        for kind in ("s", "n", "b", "d", "a", "missing"):
            assert (op, kind) in seen, (op, kind)


@pytest.mark.parametrize(
    "op", ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with"]
)
@pytest.mark.parametrize(
    "value",
    ["banana", 10, True, {"$time": "2025-01-01"}, "2025-01-01T00:00:00Z", ["banana"], [10], ["x", "banana"]],
)
def test_missing_attribute_matches_nothing_but_negation(op, value):
    try:
        filter = parse_filter(cond(op, value))
    except FilterError:
        return  # not a valid combination (covered by the invalid-filter tests)
    assert evaluate(filter, {}) is False
    assert evaluate(filter, {"other": S}) is False
    assert evaluate(parse_filter({"not": cond(op, value)}), {}) is True


def test_not_eq_matches_a_missing_attribute_but_ne_does_not():
    assert matches({"not": cond("eq", "US")}, MISSING) is True
    assert matches(cond("ne", "US"), MISSING) is False
    assert matches({"not": cond("eq", "US")}, Value("n", 5)) is True  # type mismatch, negated
    assert matches(cond("ne", "US"), Value("n", 5)) is False


# ----------------------------------------------------------------------------- datetimes across offsets


@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    st.integers(min_value=-(10**9), max_value=10**9),
)
def test_datetime_comparisons_are_instants_in_any_offset(moment, offset_minutes, delta):
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.astimezone(zone)
    text = local.isoformat()
    assert string_instant(text) == to_epoch_micros(moment)
    attr = Value("d", to_epoch_micros(moment) + delta)
    assert matches(cond("eq", text), attr) is (delta == 0)
    assert matches(cond("ne", text), attr) is (delta != 0)
    assert matches(cond("gt", text), attr) is (delta > 0)
    assert matches(cond("gte", text), attr) is (delta >= 0)
    assert matches(cond("lt", text), attr) is (delta < 0)
    assert matches(cond("lte", text), attr) is (delta <= 0)
    assert matches(cond("in", [text]), attr) is (delta == 0)
    assert matches(cond("gt", {"$time": text}), attr) is (delta > 0)


# ----------------------------------------------------------------------------- combinators


US = cond("eq", "US", "country")
PRO = cond("in", ["pro", "team"], "plan")
ADULT = cond("gte", 18, "age")
USER = {"country": Value("s", "US"), "plan": Value("s", "free"), "age": Value("n", 31)}


@pytest.mark.parametrize(
    ("filter_json", "expected"),
    [
        ({"all": [US]}, True),
        ({"all": [US, ADULT]}, True),
        ({"all": [US, PRO]}, False),
        ({"all": [US, ADULT, PRO]}, False),
        ({"all": [US, ADULT, ADULT, US]}, True),
        ({"any": [PRO]}, False),
        ({"any": [US, PRO]}, True),
        ({"any": [PRO, US]}, True),
        ({"any": [PRO, PRO, PRO]}, False),
        ({"any": [PRO, PRO, ADULT]}, True),
        ({"not": US}, False),
        ({"not": PRO}, True),
        ({"not": {"not": US}}, True),
        ({"not": {"all": [US, PRO]}}, True),
        ({"all": [US, {"not": PRO}]}, True),
        ({"any": [{"all": [US, PRO]}, {"all": [ADULT, {"not": PRO}]}]}, True),
        ({"all": [{"any": [PRO, cond("exists", attribute="email")]}, US]}, False),
        ({"all": [cond("not_exists", attribute="email"), {"not": cond("eq", "x", "email")}]}, True),
    ],
)
def test_combinators(filter_json, expected):
    assert evaluate(parse_filter(filter_json), USER) is expected


def test_all_and_any_short_circuit_in_order():
    calls = []

    class Spy:  # a filter node whose compiled match records its answers
        def __init__(self, result):
            def match(values):
                calls.append(result)
                return result

            self.match = match

    assert compile_filter(AllOf((Spy(True), Spy(False), Spy(True))))({}) is False
    assert calls == [True, False]
    calls.clear()
    assert compile_filter(AnyOf((Spy(False), Spy(True), Spy(False))))({}) is True
    assert calls == [False, True]


# ----------------------------------------------------------------------------- invalid filters


INVALID = [
    # shapes
    (
        None,
        'filter: must be an object: {"attribute": ..., "op": ..., "value": ...}, {"all": [...]}, '
        '{"any": [...]} or {"not": {...}}',
    ),
    (
        [US],
        'filter: must be an object: {"attribute": ..., "op": ..., "value": ...}, {"all": [...]}, '
        '{"any": [...]} or {"not": {...}}',
    ),
    (
        "country = US",
        'filter: must be an object: {"attribute": ..., "op": ..., "value": ...}, {"all": [...]}, '
        '{"any": [...]} or {"not": {...}}',
    ),
    (
        {},
        'filter: must not be empty; expected {"attribute": ..., "op": ..., "value": ...}, {"all": [...]}, '
        '{"any": [...]} or {"not": {...}}',
    ),
    (
        {"or": [US]},
        'filter: unknown key \'or\'; expected {"attribute": ..., "op": ..., "value": ...}, '
        '{"all": [...]}, {"any": [...]} or {"not": {...}}',
    ),
    (
        {"all": [US], "any": [US]},
        "filter: must have exactly one of 'attribute', 'all', 'any' or 'not' (found 'all', 'any')",
    ),
    (
        {**US, "not": US},
        "filter: must have exactly one of 'attribute', 'all', 'any' or 'not' (found 'attribute', 'not')",
    ),
    ({"all": [US], "op": "eq"}, "filter: unknown key 'op' next to 'all'"),
    ({"not": US, "value": 1}, "filter: unknown key 'value' next to 'not'"),
    ({"all": []}, "filter.all: must hold at least one filter"),
    ({"any": []}, "filter.any: must hold at least one filter"),
    ({"all": US}, "filter.all: must be an array of filters"),
    ({"any": None}, "filter.any: must be an array of filters"),
    (
        {"not": None},
        'filter.not: must be an object: {"attribute": ..., "op": ..., "value": ...}, '
        '{"all": [...]}, {"any": [...]} or {"not": {...}}',
    ),
    (
        {"not": [US]},
        'filter.not: must be an object: {"attribute": ..., "op": ..., "value": ...}, '
        '{"all": [...]}, {"any": [...]} or {"not": {...}}',
    ),
    (
        {"all": [US, US, "x"]},
        'filter.all[2]: must be an object: {"attribute": ..., "op": ..., "value": ...}, '
        '{"all": [...]}, {"any": [...]} or {"not": {...}}',
    ),
    (
        {"any": [{"not": {"all": [US, {}]}}]},
        'filter.any[0].not.all[1]: must not be empty; expected {"attribute": ..., "op": ..., "value": ...}, '
        '{"all": [...]}, {"any": [...]} or {"not": {...}}',
    ),
    # conditions
    ({**US, "values": 1}, "filter: unknown key 'values'; a condition has 'attribute', 'op' and 'value'"),
    ({"attribute": None, "op": "eq", "value": 1}, "filter.attribute: the attribute name must be strings"),
    ({"attribute": 5, "op": "eq", "value": 1}, "filter.attribute: the attribute name must be strings"),
    (
        {"attribute": "", "op": "eq", "value": 1},
        "filter.attribute: the attribute name must be 1 to 255 characters",
    ),
    (
        {"attribute": "a" * 256, "op": "exists"},
        "filter.attribute: the attribute name must be 1 to 255 characters",
    ),
    ({"attribute": "$x", "op": "exists"}, "filter.attribute: the attribute name must not start with '$'"),
    (
        {"attribute": "a\nb", "op": "exists"},
        "filter.attribute: the attribute name must not contain control characters",
    ),
    (
        {"attribute": "x"},
        "filter.op: is required (one of eq, ne, gt, gte, lt, lte, in, not_in, contains, "
        "starts_with, exists, not_exists)",
    ),
    (
        {"attribute": "x", "op": None},
        "filter.op: is required (one of eq, ne, gt, gte, lt, lte, in, not_in, "
        "contains, starts_with, exists, not_exists)",
    ),
    ({"attribute": "x", "op": 1}, "filter.op: must be a string"),
    (
        {"all": [US, US, {"attribute": "x", "op": "equals", "value": 1}]},
        "filter.all[2].op: unknown operator 'equals' (expected one of eq, ne, gt, gte, lt, lte, in, not_in, "
        "contains, starts_with, exists, not_exists)",
    ),
    (
        {"attribute": "x", "op": "EQ", "value": 1},
        "filter.op: unknown operator 'EQ' (expected one of eq, ne, gt, gte, lt, lte, in, not_in, "
        "contains, starts_with, exists, not_exists)",
    ),
    # values: presence
    (cond("eq"), "filter.value: is required for 'eq'"),
    (cond("in"), "filter.value: is required for 'in'"),
    (cond("contains"), "filter.value: is required for 'contains'"),
    (cond("exists", True), "filter.value: 'exists' takes no value"),
    (cond("not_exists", None), "filter.value: 'not_exists' takes no value"),
    (cond("eq", None), "filter.value: must not be null (test presence with 'exists' or 'not_exists')"),
    (cond("in", None), "filter.value: must not be null (test presence with 'exists' or 'not_exists')"),
    # values: scalars
    (cond("eq", ["a"]), "filter.value: must be a single value for 'eq' (use 'in' for a list of values)"),
    (cond("ne", []), "filter.value: must be a single value for 'ne' (use 'in' for a list of values)"),
    (cond("gt", [1]), "filter.value: must be a single value for 'gt' (not an array)"),
    (
        cond("contains", ["a"]),
        "filter.value: must be a single value for 'contains' (give one string; an array "
        "attribute matches when it holds that string)",
    ),
    (
        cond("eq", {"a": 1}),
        'filter.value: must be a string, number, boolean or {"$time": "<ISO-8601 datetime>"}',
    ),
    (
        cond("eq", {"$time": "2025-01-01", "x": 1}),
        'filter.value: a datetime object must be exactly {"$time": "<ISO-8601 datetime>"}',
    ),
    (cond("eq", {"$time": 5}), "filter.value: '$time' must be an ISO-8601 datetime string"),
    (
        cond("eq", {"$time": "tomorrow"}),
        "filter.value: '$time' is not an ISO-8601 date or datetime (e.g. 2025-06-01 or 2025-06-01T12:00:00Z)",
    ),
    (
        cond("eq", {"$time": "0001-01-01T00:00:00+00:01"}),
        "filter.value: '$time' is out of range (years 0001 to 9999 in UTC)",
    ),
    (cond("eq", math.nan), "filter.value: must be a finite number (NaN and Infinity are not allowed)"),
    (cond("gt", math.inf), "filter.value: must be a finite number (NaN and Infinity are not allowed)"),
    (cond("eq", 2**63), "filter.value: is an integer out of range (must fit in a signed 64-bit integer)"),
    (cond("eq", "x" * 1025), "filter.value: is a string longer than 1024 characters"),
    (cond("eq", "a\udc00"), "filter.value: must be valid Unicode text"),
    (cond("gt", True), "filter.value: must be a number, string or datetime for 'gt' (got a boolean)"),
    (cond("lte", False), "filter.value: must be a number, string or datetime for 'lte' (got a boolean)"),
    (cond("contains", 1), "filter.value: must be a string for 'contains' (got a number)"),
    (cond("contains", True), "filter.value: must be a string for 'contains' (got a boolean)"),
    (
        cond("contains", {"$time": "2025-01-01"}),
        "filter.value: must be a string for 'contains' (got a datetime)",
    ),
    (cond("starts_with", 1.5), "filter.value: must be a string for 'starts_with' (got a number)"),
    # values: lists
    (cond("in", "a"), "filter.value: must be an array of values for 'in'"),
    (cond("not_in", 1), "filter.value: must be an array of values for 'not_in'"),
    (cond("in", []), "filter.value: must hold at least one value for 'in'"),
    (cond("not_in", []), "filter.value: must hold at least one value for 'not_in'"),
    (
        cond("in", ["a", 1]),
        "filter.value[1]: all values of 'in' must have the same type (expected a string, got a number)",
    ),
    (
        cond("in", [1, True]),
        "filter.value[1]: all values of 'in' must have the same type (expected a number, got a boolean)",
    ),
    (
        cond("not_in", ["2025-01-01T00:00:00Z", {"$time": "2025-01-01"}]),
        "filter.value[1]: all values of 'not_in' must have the same type (expected a string, got a datetime)",
    ),
    (
        cond("in", ["a", None]),
        'filter.value[1]: must be a string, number, boolean or {"$time": "<ISO-8601 datetime>"}',
    ),
    (
        cond("in", [["a"]]),
        'filter.value[0]: must be a string, number, boolean or {"$time": "<ISO-8601 datetime>"}',
    ),
    (
        cond("in", [{"a": 1}]),
        'filter.value[0]: must be a string, number, boolean or {"$time": "<ISO-8601 datetime>"}',
    ),
    (
        cond("in", [1, math.nan]),
        "filter.value[1]: must be a finite number (NaN and Infinity are not allowed)",
    ),
    (cond("in", [1] * (MAX_LIST_VALUES + 1)), "filter.value: holds 1001 values; at most 1000 are allowed"),
    (
        {"not": {"any": [US, cond("in", ["a", "b", 3])]}},
        "filter.not.any[1].value[2]: all values of 'in' must have the same type "
        "(expected a string, got a number)",
    ),
]


@pytest.mark.parametrize(("filter_json", "message"), INVALID)
def test_invalid_filters(filter_json, message):
    with pytest.raises(FilterError) as info:
        parse_filter(filter_json)
    assert str(info.value) == message
    path, _, reason = message.partition(": ")
    assert info.value.path == path and info.value.reason == reason


def _chain(levels: int) -> dict:
    node = US
    for _ in range(levels - 1):
        node = {"not": node}
    return node


def test_depth_limit():
    assert MAX_DEPTH == 10
    assert evaluate(parse_filter(_chain(10)), USER) is False  # 9 nots around a match
    with pytest.raises(FilterError) as info:
        parse_filter(_chain(11))
    assert str(info.value) == "filter" + ".not" * 10 + ": filters may be nested at most 10 levels deep"


def test_depth_limit_with_arrays():
    node = US
    for _ in range(9):
        node = {"all": [US, node]}
    parse_filter(node)
    with pytest.raises(
        FilterError, match=r"^filter(\.all\[1\]){9}\.all\[0\]: filters may be nested at most 10 levels"
    ):
        parse_filter({"all": [US, node]})


def test_very_deep_input_is_refused_without_recursion_error():
    node = US
    for _ in range(100_000):
        node = {"not": node}
    with pytest.raises(FilterError, match="nested at most 10 levels"):
        parse_filter(node)


def test_node_limit():
    assert MAX_NODES == 100
    parse_filter({"all": [US] * 99})  # 100 nodes
    with pytest.raises(FilterError) as info:
        parse_filter({"all": [US] * 100})
    assert str(info.value) == "filter.all[99]: a filter may have at most 100 nodes"
    with pytest.raises(
        FilterError, match=r"^filter\.any\[1\]\.all\[47\]: a filter may have at most 100 nodes$"
    ):
        parse_filter({"any": [{"all": [US] * 50}, {"all": [US] * 50}]})
    with pytest.raises(FilterError, match="at most 100 nodes"):
        parse_filter({"any": [US] * 1_000_000})


def test_value_limits_at_the_boundary():
    parse_filter(cond("in", list(range(MAX_LIST_VALUES))))
    parse_filter(cond("eq", "x" * 1024))
    parse_filter(cond("eq", -(2**63)))
    parse_filter({"attribute": "a" * 255, "op": "exists"})


@pytest.mark.parametrize("op", [op for op in OPERATORS])
def test_every_operator_has_a_valid_form(op):
    value = {
        "eq": 1,
        "ne": "a",
        "gt": 1,
        "gte": "a",
        "lt": {"$time": "2025-01-01"},
        "lte": 1.5,
        "in": ["a"],
        "not_in": [1],
        "contains": "a",
        "starts_with": "a",
    }.get(op, MISSING)
    filter = parse_filter(cond(op, value))
    assert isinstance(filter, Condition) and filter.op == op


def test_parse_filter_json():
    assert parse_filter_json(json.dumps(US)) == parse_filter(US)
    assert parse_filter_json(json.dumps(US).encode()) == parse_filter(US)
    with pytest.raises(FilterError, match=r"^filter: is not valid JSON"):
        parse_filter_json("{country = 'US'}")
    with pytest.raises(FilterError, match=r"^filter: is not valid JSON"):
        parse_filter_json("")


# ----------------------------------------------------------------------------- tree, JSON, text


def test_tree_is_immutable_and_comparable():
    filter = parse_filter({"all": [US, {"not": cond("eq", {"$time": "2025-01-01"}, "d")}]})
    assert filter == AllOf(
        (Condition("country", "eq", "US"), Not(Condition("d", "eq", Time("2025-01-01", JAN1))))
    )
    assert hash(filter) == hash(
        parse_filter({"all": [US, {"not": cond("eq", {"$time": "2025-01-01"}, "d")}]})
    )
    with pytest.raises(AttributeError):
        filter.children = ()  # type: ignore[misc]
    assert parse_filter(cond("in", ["a", "b"])).value == ("a", "b")
    assert isinstance(parse_filter({"any": [US]}), AnyOf)


def test_filters_pickle_and_copy_with_their_compiled_matcher():
    import copy
    import pickle

    filter = parse_filter(
        {"all": [US, {"not": PRO}, {"any": [ADULT, cond("eq", {"$time": "2025-01-01"}, "d")]}]}
    )
    for clone in (pickle.loads(pickle.dumps(filter)), copy.deepcopy(filter), copy.copy(filter)):
        assert clone == filter
        assert evaluate(clone, USER) is evaluate(filter, USER) is True


def test_filter_to_json_is_canonical():
    raw = {
        "all": [
            {"value": "US", "op": "eq", "attribute": "country"},
            {"not": {"op": "exists", "attribute": "email"}},
            {
                "any": [
                    {"attribute": "d", "op": "gt", "value": {"$time": "2025-01-01"}},
                    {"attribute": "n", "op": "in", "value": [1, 2.5]},
                ]
            },
        ]
    }
    canonical = filter_to_json(parse_filter(raw))
    assert json.dumps(canonical) == json.dumps(
        {
            "all": [
                {"attribute": "country", "op": "eq", "value": "US"},
                {"not": {"attribute": "email", "op": "exists"}},
                {
                    "any": [
                        {"attribute": "d", "op": "gt", "value": {"$time": "2025-01-01"}},
                        {"attribute": "n", "op": "in", "value": [1, 2.5]},
                    ]
                },
            ]
        }
    )
    assert filter_to_json(parse_filter(canonical)) == canonical


def test_referenced_attributes():
    filter = parse_filter({"all": [US, {"not": PRO}, {"any": [ADULT, cond("exists", attribute="email")]}]})
    assert referenced_attributes(filter) == {"country", "plan", "age", "email"}


@pytest.mark.parametrize(
    ("filter_json", "text"),
    [
        ({"all": [US, PRO]}, "country equals 'US' and (plan is one of 'pro', 'team')"),
        (US, "country equals 'US'"),
        (cond("ne", 5), "x does not equal 5"),
        (cond("eq", True), "x equals true"),
        (cond("eq", False), "x equals false"),
        (cond("eq", 2.5), "x equals 2.5"),
        (cond("gt", 1), "x is greater than 1"),
        (cond("gte", 1), "x is greater than or equal to 1"),
        (cond("lt", "m"), "x is less than 'm'"),
        (cond("lte", -2), "x is less than or equal to -2"),
        (cond("gt", "2025-01-01T00:00:00Z"), "x is after '2025-01-01T00:00:00Z'"),
        (cond("gte", {"$time": "2025-01-01"}), "x is on or after '2025-01-01'"),
        (cond("lt", {"$time": "2025-01-01"}), "x is before '2025-01-01'"),
        (cond("lte", "2025-01-01T00:00:00+02:00"), "x is on or before '2025-01-01T00:00:00+02:00'"),
        (cond("eq", {"$time": "2025-01-01"}), "x equals '2025-01-01'"),
        (cond("in", ["a"]), "x is one of 'a'"),
        (cond("not_in", [1, 2]), "x is not one of 1, 2"),
        (cond("contains", "beta", "tags"), "tags contains 'beta'"),
        (cond("starts_with", "A"), "x starts with 'A'"),
        (cond("exists"), "x exists"),
        (cond("not_exists"), "x does not exist"),
        (cond("eq", "it's"), "x equals 'it\\'s'"),
        (cond("eq", 'say "hi"\n'), "x equals 'say \"hi\"\\n'"),
        ({"not": US}, "not (country equals 'US')"),
        ({"not": {"all": [US, ADULT]}}, "not (country equals 'US' and age is greater than or equal to 18)"),
        (
            {"any": [US, {"all": [ADULT, PRO]}]},
            "country equals 'US' or (age is greater than or equal to 18 and (plan is one of 'pro', 'team'))",
        ),
        ({"all": [{"any": [US]}]}, "country equals 'US'"),
        ({"all": [PRO]}, "plan is one of 'pro', 'team'"),
        (
            {"any": [US, ADULT, cond("in", ["a"])]},
            "country equals 'US' or age is greater than or equal to 18 or x is one of 'a'",
        ),
    ],
)
def test_describe(filter_json, text):
    assert describe(parse_filter(filter_json)) == text


# ----------------------------------------------------------------------------- properties

NAMES = ("a", "b", "c")
DATE_TEXTS = (
    "2025-01-01T00:00:00Z",
    "2025-01-01T01:00:00+01:00",
    "2025-01-02T00:00:00Z",
    "2024-12-31T23:00:00-01:00",
)
STRINGS = ("", "x", "xy", "y", "2025", *DATE_TEXTS)
NUMBERS = (0, 1, 1.0, 2.5, -1)
MICROS = (JAN1, JAN1 + 86_400_000_000, 0)

attribute_values = st.one_of(
    st.sampled_from(STRINGS).map(lambda s: Value("s", s)),
    st.sampled_from(NUMBERS).map(lambda n: Value("n", n)),
    st.booleans().map(lambda b: Value("b", b)),
    st.sampled_from(MICROS).map(lambda m: Value("d", m)),
    st.lists(st.sampled_from(STRINGS), max_size=3).map(lambda items: Value("a", tuple(items))),
)
attribute_maps = st.dictionaries(st.sampled_from(NAMES), attribute_values, max_size=3)

strings = st.sampled_from(STRINGS)
numbers = st.sampled_from(NUMBERS)
times = st.sampled_from(("2025-01-01", "2025-01-02T00:00:00Z", "1970-01-01T00:00:00")).map(
    lambda t: {"$time": t}
)
scalars = st.one_of(strings, numbers, st.booleans(), times)
ordered = st.one_of(strings, numbers, times)
homogeneous = st.one_of(
    *(st.lists(kind, min_size=1, max_size=3) for kind in (strings, numbers, st.booleans(), times))
)


@st.composite
def conditions(draw):
    name = draw(st.sampled_from(NAMES))
    op = draw(st.sampled_from(OPERATORS))
    node = {"attribute": name, "op": op}
    if op in ("eq", "ne"):
        node["value"] = draw(scalars)
    elif op in ("gt", "gte", "lt", "lte"):
        node["value"] = draw(ordered)
    elif op in ("in", "not_in"):
        node["value"] = draw(homogeneous)
    elif op in ("contains", "starts_with"):
        node["value"] = draw(strings)
    return node


filters = filter_trees(conditions(), max_leaves=8)


def _candidates(value) -> dict:
    """Reference rule: what a filter scalar equals, per attribute type."""
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int | float):
        return {"n": value}
    if isinstance(value, dict):
        text = value["$time"]
        moment = datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return {"d": to_epoch_micros(moment)}
    out = {"s": value}
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return out
    if moment.tzinfo is not None and "T" in value:
        out["d"] = to_epoch_micros(moment)
    return out


def reference(node: dict, values: dict) -> bool:
    """A direct interpreter of the documented semantics, independent of the compiler."""
    return reference_match(node, values, _compare)


def _compare(op: str, kind: str, payload, value) -> bool:
    """The typed operators, on attribute payloads (datetimes as epoch microseconds)."""
    if op in ("in", "not_in"):
        relevant = [c[kind] for c in map(_candidates, value) if kind in c]
        if not relevant:
            return False
        return (payload in relevant) is (op == "in")
    candidates = _candidates(value)
    if kind not in candidates:
        return False
    other = candidates[kind]
    return {
        "eq": payload == other,
        "ne": payload != other,
        "gt": payload > other,
        "gte": payload >= other,
        "lt": payload < other,
        "lte": payload <= other,
    }[op]


@settings(max_examples=400)
@given(filters, attribute_maps)
def test_evaluate_agrees_with_reference_interpreter(filter_json, values):
    assert evaluate(parse_filter(filter_json), values) is reference(filter_json, values)


@given(filters, attribute_maps)
def test_not_is_negation(filter_json, values):
    assert evaluate(parse_filter({"not": filter_json}), values) is (
        not evaluate(parse_filter(filter_json), values)
    )


@given(filters, attribute_maps)
def test_single_child_all_and_any_are_the_child(filter_json, values):
    expected = evaluate(parse_filter(filter_json), values)
    assert evaluate(parse_filter({"all": [filter_json]}), values) is expected
    assert evaluate(parse_filter({"any": [filter_json]}), values) is expected


@given(filters, filters, attribute_maps)
def test_all_any_and_de_morgan(f, g, values):
    fv, gv = evaluate(parse_filter(f), values), evaluate(parse_filter(g), values)
    assert evaluate(parse_filter({"all": [f, g]}), values) is (fv and gv)
    assert evaluate(parse_filter({"any": [f, g]}), values) is (fv or gv)
    assert evaluate(parse_filter({"not": {"all": [f, g]}}), values) is evaluate(
        parse_filter({"any": [{"not": f}, {"not": g}]}), values
    )


@given(filters, attribute_maps)
def test_json_round_trip(filter_json, values):
    filter = parse_filter(filter_json)
    canonical = filter_to_json(filter)
    assert json.dumps(canonical) == json.dumps(filter_json)  # generated filters are already canonical
    again = parse_filter(json.loads(json.dumps(canonical)))
    assert again == filter
    assert evaluate(again, values) is evaluate(filter, values)
    assert describe(again) == describe(filter) != ""


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(["eq", "in", "x", "", "$x"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["all", "any", "not", "attribute", "op", "value", "$time"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(_json, attribute_maps)
def test_arbitrary_json_is_a_filter_or_a_filter_error(obj, values):
    try:
        filter = parse_filter(obj)
    except FilterError as exc:
        assert str(exc).startswith("filter")
        return
    assert isinstance(evaluate(filter, values), bool)
    describe(filter)
    assert parse_filter(filter_to_json(filter)) == filter


# ----------------------------------------------------------------------------- cost
