"""User attribute validation (sessiontally.attributes): every rule and limit."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessiontally import attributes as A
from sessiontally.attributes import (
    AttributesError,
    UserAttributes,
    UsersBatchError,
    Value,
    apply_update,
    decode_value,
    decode_values,
    encode_value,
    encode_values,
    format_instant,
    parse_value,
    string_instant,
    validate_user,
    validate_users_batch,
    value_to_json,
)


def us(*args: int, tz=UTC) -> int:
    return A.to_epoch_micros(datetime(*args, tzinfo=tz))


JAN1 = us(2025, 1, 1)


def error_of(obj) -> str:
    with pytest.raises(AttributesError) as info:
        validate_user(obj)
    return str(info.value)


# ----------------------------------------------------------------------------- constants


def test_limits_are_the_documented_ones():
    assert A.MAX_EXTERNAL_ID_LENGTH == 997
    assert A.MAX_ATTRIBUTE_NAME_LENGTH == 255
    assert A.MAX_STRING_LENGTH == 1024
    assert A.MAX_ARRAY_ITEMS == 100
    assert A.MAX_ATTRIBUTES_PER_OBJECT == 256
    assert A.MAX_OBJECTS_PER_REQUEST == 75
    assert A.MIN_INTEGER == -(2**63) and A.MAX_INTEGER == 2**63 - 1


# ----------------------------------------------------------------------------- external_id


def test_minimal_object():
    result = validate_user({"external_id": "u1"})
    assert result == UserAttributes("u1", {}, [], False)


def test_typical_object():
    result = validate_user({"external_id": "u1", "country": "US", "plan": "pro", "age": 31, "gone": None})
    assert result.external_id == "u1"
    assert result.set == {"country": Value("s", "US"), "plan": Value("s", "pro"), "age": Value("n", 31)}
    assert result.remove == ["gone"]
    assert result.update_existing_only is False


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, "'external_id' is required"),
        ({"country": "US"}, "'external_id' is required"),
        ({"external_id": None}, "'external_id' is required"),
        ({"external_id": 5}, "'external_id' must be a string"),
        ({"external_id": ["u1"]}, "'external_id' must be a string"),
        ({"external_id": ""}, "'external_id' must be 1 to 997 characters"),
        ({"external_id": "x" * 998}, "'external_id' must be 1 to 997 characters"),
    ],
)
def test_external_id_rules(obj, message):
    assert error_of(obj) == message


def test_external_id_length_bounds():
    assert validate_user({"external_id": "x"}).external_id == "x"
    assert validate_user({"external_id": "x" * 997}).external_id == "x" * 997


@pytest.mark.parametrize("not_an_object", [None, "u1", 5, ["external_id"], True])
def test_object_must_be_an_object(not_an_object):
    assert error_of(not_an_object) == "each attributes object must be a JSON object"


# ----------------------------------------------------------------------------- reserved keys


@pytest.mark.parametrize("key", sorted(A.UNSUPPORTED_KEYS))
def test_unsupported_braze_keys_are_refused_by_name(key):
    message = error_of({"external_id": "u1", key: {"alias_name": "x", "alias_label": "y"}})
    assert message == A.UNSUPPORTED_KEYS[key]
    assert f"'{key}'" in message and "not supported" in message


def test_user_alias_without_external_id_names_user_alias():
    message = error_of({"user_alias": {"alias_name": "a", "alias_label": "b"}})
    assert "user_alias" in message and "external_id" in message


@pytest.mark.parametrize("flag", [True, False])
def test_update_existing_only_is_reported(flag):
    result = validate_user({"external_id": "u1", "_update_existing_only": flag, "a": 1})
    assert result.update_existing_only is flag
    assert "_update_existing_only" not in result.set
    assert result.set == {"a": Value("n", 1)}


@pytest.mark.parametrize("bad", ["true", 1, 0, None, [], {}])
def test_update_existing_only_must_be_boolean(bad):
    assert error_of({"external_id": "u1", "_update_existing_only": bad}) == (
        "'_update_existing_only' must be a boolean"
    )


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "attribute '': attribute names must be 1 to 255 characters"),
        ("$plan", "attribute '$plan': attribute names must not start with '$'"),
        ("$", "attribute '$': attribute names must not start with '$'"),
        ("a\x00b", "attribute 'a\\x00b': attribute names must not contain control characters"),
        ("line\nbreak", "attribute 'line\\nbreak': attribute names must not contain control characters"),
        ("tab\t", "attribute 'tab\\t': attribute names must not contain control characters"),
        ("del\x7f", "attribute 'del\\x7f': attribute names must not contain control characters"),
        ("c1\x85", "attribute 'c1\\x85': attribute names must not contain control characters"),
        ("bad\ud800", "attribute 'bad\\ud800': attribute names must be valid Unicode text"),
    ],
)
def test_invalid_attribute_names(name, message):
    assert error_of({"external_id": "u1", name: "x"}) == message


def test_long_name_is_refused_and_shortened_in_message():
    message = error_of({"external_id": "u1", "n" * 256: "x"})
    assert message == f"attribute '{'n' * 40}...': attribute names must be 1 to 255 characters"


def test_non_string_name_is_refused():
    assert error_of({"external_id": "u1", 7: "x"}) == "attribute 7: attribute names must be strings"


@pytest.mark.parametrize(
    "name", ["a", "n" * 255, "favorite color", "plan$", "émoji 🎉", "a.b", "_private", "email"]
)
def test_valid_attribute_names(name):
    assert validate_user({"external_id": "u1", name: "x"}).set == {name: Value("s", "x")}


def test_attribute_name_problem_helper():
    assert A.attribute_name_problem("ok") is None
    assert A.attribute_name_problem(None) == "attribute names must be strings"
    assert A.attribute_name_problem("$x") == "attribute names must not start with '$'"


# ----------------------------------------------------------------------------- count limit


def _many(n: int) -> dict:
    obj: dict = {"external_id": "u1"}
    obj.update({f"a{i}": i for i in range(n)})
    return obj


def test_256_attributes_are_allowed():
    result = validate_user(_many(256))
    assert len(result.set) == 256


def test_257_attributes_are_refused():
    assert error_of(_many(257)) == "the object has 257 attributes; at most 256 are allowed per object"


def test_count_excludes_external_id_and_update_flag_and_includes_removals():
    obj = _many(255)
    obj["_update_existing_only"] = True
    obj["removed"] = None
    result = validate_user(obj)
    assert len(result.set) == 255 and result.remove == ["removed"]
    obj["one_more"] = None
    assert "257 attributes" in error_of(obj)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("US", Value("s", "US")),
        ("", Value("s", "")),
        ("x" * 1024, Value("s", "x" * 1024)),
        ("multi\nline", Value("s", "multi\nline")),
        (0, Value("n", 0)),
        (-5, Value("n", -5)),
        (2**63 - 1, Value("n", 2**63 - 1)),
        (-(2**63), Value("n", -(2**63))),
        (3.25, Value("n", 3.25)),
        (-0.0, Value("n", -0.0)),
        (1e308, Value("n", 1e308)),
        (True, Value("b", True)),
        (False, Value("b", False)),
        ([], Value("a", ())),
        (["a", "b", "a"], Value("a", ("a", "b", "a"))),
        (["x"] * 100, Value("a", ("x",) * 100)),
        (["y" * 1024], Value("a", ("y" * 1024,))),
        (["2025-01-01T00:00:00Z"], Value("a", ("2025-01-01T00:00:00Z",))),
        (None, None),
    ],
)
def test_value_types(raw, expected):
    assert parse_value(raw) == expected
    if expected is not None:
        assert type(parse_value(raw).v) is type(expected.v)


def test_bool_is_never_a_number():
    assert parse_value(True).t == "b"
    assert parse_value(1).t == "n"
    assert parse_value(True) != parse_value(1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T00:00:00Z", JAN1),
        ("2025-01-01T00:00:00z", JAN1),
        ("2025-01-01t00:00:00Z", JAN1),
        ("2025-01-01 00:00:00Z", JAN1),
        ("2025-01-01T00:00Z", JAN1),
        ("2025-01-01T02:00:00+02:00", JAN1),
        ("2025-01-01T02:00:00+0200", JAN1),
        ("2025-01-01T02:00:00+02", JAN1),
        ("2024-12-31T19:00:00-5:00", JAN1),
        ("2025-01-01T05:30:00+05:30", JAN1),
        ("2025-01-01T00:00:00.5Z", JAN1 + 500_000),
        ("2025-01-01T00:00:00,123456789Z", JAN1 + 123_456),
        ("1950-06-15T00:00:00Z", us(1950, 6, 15)),
        ("9999-12-31T23:59:59.999999Z", A.MAX_INSTANT_US),
        ("0001-01-01T00:00:00Z", A.MIN_INSTANT_US),
    ],
)
def test_strings_with_offset_are_datetimes(text, expected):
    assert parse_value(text) == Value("d", expected)
    assert string_instant(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-01",  # a date: no offset
        "2025-01-01T00:00:00",  # no offset: ambiguous wall time
        "2025-01-01T00:00",
        "2025-01-01T00:00:00 05:30",  # the query-string form of timeparse, not in JSON
        "2025-01-01T00:00:00 +05:30",
        "2025-13-01T00:00:00Z",  # not a calendar date
        "2025-02-30T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T00:00:60Z",
        "2025-01-01T00:00:00+24:00",  # offset out of range
        "2025-01-01T00:00:00+05:99",
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-02:00",  # after year 9999 in UTC
        " 2025-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z ",
        "20250101T000000Z",
        "yesterday",
    ],
)
def test_other_strings_stay_strings(text):
    assert parse_value(text) == Value("s", text)
    assert string_instant(text) is None


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"$time": "2025-01-01T00:00:00Z"}, JAN1),
        ({"$time": "2025-01-01T00:00:00.000Z"}, JAN1),
        ({"$time": "2025-01-01T03:00:00+03:00"}, JAN1),
        ({"$time": "2025-01-01T00:00:00"}, JAN1),  # no offset: UTC
        ({"$time": "2025-01-01"}, JAN1),  # a date: midnight UTC
        ({"$time": "2025-01-01 00:00"}, JAN1),
        ({"$time": "1969-12-31T23:59:59Z"}, -1_000_000),
    ],
)
def test_time_objects(obj, expected):
    assert parse_value(obj) == Value("d", expected)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("x" * 1025, "attribute 'a' is a string longer than 1024 characters"),
        ("bad\udc00", "attribute 'a' must be valid Unicode text"),
        (2**63, "attribute 'a' is an integer out of range (must fit in a signed 64-bit integer)"),
        (-(2**63) - 1, "attribute 'a' is an integer out of range (must fit in a signed 64-bit integer)"),
        (10**400, "attribute 'a' is an integer out of range (must fit in a signed 64-bit integer)"),
        (math.nan, "attribute 'a' must be a finite number (NaN and Infinity are not allowed)"),
        (math.inf, "attribute 'a' must be a finite number (NaN and Infinity are not allowed)"),
        (-math.inf, "attribute 'a' must be a finite number (NaN and Infinity are not allowed)"),
        (["x"] * 101, "attribute 'a' is an array of 101 items; at most 100 are allowed"),
        (["x", 1], "attribute 'a' must be an array of strings (item 1 is not a string)"),
        ([None], "attribute 'a' must be an array of strings (item 0 is not a string)"),
        ([["x"]], "attribute 'a' must be an array of strings (item 0 is not a string)"),
        ([{"$time": "2025-01-01"}], "attribute 'a' must be an array of strings (item 0 is not a string)"),
        (["ok", "z" * 1025], "attribute 'a' item 1 is longer than 1024 characters"),
        (["\ud800"], "attribute 'a' item 0 must be valid Unicode text"),
        (
            {"inc": 1},
            "attribute 'a' is an object ('inc'); only {\"$time\": ...} is supported "
            "(Braze's increments, array add/remove and nested attributes are not)",
        ),
        (
            {"add": ["x"], "remove": ["y"]},
            "attribute 'a' is an object ('add', 'remove'); only {\"$time\": ...} is supported "
            "(Braze's increments, array add/remove and nested attributes are not)",
        ),
        (
            {},
            "attribute 'a' is an object (empty); only {\"$time\": ...} is supported "
            "(Braze's increments, array add/remove and nested attributes are not)",
        ),
        (
            {"$time": "2025-01-01", "x": 1},
            'attribute \'a\' a datetime object must be exactly {"$time": "<ISO-8601 datetime>"}',
        ),
        ({"$time": 1735689600}, "attribute 'a' '$time' must be an ISO-8601 datetime string"),
        ({"$time": None}, "attribute 'a' '$time' must be an ISO-8601 datetime string"),
        (
            {"$time": "soon"},
            "attribute 'a' '$time' is not an ISO-8601 date or datetime "
            "(e.g. 2025-06-01 or 2025-06-01T12:00:00Z)",
        ),
        (
            {"$time": "2025-02-30"},
            "attribute 'a' '$time' is not a valid calendar date (day is out of range for month)",
        ),
        (
            {"$time": "0001-01-01T00:00:00+01:00"},
            "attribute 'a' '$time' is out of range (years 0001 to 9999 in UTC)",
        ),
        (
            (1, 2),
            "attribute 'a' must be a string, number, boolean, array of strings, {\"$time\": ...} or null",
        ),
        (
            {1, 2},
            "attribute 'a' must be a string, number, boolean, array of strings, {\"$time\": ...} or null",
        ),
    ],
)
def test_invalid_values(raw, message):
    assert error_of({"external_id": "u1", "a": raw}) == message


def test_first_invalid_attribute_is_reported():
    message = error_of({"external_id": "u1", "ok": 1, "bad1": math.nan, "bad2": {"inc": 1}})
    assert message.startswith("attribute 'bad1'")


def test_datetime_values_in_objects():
    result = validate_user(
        {
            "external_id": "u1",
            "signup": "2025-01-01T02:00:00+02:00",
            "birthday": {"$time": "1990-05-17"},
            "note": "2025-01-01",
        }
    )
    assert result.set == {
        "signup": Value("d", JAN1),
        "birthday": Value("d", us(1990, 5, 17)),
        "note": Value("s", "2025-01-01"),
    }


# ----------------------------------------------------------------------------- batches


def test_batch_all_valid():
    body = {"attributes": [{"external_id": "u1", "a": 1}, {"external_id": "u2", "b": None}]}
    valid, errors = validate_users_batch(body)
    assert errors == []
    assert valid == [
        (0, UserAttributes("u1", {"a": Value("n", 1)}, [])),
        (1, UserAttributes("u2", {}, ["b"])),
    ]


def test_batch_items_are_independent():
    body = {
        "attributes": [{"external_id": "u1"}, {"a": 1}, {"external_id": "u3", "$x": 1}, {"external_id": "u4"}]
    }
    valid, errors = validate_users_batch(body)
    assert [index for index, _ in valid] == [0, 3]
    assert errors == [
        {"index": 1, "message": "'external_id' is required"},
        {"index": 2, "message": "attribute '$x': attribute names must not start with '$'"},
    ]


def test_batch_same_user_twice_is_kept_in_order():
    body = {"attributes": [{"external_id": "u1", "a": 1}, {"external_id": "u1", "a": 2}]}
    valid, _ = validate_users_batch(body)
    assert [(i, u.set["a"].v) for i, u in valid] == [(0, 1), (1, 2)]


def test_batch_75_objects_allowed_76_refused():
    valid, errors = validate_users_batch({"attributes": [{"external_id": f"u{i}"} for i in range(75)]})
    assert len(valid) == 75 and errors == []
    with pytest.raises(
        UsersBatchError, match=r"^'attributes' holds 76 objects; at most 75 are allowed per request$"
    ):
        validate_users_batch({"attributes": [{"external_id": f"u{i}"} for i in range(76)]})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, 'body must be a JSON object like {"attributes": [...]}'),
        ([{"external_id": "u1"}], 'body must be a JSON object like {"attributes": [...]}'),
        ("attributes", 'body must be a JSON object like {"attributes": [...]}'),
        ({}, "'attributes' must hold at least one attributes object"),
        ({"attributes": []}, "'attributes' must hold at least one attributes object"),
        ({"attributes": None}, "'attributes' must hold at least one attributes object"),
        ({"attributes": [], "events": []}, "'attributes' must hold at least one attributes object"),
        ({"unknown": [1]}, "'attributes' must hold at least one attributes object"),
        ({"attributes": {"external_id": "u1"}}, "'attributes' must be an array of objects"),
        ({"attributes": "u1"}, "'attributes' must be an array of objects"),
        (
            {"attributes": [{"external_id": "u1"}], "events": {"name": "x"}},
            "'events' must be an array of objects",
        ),
        ({"attributes": [{"external_id": "u1"}], "purchases": 5}, "'purchases' must be an array of objects"),
        ({"events": [{}] * 76}, "'events' holds 76 objects; at most 75 are allowed per request"),
    ],
)
def test_batch_shape_errors(body, message):
    with pytest.raises(UsersBatchError) as info:
        validate_users_batch(body)
    assert str(info.value) == message


def test_batch_unsupported_parts_are_refused_per_object():
    body = {
        "attributes": [{"external_id": "u1", "a": 1}, {"bad": True}],
        "events": [{"external_id": "u1", "name": "x"}, {"external_id": "u2", "name": "y"}],
        "purchases": [{"external_id": "u1", "product_id": "p"}],
    }
    valid, errors = validate_users_batch(body)
    assert [index for index, _ in valid] == [0]
    events_message = "'events' are not supported by this service; only 'attributes' are processed"
    purchases_message = "'purchases' are not supported by this service; only 'attributes' are processed"
    assert errors == [
        {"index": 1, "message": "'external_id' is required"},
        {"index": 0, "part": "events", "message": events_message},
        {"index": 1, "part": "events", "message": events_message},
        {"index": 0, "part": "purchases", "message": purchases_message},
    ]


def test_batch_with_only_events_has_no_valid_object():
    valid, errors = validate_users_batch({"events": [{"name": "x"}]})
    assert valid == []
    assert errors == [
        {
            "index": 0,
            "part": "events",
            "message": "'events' are not supported by this service; only 'attributes' are processed",
        }
    ]


def test_batch_empty_or_null_unsupported_parts_and_unknown_keys_are_ignored():
    body = {"attributes": [{"external_id": "u1"}], "events": [], "purchases": None, "partner": "x"}
    valid, errors = validate_users_batch(body)
    assert len(valid) == 1 and errors == []


def test_batch_errors_are_json_serialisable():
    _, errors = validate_users_batch({"attributes": [{"external_id": 1}], "events": [{}]})
    assert json.loads(json.dumps(errors)) == errors


# ----------------------------------------------------------------------------- apply, storage


def test_apply_update():
    current = {"a": Value("n", 1), "b": Value("s", "x"), "c": Value("b", True)}
    update = validate_user({"external_id": "u1", "a": 2, "b": None, "d": ["t"], "missing": None})
    assert apply_update(current, update) == {
        "a": Value("n", 2),
        "c": Value("b", True),
        "d": Value("a", ("t",)),
    }
    assert current["a"] == Value("n", 1)  # not mutated


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (Value("s", "x"), {"t": "s", "v": "x"}),
        (Value("n", 3), {"t": "n", "v": 3}),
        (Value("n", 2.5), {"t": "n", "v": 2.5}),
        (Value("b", False), {"t": "b", "v": False}),
        (Value("d", JAN1), {"t": "d", "v": JAN1}),
        (Value("a", ("x", "y")), {"t": "a", "v": ["x", "y"]}),
        (Value("a", ()), {"t": "a", "v": []}),
    ],
)
def test_encode_decode(value, stored):
    assert encode_value(value) == stored
    assert json.loads(json.dumps(encode_value(value))) == stored
    assert decode_value(stored) == value
    assert decode_value(json.loads(json.dumps(stored))) == value
    assert type(decode_value(stored).v) is type(value.v)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        {"t": "s"},
        {"v": "x"},
        {"t": "s", "v": "x", "extra": 1},
        {"t": "x", "v": "x"},
        {"t": "s", "v": 1},
        {"t": "n", "v": "1"},
        {"t": "n", "v": True},
        {"t": "n", "v": math.nan},
        {"t": "b", "v": 1},
        {"t": "d", "v": 1.5},
        {"t": "d", "v": "2025-01-01T00:00:00Z"},
        {"t": "d", "v": True},
        {"t": "a", "v": "x"},
        {"t": "a", "v": [1]},
    ],
)
def test_decode_refuses_malformed(stored):
    with pytest.raises(ValueError):
        decode_value(stored)


def test_encode_decode_mappings():
    values = {"a": Value("n", 1), "b": Value("a", ("x",))}
    assert decode_values(json.loads(json.dumps(encode_values(values)))) == values
    with pytest.raises(ValueError):
        decode_values([])


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:00.000001Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (JAN1, "2025-01-01T00:00:00Z"),
        (A.MIN_INSTANT_US, "0001-01-01T00:00:00Z"),
        (A.MAX_INSTANT_US, "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_format_instant(micros, text):
    assert format_instant(micros) == text
    assert string_instant(text) == micros


def test_value_to_json():
    assert value_to_json(Value("d", JAN1)) == "2025-01-01T00:00:00Z"
    assert value_to_json(Value("a", ("x",))) == ["x"]
    assert value_to_json(Value("n", 1.5)) == 1.5
    assert value_to_json(Value("b", True)) is True
    assert value_to_json(Value("s", "x")) == "x"


# ----------------------------------------------------------------------------- properties

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_raw_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=A.MIN_INTEGER, max_value=A.MAX_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
    st.lists(_text, max_size=5),
)


@given(_raw_values)
def test_plain_json_round_trip(raw):
    value = parse_value(raw)
    if value is None:
        return
    assert parse_value(value_to_json(value)) == value
    assert decode_value(json.loads(json.dumps(encode_value(value)))) == value


@given(st.dictionaries(st.text(max_size=8), _raw_values, max_size=10))
def test_validate_user_round_trip(attrs):
    obj = {"external_id": "u1", **{k: v for k, v in attrs.items() if k not in A.UNSUPPORTED_KEYS}}
    try:
        first = validate_user(obj)
    except AttributesError:
        return
    again = validate_user(
        {
            "external_id": "u1",
            **{k: value_to_json(v) for k, v in first.set.items()},
            **dict.fromkeys(first.remove),
        }
    )
    assert again == first


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["external_id", "$time", "a", "events", "inc"]), children, max_size=3
        )
    ),
    max_leaves=10,
)


@given(_json)
def test_arbitrary_json_never_crashes(obj):
    with contextlib.suppress(AttributesError):
        validate_user(obj)
    with contextlib.suppress(UsersBatchError):
        validate_users_batch({"attributes": [obj], "events": obj if isinstance(obj, list) else None})
