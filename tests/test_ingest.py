"""sessiontally.ingest: item rules and batch shape of POST /sessions/track (CONTRACT.md s. 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sessiontally import ingest, limits
from sessiontally.ingest import (
    BatchShapeError,
    ItemError,
    ValidSession,
    batch_items,
    validate_batch,
    validate_session,
)

NOW_US = 1_748_779_200_000_000  # 2025-06-01T12:00:00Z
DAY_US = 86_400 * 1_000_000


def item(**changes):
    base = {
        "session_id": "s-1",
        "external_id": "user-1",
        "app_id": "8a3f2c1e-0000-4000-8000-000000000001",
        "started_at": "2025-06-01T11:00:00Z",
        "ended_at": "2025-06-01T11:30:00Z",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def refused(candidate, *words: str) -> str:
    with pytest.raises(ValueError) as info:
        validate_session(candidate, NOW_US)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def test_valid_item():
    assert validate_session(item(), NOW_US) == ValidSession(
        session_id="s-1",
        external_id="user-1",
        app_id="8a3f2c1e-0000-4000-8000-000000000001",
        started_at=NOW_US - 3600 * 1_000_000,
        ended_at=NOW_US - 1800 * 1_000_000,
    )


def test_extra_fields_ignored():
    assert validate_session(item(platform="ios", duration=3), NOW_US).session_id == "s-1"


# ------------------------------------------------------------------ string fields


@pytest.mark.parametrize(("field", "limit"), [("session_id", 128), ("external_id", 997)])
def test_string_lengths(field, limit):
    assert getattr(validate_session(item(**{field: "x"}), NOW_US), field) == "x"
    assert getattr(validate_session(item(**{field: "x" * limit}), NOW_US), field) == "x" * limit
    assert getattr(validate_session(item(**{field: "é" * limit}), NOW_US), field) == "é" * limit  # characters
    refused(item(**{field: "x" * (limit + 1)}), f"'{field}'", f"1 to {limit}")
    refused(item(**{field: ""}), f"'{field}'", f"1 to {limit}")


def test_limits_match_the_contract():
    assert limits.MAX_SESSION_ID_LENGTH == 128
    assert limits.MAX_EXTERNAL_ID_LENGTH == 997
    assert limits.MAX_SESSIONS_PER_REQUEST == 10_000
    assert limits.FUTURE_TOLERANCE_SECONDS == 86_400


@pytest.mark.parametrize("field", ["session_id", "external_id", "app_id"])
def test_string_fields_required(field):
    refused(item(**{field: ...}), f"'{field}'", "required")
    refused(item(**{field: None}), f"'{field}'", "required")


@pytest.mark.parametrize("field", ["session_id", "external_id", "app_id"])
@pytest.mark.parametrize("value", [1, 1.5, True, False, [], ["a"], {"a": 1}])
def test_string_fields_must_be_strings(field, value):
    refused(item(**{field: value}), f"'{field}'", "string")


def test_app_id_length():
    refused(item(app_id=""), "'app_id'")
    refused(item(app_id="x" * (limits.MAX_APP_ID_LENGTH + 1)), "'app_id'")


# ---------------------------------------------------------------------- instants


def test_started_at_forms():
    hour_ago = NOW_US - 3600 * 10**6
    assert validate_session(item(started_at="2025-06-01T16:30:00+05:30"), NOW_US).started_at == hour_ago
    assert validate_session(item(started_at="2025-06-01T06:00:00-5:00"), NOW_US).started_at == hour_ago
    frac = validate_session(item(started_at="2025-06-01T11:00:00.123456789Z"), NOW_US)
    assert frac.started_at == NOW_US - 3600 * 10**6 + 123_456


@pytest.mark.parametrize("value", ["2025-06-01T11:00:00", "2025-06-01", "2025-06-01 11:00"])
def test_started_at_needs_an_offset(value):
    refused(item(started_at=value), "'started_at'", "offset")


@pytest.mark.parametrize("value", ["", "yesterday", "2025-02-30T00:00:00Z", "2025-06-01T24:00:00Z"])
def test_started_at_malformed(value):
    refused(item(started_at=value), "'started_at'")


@pytest.mark.parametrize("value", [None, ..., 1_748_779_200, 1.5, True, ["2025-06-01T11:00:00Z"], {}])
def test_started_at_required_and_a_string(value):
    refused(item(started_at=value), "'started_at'")


def test_started_at_not_before_1970():
    assert validate_session(item(started_at="1970-01-01T00:00:00Z", ended_at=None), NOW_US).started_at == 0
    refused(item(started_at="1969-12-31T23:59:59.999999Z", ended_at=None), "'started_at'", "1970")
    refused(item(started_at="1970-01-01T00:00:00+00:01", ended_at=None), "'started_at'", "1970")
    refused(item(started_at="0001-01-01T00:00:00Z", ended_at=None), "'started_at'")


def test_started_at_at_most_24_hours_ahead():
    def at(us: int) -> dict:
        text = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()
        return item(started_at=text, ended_at=None)

    assert validate_session(at(NOW_US + DAY_US), NOW_US).started_at == NOW_US + DAY_US
    refused(at(NOW_US + DAY_US + 1), "'started_at'", "24 hours")
    refused(item(started_at="9999-12-31T23:59:59Z", ended_at=None), "'started_at'")


def test_ended_at_optional():
    assert validate_session(item(ended_at=...), NOW_US).ended_at is None
    assert validate_session(item(ended_at=None), NOW_US).ended_at is None


def test_ended_at_not_before_started_at():
    same = validate_session(item(ended_at="2025-06-01T11:00:00Z"), NOW_US)
    assert same.ended_at == same.started_at
    refused(item(ended_at="2025-06-01T10:59:59.999999Z"), "'ended_at'", "'started_at'")
    # offsets are honoured: 16:00+05:30 is 10:30Z, before 11:00Z
    refused(item(ended_at="2025-06-01T16:00:00+05:30"), "'ended_at'")


@pytest.mark.parametrize("value", ["2025-06-01T11:30:00", "soon", "", 1_748_779_200, 1.5, True, [], {}])
def test_ended_at_malformed(value):
    refused(item(ended_at=value), "'ended_at'")


def test_ended_at_may_be_later_than_now():
    assert validate_session(item(ended_at="2030-01-01T00:00:00Z"), NOW_US).ended_at is not None


@pytest.mark.parametrize("value", [None, [], "session", 1, True, ["s"]])
def test_item_must_be_an_object(value):
    refused(value, "object")


# ------------------------------------------------------------------------- batch


def test_validate_batch_keeps_valid_items_and_indexes_errors():
    items = [
        item(session_id="a"),
        item(session_id=""),
        "not an object",
        item(session_id="b", started_at="2025-06-01T11:00:00"),
        item(session_id="c", ended_at=None),
    ]
    valid, errors = validate_batch(items, NOW_US)
    assert [(i, v.session_id) for i, v in valid] == [(0, "a"), (4, "c")]
    assert [e.index for e in errors] == [1, 2, 3]
    assert "'session_id'" in errors[0].message
    assert "object" in errors[1].message
    assert "'started_at'" in errors[2].message
    assert errors[0].as_json() == {"index": 1, "message": errors[0].message}


def test_validate_batch_all_valid_and_all_invalid():
    valid, errors = validate_batch([item(session_id=str(i)) for i in range(3)], NOW_US)
    assert len(valid) == 3 and errors == []
    valid, errors = validate_batch([1, 2], NOW_US)
    assert valid == [] and [e.index for e in errors] == [0, 1]
    assert all(isinstance(e, ItemError) for e in errors)


def test_duplicates_within_a_batch_are_not_refused_here():
    # deduplication is the store's job ("the first write wins")
    valid, errors = validate_batch([item(), item()], NOW_US)
    assert len(valid) == 2 and errors == []


@pytest.mark.parametrize("body", [None, [], "sessions", 1, True, [{"sessions": []}]])
def test_batch_body_must_be_an_object(body):
    with pytest.raises(BatchShapeError, match="object"):
        batch_items(body)


@pytest.mark.parametrize("body", [{}, {"session": [item()]}, {"sessions": None}, {"sessions": item()},
                                  {"sessions": "x"}, {"sessions": 3}])
def test_batch_needs_a_sessions_array(body):
    with pytest.raises(BatchShapeError, match="'sessions'"):
        batch_items(body)


def test_batch_size_limits():
    with pytest.raises(BatchShapeError, match="at least one"):
        batch_items({"sessions": []})
    assert len(batch_items({"sessions": [item()]})) == 1
    assert len(batch_items({"sessions": [{}] * 10_000})) == 10_000
    with pytest.raises(BatchShapeError, match="10000"):
        batch_items({"sessions": [{}] * 10_001})


def test_batch_items_returns_the_items_unvalidated():
    items = [item(), 1, None]
    assert batch_items({"sessions": items, "other": True}) == items
    assert isinstance(ingest.BatchShapeError("x"), ValueError)
