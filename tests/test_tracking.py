"""sessiontally.tracking: reading tracking-API requests and validating Segment messages
(CONTRACT section 10), and ``identify`` traits as user attributes. Pure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally import attributes, tracking
from sessiontally.ingest import ItemError
from sessiontally.tracking import (
    MAX_MESSAGE_BYTES,
    RequestError,
    TrackedMessage,
    identify_update,
    message_size,
    read_request,
    validate_message,
    validate_messages,
)

RECEIVED = 1_750_000_000_000_000  # 2025-06-15T15:06:40Z, in microseconds
RECEIVED_ISO = "2025-06-15T15:06:40Z"
DAY_US = 86_400 * 1_000_000


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Signed Up", **fields}


def valid(message: Any, path: str = "batch") -> TrackedMessage:
    return validate_message(message, path, RECEIVED)


def refused(message: Any, path: str = "batch") -> str:
    with pytest.raises(ValueError) as caught:
        validate_message(message, path, RECEIVED)
    return str(caught.value)


# ------------------------------------------------------------------------- requests


def test_a_batch_request_gives_its_messages_and_write_key():
    request = read_request({"batch": [track()], "writeKey": "wk", "sentAt": RECEIVED_ISO}, "batch")
    assert (request.messages, request.write_key, request.app_id) == ([track()], "wk", None)


def test_a_single_message_path_reads_the_body_as_the_message():
    body = track(writeKey="wk")
    request = read_request(body, "track")
    assert (request.messages, request.write_key) == ([body], "wk")


def test_a_batch_may_carry_its_write_key_in_its_first_message():
    """As some libraries send it: the body has none, the first message has one."""
    assert read_request({"batch": [track(writeKey="in-message")]}, "batch").write_key == "in-message"
    # The body's wins.
    assert read_request({"batch": [track(writeKey="m")], "writeKey": "b"}, "batch").write_key == "b"
    assert read_request({"batch": [track(writeKey=5)]}, "batch").write_key is None


def test_the_app_id_named_in_the_body_is_read():
    assert read_request({"batch": [track()], "appId": "a1"}, "batch").app_id == "a1"
    assert read_request({**track(), "app_id": "a2"}, "track").app_id == "a2"
    assert read_request({"batch": [track()], "appId": 7}, "batch").app_id is None


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ([track()], "batch", "body must be a JSON object"),
        ("text", "track", "body must be a JSON object"),
        ({"batch": [track()], "writeKey": 5}, "batch", "'writeKey' must be a string"),
        ({"writeKey": ["wk"], **track()}, "track", "'writeKey' must be a string"),
        ({}, "batch", "'batch' must be an array of messages"),
        ({"batch": {"0": track()}}, "batch", "'batch' must be an array of messages"),
        ({"batch": []}, "batch", "'batch' must hold at least one message"),
    ],
)
def test_a_request_that_cannot_be_read_is_refused_whole(body, path, message):
    with pytest.raises(RequestError, match=f"^{message}$".replace("[", r"\[")):
        read_request(body, path)


def test_every_path_implies_its_type():
    for path, kind in tracking.PATH_TYPES.items():
        assert tracking.PATH_TYPES[kind] == kind, path  # short paths map to a long one
    assert {tracking.PATH_TYPES[p] for p in "tpsiga"} == set(tracking.MESSAGE_TYPES)


# ------------------------------------------------------------------------- type


def test_the_type_is_implied_by_a_single_message_path():
    message = {"userId": "u1", "event": "E"}
    assert valid(message, "track").type == "track"
    assert valid({"anonymousId": "a"}, "page").type == "page"
    assert valid({"anonymousId": "a", "type": "screen"}, "screen").type == "screen"
    assert refused({"type": "page", "userId": "u1"}, "track") == "'type' must be 'track' on this path"


def test_a_batch_message_needs_a_known_type():
    assert refused({"userId": "u1", "event": "E"}) == "'type' is required"
    assert refused(track(type="click")) == (
        "'type' must be one of track, page, screen, identify, group, alias")
    for kind in tracking.MESSAGE_TYPES:
        assert valid({"type": kind, "userId": "u", "event": "E"}).type == kind


# ---------------------------------------------------------------------- identities


def test_user_id_or_anonymous_id_is_required():
    assert refused({"type": "page"}) == "'userId' or 'anonymousId' is required"
    # analytics.js sends "" before it has an id: the same as none.
    assert refused({"type": "page", "userId": "", "anonymousId": ""}) == (
        "'userId' or 'anonymousId' is required")


def test_the_person_is_the_anonymous_id_else_the_user_id():
    both = valid({"type": "page", "userId": "u1", "anonymousId": "a1"})
    assert (both.person, both.user_id) == ("a1", "u1")
    user_only = valid({"type": "page", "userId": "u1"})
    assert (user_only.person, user_only.user_id) == ("u1", "u1")
    anonymous = valid({"type": "page", "anonymousId": "a1", "userId": ""})
    assert (anonymous.person, anonymous.user_id) == ("a1", None)


def test_numeric_ids_become_strings():
    """Segment's libraries accept numeric ids and send them as numbers."""
    message = valid({"type": "page", "userId": 42, "anonymousId": -7})
    assert (message.user_id, message.person) == ("42", "-7")
    assert valid({"type": "page", "userId": 0}).user_id == "0"


@pytest.mark.parametrize("field", ["userId", "anonymousId"])
def test_ids_of_other_types_or_too_long_are_refused(field):
    for value in (True, 1.5, ["u"], {"id": "u"}):
        assert refused({"type": "page", field: value}) == f"'{field}' must be a string"
    too_long = "x" * (tracking.MAX_ID_LENGTH + 1)
    assert refused({"type": "page", field: too_long}) == (
        f"'{field}' must be at most {tracking.MAX_ID_LENGTH} characters")
    assert valid({"type": "page", field: "x" * tracking.MAX_ID_LENGTH}).person == "x" * tracking.MAX_ID_LENGTH
    assert "NUL" in refused({"type": "page", field: "a\x00b"})


# --------------------------------------------------------------------------- names


def test_track_needs_an_event_name():
    assert refused({"type": "track", "userId": "u1"}) == "'event' is required for this type"
    assert refused(track(event=None)) == "'event' is required for this type"
    assert refused(track(event="")) == "'event' must be 1 to 200 characters"
    assert refused(track(event="e" * 201)) == "'event' must be 1 to 200 characters"
    assert refused(track(event=3)) == "'event' must be a string"
    assert "NUL" in refused(track(event="a\x00"))
    assert valid(track(event="e" * 200)).event == "e" * 200


def test_page_and_screen_names_are_optional():
    assert valid({"type": "page", "userId": "u"}).event is None
    assert valid({"type": "screen", "userId": "u", "name": "Home"}).event == "Home"
    assert refused({"type": "page", "userId": "u", "name": ["Home"]}) == "'name' must be a string"
    # identify, group and alias carry no name.
    assert valid({"type": "identify", "userId": "u", "event": "ignored"}).event is None


# ---------------------------------------------------------------------------- times


def test_event_time_is_timestamp_else_original_timestamp_else_receipt():
    earlier, earliest = "2025-06-15T15:06:30Z", "2025-06-15T15:06:20.5Z"
    assert valid(track(timestamp=earlier, originalTimestamp=earliest)).occurred_at == RECEIVED - 10_000_000
    assert valid(track(originalTimestamp=earliest)).occurred_at == RECEIVED - 19_500_000
    assert valid(track()).occurred_at == RECEIVED
    assert valid(track(timestamp=None, originalTimestamp=None)).occurred_at == RECEIVED


def test_event_time_offsets_fractions_and_no_offset():
    assert valid(track(timestamp="2025-06-15T20:36:40.000123+05:30")).occurred_at == RECEIVED + 123
    assert valid(track(timestamp="2025-06-15T15:06:40")).occurred_at == RECEIVED  # no offset: UTC
    midnight = RECEIVED - (15 * 3600 + 6 * 60 + 40) * 1_000_000
    assert valid(track(timestamp="2025-06-15")).occurred_at == midnight


def test_event_time_must_be_after_1970():
    assert valid(track(timestamp="1970-01-01T00:00:00Z")).occurred_at == 0
    assert refused(track(timestamp="1969-12-31T23:59:59.999999Z")) == (
        "'timestamp' must not be before 1970-01-01T00:00:00Z")
    assert refused(track(originalTimestamp="1900-01-01T00:00:00Z")) == (
        "'originalTimestamp' must not be before 1970-01-01T00:00:00Z")


def test_event_time_at_most_24_hours_after_receipt():
    assert valid(track(timestamp="2025-06-16T15:06:40Z")).occurred_at == RECEIVED + DAY_US
    assert refused(track(timestamp="2025-06-16T15:06:40.000001Z")) == (
        "'timestamp' must not be more than 24 hours in the future")
    assert refused(track(originalTimestamp="2030-01-01T00:00:00Z")) == (
        "'originalTimestamp' must not be more than 24 hours in the future")


def test_a_bad_timestamp_is_refused_even_with_a_good_original_timestamp():
    """timestamp is the event's time when present: it is not silently replaced."""
    message = refused(track(timestamp="yesterday", originalTimestamp=RECEIVED_ISO))
    assert message.startswith("'timestamp' ")
    assert refused(track(timestamp=1750000000)) == "'timestamp' must be an ISO-8601 datetime string"
    assert refused(track(originalTimestamp={"$time": RECEIVED_ISO})) == (
        "'originalTimestamp' must be an ISO-8601 datetime string")
    assert refused(track(timestamp="2025-02-30T00:00:00Z")).startswith("'timestamp' ")


# ----------------------------------------------------------------------- messageId


def test_a_given_message_id_is_kept():
    assert valid(track(messageId="m-1")).message_id == "m-1"
    assert valid(track(messageId="m" * 128)).message_id == "m" * 128
    for bad in ("", "m" * 129, 5, ["m"]):
        assert refused(track(messageId=bad)) == "'messageId' must be a string of 1 to 128 characters"
    assert "NUL" in refused(track(messageId="m\x00"))


def test_a_message_id_made_from_content_is_stable_and_key_order_independent():
    """The same message sent twice without an id gets the same id; any change of content
    gives another."""
    one = {"type": "track", "userId": "u1", "event": "E", "properties": {"a": 1, "b": [1, 2]},
           "timestamp": RECEIVED_ISO}
    reordered = json.loads(json.dumps(dict(reversed(list(one.items())))))
    reordered["properties"] = {"b": [1, 2], "a": 1}
    assert valid(one).message_id == valid(reordered).message_id == valid(dict(one)).message_id
    assert valid(one).message_id.startswith("content-")
    assert valid({**one, "properties": {"a": 2, "b": [1, 2]}}).message_id != valid(one).message_id
    assert valid({**one, "properties": {"a": 1, "b": [2, 1]}}).message_id != valid(one).message_id
    # The time of receipt is not part of it: a retry later is still the same message.
    assert validate_message(one, "batch", RECEIVED + 5).message_id == valid(one).message_id


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
                       max_size=6), st.randoms())
def test_content_ids_do_not_depend_on_key_order(properties, rnd):
    message = track(properties=properties)
    items = list(message["properties"].items())
    rnd.shuffle(items)
    shuffled = track(properties=dict(items))
    assert valid(message).message_id == valid(shuffled).message_id


# ---------------------------------------------------------------- objects and sizes


@pytest.mark.parametrize("field", ["properties", "context", "traits"])
def test_object_fields_must_be_objects(field):
    for value in ("x", 1, ["a"], True):
        assert refused(track(**{field: value})) == f"'{field}' must be an object"
    assert valid(track(**{field: {}})).type == "track"
    assert valid(track(**{field: None})).type == "track"


def test_a_message_must_be_an_object():
    assert refused(["track"]) == "each message must be a JSON object"
    assert refused(None) == "each message must be a JSON object"


def test_messages_over_32_kb_are_rejected_each_on_its_own():
    """A message of exactly 32 KB is taken; one byte more is rejected, the rest of the
    batch still goes in."""
    base = track(messageId="m", properties={"p": ""})
    filler = MAX_MESSAGE_BYTES - message_size(base)
    at_limit = track(messageId="m", properties={"p": "x" * filler})
    over = track(messageId="m2", properties={"p": "x" * (filler + 1)})
    assert message_size(at_limit) == MAX_MESSAGE_BYTES
    ok, rejected = validate_messages([at_limit, over, track(messageId="m3")], "batch", RECEIVED)
    assert [index for index, _ in ok] == [0, 2]
    assert rejected == [ItemError(1, "message exceeds 32 KB")]


def test_sizes_are_not_measured_when_the_whole_request_is_within_a_message():
    """``measure=False``: the caller knows the request is at most 32 KB, so no message is
    measured (and none could be over)."""
    big = track(properties={"p": "x" * MAX_MESSAGE_BYTES})
    assert [i for i, _ in validate_messages([big], "batch", RECEIVED, measure=False)[0]] == [0]
    assert validate_messages([big], "batch", RECEIVED)[1] == [ItemError(0, "message exceeds 32 KB")]


def test_invalid_messages_are_listed_with_their_index_and_do_not_fail_the_batch():
    messages = [track(), {"type": "track", "userId": "u"}, "x", {"type": "page", "anonymousId": "a"}]
    ok, rejected = validate_messages(messages, "batch", RECEIVED)
    assert [(i, m.type) for i, m in ok] == [(0, "track"), (3, "page")]
    assert [e.as_json() for e in rejected] == [
        {"index": 1, "message": "'event' is required for this type"},
        {"index": 2, "message": "each message must be a JSON object"},
    ]


WRONG_TYPES: list[tuple[str, Any, str]] = [
    ("type", 5, "'type' must be one of"),
    ("userId", {"a": 1}, "'userId' must be a string"),
    ("anonymousId", [1], "'anonymousId' must be a string"),
    ("event", 1.5, "'event' must be a string"),
    ("timestamp", 0, "'timestamp' must be an ISO-8601 datetime string"),
    ("originalTimestamp", [], "'originalTimestamp' must be an ISO-8601 datetime string"),
    ("messageId", {}, "'messageId' must be a string"),
    ("properties", [], "'properties' must be an object"),
    ("context", "ctx", "'context' must be an object"),
    ("traits", 3, "'traits' must be an object"),
]


@pytest.mark.parametrize(("field", "value", "start"), WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_a_wrong_type_in_any_field_gets_a_message_naming_it(field, value, start):
    message = {**track(anonymousId="a1"), field: value}
    ok, rejected = validate_messages([message], "batch", RECEIVED)
    assert ok == [] and len(rejected) == 1
    assert rejected[0].message.startswith(start), rejected[0].message


def test_unknown_fields_are_accepted():
    """Segment messages carry many fields sessiontally does not use (integrations, sentAt...)."""
    message = track(integrations={"All": False}, sentAt=RECEIVED_ISO, version=2, channel="server")
    assert valid(message).event == "Signed Up"


# ------------------------------------------------------------------------ identify


def test_identify_carries_its_traits():
    message = valid({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    assert message.traits == {"plan": "pro"}
    assert valid({"type": "identify", "userId": "u1"}).traits == {}
    assert valid(track(traits={"plan": "pro"})).traits is None  # only identify's count


def test_identify_traits_become_attributes_skipping_invalid_ones():
    update = identify_update("u1", {
        "plan": "pro", "age": 30, "tags": ["a", "b"], "signup": "2025-01-01T00:00:00Z",
        "gone": None,
        "address": {"city": "Paris"},  # nested: left out
        "$internal": 1, "": 2, "external_id": "other",  # invalid names or reserved: left out
        "huge": 2**70, "mixed": ["a", 1],  # invalid values: left out
    })
    assert update.external_id == "u1" and update.update_existing_only is False
    assert update.set == {
        "plan": attributes.Value(attributes.STRING, "pro"),
        "age": attributes.Value(attributes.NUMBER, 30),
        "tags": attributes.Value(attributes.ARRAY, ("a", "b")),
        "signup": attributes.Value(attributes.DATETIME, 1_735_689_600_000_000),
    }
    assert update.remove == ["gone"]
