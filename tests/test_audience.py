"""Use cases of users and segments, in process (Service, admin, CLI), on every engine.

Users: set, overwrite, remove with null, ``_update_existing_only``, every value type read
back. Segments: creation (filter validated, canonical JSON stored, tags, description), the
25-tracked limit through admin, the Braze-shaped list and details, and workspace
isolation in details, in ``data_series``'s ``segment_id`` and in ``sessiontally segment
analytics``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner
from segment_support import FakeClock, new_workspace, service_for, store_url

from sessiontally import admin, attributes, audience
from sessiontally.api.errors import error_body, status_of
from sessiontally.attributes import Value
from sessiontally.cli import main
from sessiontally.errors import SessiontallyError

US = '{"attribute": "country", "op": "eq", "value": "US"}'
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def service(store):
    return service_for(store, FakeClock(NOW))


@pytest.fixture
def ws(store):
    return new_workspace(store)


def stored(store, ws, external_id):
    text = store.user_attributes(ws.workspace_id, external_id)
    return None if text is None else attributes.decode_values(orjson.loads(text))


def track(service, ws, *objects, **parts):
    return service.track_users(ws, {"attributes": list(objects), **parts})


def client_error(call, *args):
    with pytest.raises(SessiontallyError) as raised:
        call(*args)
    return status_of(raised.value), error_body(raised.value)


# ----------------------------------------------------------------------------- users


def test_set_overwrite_and_remove_with_null(service, store, ws):
    assert track(service, ws, {"external_id": "u1", "country": "US", "plan": "pro", "age": 31}) == {
        "message": "success",
        "attributes_processed": 1,
    }
    assert stored(store, ws, "u1") == {
        "country": Value("s", "US"), "plan": Value("s", "pro"), "age": Value("n", 31),
    }
    # Other keys of an object set or overwrite; keys not mentioned are kept; null removes.
    track(service, ws, {"external_id": "u1", "country": "FR", "plan": None, "vip": True})
    assert stored(store, ws, "u1") == {
        "country": Value("s", "FR"), "age": Value("n", 31), "vip": Value("b", True),
    }
    # Removing what is not there is fine; a type may change.
    track(service, ws, {"external_id": "u1", "nothing": None, "age": "thirty-one"})
    assert stored(store, ws, "u1") == {
        "country": Value("s", "FR"), "age": Value("s", "thirty-one"), "vip": Value("b", True),
    }
    # Objects of one request apply in order: the last write wins.
    response = track(service, ws, {"external_id": "u1", "country": "DE"},
                     {"external_id": "u1", "country": "IT"}, {"external_id": "u2", "plan": "team"})
    assert response["attributes_processed"] == 3
    assert stored(store, ws, "u1")["country"] == Value("s", "IT")
    assert stored(store, ws, "u2") == {"plan": Value("s", "team")}
    # Users are per workspace.
    assert stored(store, new_workspace(store), "u1") is None


def test_update_existing_only(service, store, ws):
    track(service, ws, {"external_id": "old", "plan": "free"})
    response = track(
        service, ws,
        {"external_id": "old", "plan": "pro", "_update_existing_only": True},
        {"external_id": "ghost", "plan": "pro", "_update_existing_only": True},
        {"external_id": "born", "plan": "free", "_update_existing_only": False},
        {"external_id": "born", "plan": "team", "_update_existing_only": True},  # created just above
    )
    assert response == {"message": "success", "attributes_processed": 4}
    assert stored(store, ws, "old") == {"plan": Value("s", "pro")}
    assert stored(store, ws, "ghost") is None  # not created
    assert stored(store, ws, "born") == {"plan": Value("s", "team")}
    status, body = client_error(track, service, ws, {"external_id": "x", "_update_existing_only": "yes"})
    assert status == 400 and body["errors"] == [
        {"index": 0, "message": "'_update_existing_only' must be a boolean"}
    ]


def test_every_type_is_stored_and_read_back(service, store, ws):
    track(service, ws, {
        "external_id": "typed",
        "s": "plain text",
        "empty": "",
        "date_only": "2025-06-01",  # no offset: stays a string
        "i": 42,
        "big": 2**63 - 1,
        "neg": -(2**63),
        "f": 2.5,
        "yes": True,
        "no": False,
        "dt": "2025-06-01T12:00:00+02:00",
        "dt_z": "2025-06-01T10:00:00.123456Z",
        "dt_obj": {"$time": "2025-06-01"},
        "arr": ["a", "b", "a"],
        "none": [],
        "unicode": "Zürich ✓",
    })
    assert stored(store, ws, "typed") == {
        "s": Value("s", "plain text"),
        "empty": Value("s", ""),
        "date_only": Value("s", "2025-06-01"),
        "i": Value("n", 42),
        "big": Value("n", 2**63 - 1),
        "neg": Value("n", -(2**63)),
        "f": Value("n", 2.5),
        "yes": Value("b", True),
        "no": Value("b", False),
        "dt": Value("d", int(datetime(2025, 6, 1, 10, tzinfo=UTC).timestamp()) * 1_000_000),
        "dt_z": Value("d", int(datetime(2025, 6, 1, 10, tzinfo=UTC).timestamp()) * 1_000_000 + 123_456),
        "dt_obj": Value("d", int(datetime(2025, 6, 1, tzinfo=UTC).timestamp()) * 1_000_000),
        "arr": Value("a", ("a", "b", "a")),
        "none": Value("a", ()),
        "unicode": Value("s", "Zürich ✓"),
    }
    values = stored(store, ws, "typed")
    assert type(values["i"].v) is int and type(values["f"].v) is float and type(values["yes"].v) is bool


def test_partial_errors_and_unsupported_parts(service, store, ws):
    response = track(
        service, ws,
        {"external_id": "ok", "plan": "pro"},
        {"country": "US"},
        {"external_id": "bad", "plan": {"inc": 1}},
        {"external_id": "also-ok", "age": 3},
        events=[{"external_id": "ok", "name": "e"}, {}],
        purchases=[{"external_id": "ok"}],
    )
    assert response["message"] == "success"
    assert response["attributes_processed"] == 2
    errors = response["errors"]
    assert [(e["index"], e.get("part")) for e in errors] == [
        (1, None), (2, None), (0, "events"), (1, "events"), (0, "purchases"),
    ]
    assert errors[0]["message"] == "'external_id' is required"
    assert "'plan'" in errors[1]["message"]
    assert all("not supported" in e["message"] for e in errors[2:])
    assert stored(store, ws, "ok") == {"plan": Value("s", "pro")}
    assert stored(store, ws, "bad") is None


def test_nothing_valid_is_a_400_with_errors(service, store, ws):
    status, body = client_error(track, service, ws, {"external_id": ""}, {"external_id": 5})
    assert status == 400
    assert body["message"] == "no valid attributes objects in the request"
    assert [e["index"] for e in body["errors"]] == [0, 1]
    status, body = client_error(service.track_users, ws, {"events": [{"name": "x"}]})
    assert status == 400 and body["errors"] == [
        {"index": 0, "part": "events",
         "message": "'events' are not supported by this service; only 'attributes' are processed"}
    ]
    for bad in ([], {"attributes": []}, {"attributes": {}}, {"attributes": [{}] * 76}, {}, "x"):
        status, body = client_error(service.track_users, ws, bad)
        assert status == 400 and "errors" not in body, (bad, body)


# -------------------------------------------------------------------------- segments


def admin_error(call, *args, **kwargs) -> str:
    with pytest.raises(SessiontallyError) as raised:
        call(*args, **kwargs)
    return str(raised.value)


def test_create_segment_validates_the_filter_precisely(store, ws):
    cases = {
        '{"attribute": "country", "op": "equals", "value": "US"}':
            "invalid filter: filter.op: unknown operator 'equals' (expected one of eq, ne, gt, gte, lt,"
            " lte, in, not_in, contains, starts_with, exists, not_exists)",
        '{"all": [{"attribute": "a", "op": "eq", "value": 1}, {"attribute": "b", "op": "in", "value": 2}]}':
            "invalid filter: filter.all[1].value: must be an array of values for 'in'",
        '{"all": []}': "invalid filter: filter.all: must hold at least one filter",
        '{"attribute": "a", "op": "exists", "value": 1}':
            "invalid filter: filter.value: 'exists' takes no value",
        '{"attribute": "a", "op": "gt", "value": true}':
            "invalid filter: filter.value: must be a number, string or datetime for 'gt' (got a boolean)",
        '{"attribute": "a", "op": "eq"}': "invalid filter: filter.value: is required for 'eq'",
        "{not json": None,
        "[]": None,
    }
    for text, message in cases.items():
        got = admin_error(admin.create_segment, store, ws, "s", text)
        assert got.startswith("invalid filter: filter"), got
        if message is not None:
            assert got == message
    assert store.list_segments(ws.workspace_id, 0, 100, False) == []


def test_create_segment_stores_canonical_json_tags_and_description(store, ws):
    segment = admin.create_segment(
        store, ws, "  Big spenders  ",
        '{"any": [ {"value": "US", "op": "eq", "attribute": "country"},'
        ' {"op": "exists", "attribute": "vip"}, {"attribute": "signup", "op": "gte",'
        ' "value": {"$time": "2025-01-01"}} ] }',
        description="People who buy",
        tags=["money", " money ", "q3"],
    )
    assert segment.name == "Big spenders"
    assert segment.filter_json == (
        '{"any":[{"attribute":"country","op":"eq","value":"US"},{"attribute":"vip","op":"exists"},'
        '{"attribute":"signup","op":"gte","value":{"$time":"2025-01-01"}}]}'
    )
    assert segment.tags == ("money", "q3")
    assert segment.description == "People who buy"
    assert segment.analytics_enabled is False and segment.tracking_since is None
    uuid.UUID(segment.segment_id)
    assert store.get_segment(ws.workspace_id, segment.segment_id) == segment

    assert "segment name" in admin_error(admin.create_segment, store, ws, "   ", US)
    assert "tags" in admin_error(admin.create_segment, store, ws, "s", US, tags=["", "x"])
    assert "tags" in admin_error(admin.create_segment, store, ws, "s", US, tags=[f"t{i}" for i in range(21)])
    assert "description" in admin_error(admin.create_segment, store, ws, "s", US, description="d" * 4001)


def test_admin_tracking_limit_message_and_room(store, ws):
    made = [admin.create_segment(store, ws, f"s{i}", US, analytics=True) for i in range(25)]
    assert all(s.analytics_enabled and s.tracking_since is not None for s in made)
    message = admin_error(admin.create_segment, store, ws, "26th", US, analytics=True)
    assert message == (
        "at most 25 segments per workspace may have analytics tracking on; turn one off first"
    )
    extra = admin.create_segment(store, ws, "26th", US)
    assert admin_error(admin.set_segment_analytics, store, ws, extra.segment_id, True) == message
    before = made[0].tracking_since
    off = admin.set_segment_analytics(store, ws, made[0].segment_id, False)
    assert off.analytics_enabled is False and off.tracking_since == before
    assert admin.set_segment_analytics(store, ws, extra.segment_id, True).analytics_enabled
    assert "no segment" in admin_error(admin.set_segment_analytics, store, ws, "nope", True)


def test_list_segments_pages_of_100(service, store, ws):
    made = [admin.create_segment(store, ws, f"s{i:03d}", US, tags=[f"t{i}"], analytics=i % 50 == 0)
            for i in range(205)]
    admin.create_segment(store, new_workspace(store), "elsewhere", US)

    def page(**params):
        return service.list_segments(ws, [(k, str(v)) for k, v in params.items()])

    first = page()
    assert first["message"] == "success" and list(first) == ["segments", "message"]
    assert len(first["segments"]) == 100
    assert first["segments"][0] == {
        "id": made[0].segment_id, "name": "s000", "analytics_tracking_enabled": True, "tags": ["t0"],
    }
    assert first["segments"][1]["analytics_tracking_enabled"] is False
    names = lambda body: [s["name"] for s in body["segments"]]  # noqa: E731
    everything = [s.name for s in made]
    assert names(page(page=0, sort_direction="asc")) == everything[:100]
    assert names(page(page=1)) == everything[100:200]
    assert names(page(page=2)) == everything[200:]
    assert page(page=3) == {"segments": [], "message": "success"}
    assert page(page=99999) == {"segments": [], "message": "success"}
    assert names(page(sort_direction="desc")) == everything[::-1][:100]
    assert names(page(sort_direction="DESC", page=2)) == everything[::-1][200:]
    assert names(page(unknown="ignored")) == everything[:100]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("page", "-1")], "'page' must be a non-negative integer"),
        ([("page", "x")], "'page' must be a non-negative integer"),
        ([("page", "")], "'page' must be a non-negative integer"),
        ([("page", "1.5")], "'page' must be a non-negative integer"),
        ([("page", "٣")], "'page' must be a non-negative integer"),
        ([("page", "0"), ("page", "1")], "'page' is given more than once"),
        ([("sort_direction", "up")], "'sort_direction' must be 'asc' or 'desc'"),
        ([("sort_direction", "asc"), ("sort_direction", "asc")], "'sort_direction' is given more than once"),
    ],
)
def test_list_segments_bad_parameters(service, ws, pairs, message):
    assert client_error(service.list_segments, ws, pairs) == (400, {"message": message})


def test_segment_details_shape(service, store, ws):
    segment = admin.create_segment(
        store, ws, "US pros",
        '{"all": [{"attribute": "country", "op": "eq", "value": "US"},'
        ' {"attribute": "plan", "op": "in", "value": ["pro", "team"]}]}',
        description="Paying Americans", tags=["b2b"],
    )
    details = service.segment_details(ws, [("segment_id", segment.segment_id)])
    assert list(details) == [
        "created_at", "updated_at", "name", "description", "text_description", "tags", "message",
    ]
    assert details["name"] == "US pros"
    assert details["description"] == "Paying Americans"
    assert details["text_description"] == "country equals 'US' and (plan is one of 'pro', 'team')"
    assert details["tags"] == ["b2b"]
    assert details["message"] == "success"
    created = datetime.fromisoformat(details["created_at"])
    assert created.utcoffset().total_seconds() == 0 and details["created_at"].endswith("Z")
    assert abs(created.timestamp() - segment.created_at / 1e6) < 0.001
    assert details["updated_at"] == details["created_at"]

    admin.set_segment_analytics(store, ws, segment.segment_id, True)
    later = service.segment_details(ws, [("segment_id", segment.segment_id)])
    assert later["created_at"] == details["created_at"]
    assert datetime.fromisoformat(later["updated_at"]) >= created


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "'segment_id' is required"),
        ([("segment_id", "")], "'segment_id' is required"),
        ([("segment_id", "no-such-segment")], "'segment_id' is not a segment of this workspace"),
        ([("segment_id", "x" * 5000)], "'segment_id' is not a segment of this workspace"),
        ([("segment_id", "a"), ("segment_id", "b")], "'segment_id' is given more than once"),
    ],
)
def test_segment_details_bad_parameters(service, ws, pairs, message):
    assert client_error(service.segment_details, ws, pairs) == (400, {"message": message})


# ------------------------------------------------------------------------- isolation


UNKNOWN = "'segment_id' is not a segment of this workspace"
UNTRACKED = "'segment_id' names a segment whose analytics tracking is off"


def test_another_workspaces_segment_is_not_a_segment_of_this_workspace(service, store):
    a, b = new_workspace(store), new_workspace(store)
    foreign = admin.create_segment(store, b, "b's", US, analytics=True)
    untracked = admin.create_segment(store, a, "a's, untracked", US)
    series = "length=3", "unit=day"

    def data_series(ws, segment_id):
        pairs = [tuple(p.split("=")) for p in series] + [("segment_id", segment_id)]
        return client_error(service.data_series, ws, pairs)

    assert client_error(service.segment_details, a, [("segment_id", foreign.segment_id)]) == (
        400, {"message": UNKNOWN})
    assert data_series(a, foreign.segment_id) == (400, {"message": UNKNOWN})
    assert data_series(a, "no-such-segment") == (400, {"message": UNKNOWN})
    assert data_series(a, untracked.segment_id) == (400, {"message": UNTRACKED})
    assert UNKNOWN != UNTRACKED
    # B still sees its own.
    assert service.segment_details(b, [("segment_id", foreign.segment_id)])["name"] == "b's"
    points = service.data_series(b, [("length", "3"), ("segment_id", foreign.segment_id)])
    assert [p["sessions"] for p in points] == [0, 0, 0]
    assert service.list_segments(a, [])["segments"] == [
        {"id": untracked.segment_id, "name": "a's, untracked", "analytics_tracking_enabled": False,
         "tags": []}
    ]


def test_cli_segment_analytics_refuses_another_workspaces_segment(store):
    a, b = new_workspace(store), new_workspace(store)
    foreign = admin.create_segment(store, b, "b's", US)
    own = admin.create_segment(store, a, "a's", US)
    runner = CliRunner()

    def analytics(ws, segment_id, state):
        return runner.invoke(main, ["segment", "analytics", "--database", store_url(store),
                                    "--workspace", ws.name, segment_id, state])

    refused = analytics(a, foreign.segment_id, "on")
    unknown = analytics(a, "no-such-segment", "on")
    assert refused.exit_code != 0 and unknown.exit_code != 0
    assert refused.stdout == ""
    line = refused.stderr.strip()
    assert "\n" not in line and foreign.segment_id in line and "no segment" in line
    # The same answer as for an id that exists nowhere: nothing leaks across workspaces.
    assert line.replace(foreign.segment_id, "X") == unknown.stderr.strip().replace("no-such-segment", "X")
    assert store.get_segment(b.workspace_id, foreign.segment_id).analytics_enabled is False

    done = analytics(a, own.segment_id, "on")
    assert done.exit_code == 0, done.stderr
    assert store.get_segment(a.workspace_id, own.segment_id).analytics_enabled is True
    assert analytics(b, foreign.segment_id, "on").exit_code == 0
    assert store.get_segment(b.workspace_id, foreign.segment_id).analytics_enabled is True


def test_cli_segment_create(store):
    ws = new_workspace(store)
    runner = CliRunner()
    base = ["segment", "create", "--database", store_url(store), "--workspace", str(ws.workspace_id)]
    made = runner.invoke(main, [*base, "--name", "US", "--filter", US, "--tag", "a", "--tag", "b",
                                "--description", "d", "--analytics"])
    assert made.exit_code == 0, made.stderr
    segment_id = made.stdout.strip()
    segment = store.get_segment(ws.workspace_id, segment_id)
    assert segment.tags == ("a", "b") and segment.description == "d" and segment.analytics_enabled
    as_json = runner.invoke(main, [*base, "--name", "FR", "--filter",
                                   '{"attribute":"country","op":"eq","value":"FR"}', "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    body = orjson.loads(as_json.stdout)
    assert body == {"id": body["id"], "name": "FR", "analytics_tracking_enabled": False, "tags": []}
    bad = runner.invoke(main, [*base, "--name", "bad", "--filter", '{"attribute": "x", "op": "like"}'])
    assert bad.exit_code != 0 and bad.stdout == ""
    assert "invalid filter: filter.op: unknown operator 'like'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------ classifier


def test_classifier_matches_users_without_attributes_only_by_absence():
    classify = audience.SegmentClassifier()
    from sessiontally.store.base import TrackedSegment

    tracked = [
        TrackedSegment(1, '{"attribute":"country","op":"eq","value":"US"}'),
        TrackedSegment(2, '{"attribute":"country","op":"not_exists"}'),
        TrackedSegment(3, '{"not":{"attribute":"country","op":"eq","value":"US"}}'),
    ]
    us = orjson.dumps(attributes.encode_values({"country": Value("s", "US")})).decode()
    empty = "{}"
    matches = classify(tracked, ["us", "empty", "none"], {"us": us, "empty": empty})
    assert matches == {"us": (1,), "empty": (2, 3), "none": (2, 3)}


def test_iso_micros():
    assert audience.iso_micros(0) == "1970-01-01T00:00:00.000Z"
    assert audience.iso_micros(1_750_000_000_123_999) == "2025-06-15T15:06:40.123Z"


def test_segment_series_in_hour_buckets_of_a_quarter_hour_zone(store):
    """Asia/Kathmandu is +05:45: hour buckets start at :15 UTC; a tracked segment's series
    is cut exactly there, like the all-users series."""
    ws = new_workspace(store, "Asia/Kathmandu")
    app = admin.create_app(store, ws, "app")
    service = service_for(store, FakeClock(NOW))
    us = admin.create_segment(store, ws, "US", US, analytics=True)
    service.track_users(ws, {"attributes": [{"external_id": "u", "country": "US"}]})
    service.record_items(ws, [
        {"session_id": sid, "external_id": user, "app_id": app.app_id, "started_at": started}
        for sid, user, started in [
            ("a", "u", "2025-06-01T00:14:59Z"),  # 05:59:59 local
            ("b", "u", "2025-06-01T00:15:00Z"),  # 06:00:00 local
            ("c", "x", "2025-06-01T00:15:00Z"),
            ("d", "u", "2025-06-01T01:14:59.999999Z"),
        ]
    ])
    pairs = [("length", "3"), ("unit", "hour"), ("ending_at", "2025-06-01T06:30:00")]
    labels = ["2025-06-01T04:00:00+05:45", "2025-06-01T05:00:00+05:45", "2025-06-01T06:00:00+05:45"]
    for segment_pairs, expected in (([], [0, 1, 3]), ([("segment_id", us.segment_id)], [0, 1, 2])):
        points = service.data_series(ws, pairs + segment_pairs)
        assert points == [{"time": t, "sessions": n} for t, n in zip(labels, expected, strict=True)]
