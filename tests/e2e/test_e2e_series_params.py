"""GET /sessions/data_series over HTTP: every 400, and the lenient ending_at forms."""

from __future__ import annotations

import uuid

import httpx
import pytest
from e2e_support import assert_rate_headers, json_message, series

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenants(shared_db):
    """Workspace A (UTC, two apps) and workspace B (one app), each with a full key."""
    ws_a, apps_a, key_a = shared_db.tenant(apps=2)
    ws_b, apps_b, key_b = shared_db.tenant()
    return {"a": (ws_a, apps_a, key_a), "b": (ws_b, apps_b, key_b)}


def bad_request(client: httpx.Client, key: str, query: str, parameter: str) -> str:
    response = series(client, key, query)
    assert response.status_code == 400, (query, response.status_code, response.text)
    message = json_message(response)
    assert f"'{parameter}'" in message, (query, message)
    assert_rate_headers(response)
    return message


LENGTH_CASES = [
    "unit=day",  # missing
    "length=",
    "length=0",
    "length=101",
    "length=1e2",
    "length=%205",  # ' 5'
    "length=5%20",
    "length=05",
    "length=%2B5",  # '+5'
    "length=+5",  # unencoded '+': decodes to ' 5'
    "length=-5",
    "length=abc",
    "length=5.0",
    "length=99999999999999999999999",
    "length=%EF%BC%95",  # a full-width digit five
]


@pytest.mark.parametrize("query", LENGTH_CASES)
def test_bad_length(client, tenants, query):
    _, _, key = tenants["a"]
    bad_request(client, key, query, "length")


@pytest.mark.parametrize("unit", ["week", "", "days", "minute", "d%C3%A0y"])
def test_bad_unit(client, tenants, unit):
    _, _, key = tenants["a"]
    bad_request(client, key, f"length=3&unit={unit}", "unit")


@pytest.mark.parametrize(
    "ending_at",
    [
        "",
        "yesterday",
        "2025-13-01",
        "2025-02-30",
        "2025-06-01T25:00:00Z",
        "2025-06-01T12:60:00Z",
        "2025-06-01T12:00:60Z",
        "2025-06-01T12:00:00%2B24:00",
        "2025-06-01T12:00:00%2B05:75",
        "2025-06-01T12:00:00XYZ",
        "1900-01-01",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "99999-01-01",
        "2025-06-01T12:00:00Z" + "0" * 300,
        "%00",
    ],
)
def test_bad_ending_at(client, tenants, ending_at):
    _, _, key = tenants["a"]
    bad_request(client, key, f"length=3&ending_at={ending_at}", "ending_at")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "Europe"])
def test_bad_time_zone(client, tenants, zone):
    _, _, key = tenants["a"]
    bad_request(client, key, f"length=3&time_zone={zone}", "time_zone")


def test_unknown_app_and_other_workspaces_app_get_the_same_400(client, tenants):
    _, _, key_a = tenants["a"]
    _, apps_b, _ = tenants["b"]
    missing = series(client, key_a, f"length=3&app_id={uuid.uuid4()}")
    foreign = series(client, key_a, f"length=3&app_id={apps_b[0].app_id}")
    assert missing.status_code == foreign.status_code == 400
    assert missing.json() == foreign.json()
    assert "'app_id'" in json_message(missing)
    bad_request(client, key_a, "length=3&app_id=", "app_id")
    # and the app works for its own workspace's key
    _, _, key_b = tenants["b"]
    assert series(client, key_b, f"length=3&app_id={apps_b[0].app_id}").status_code == 200


def test_own_app_id_is_accepted(client, tenants):
    _, apps_a, key_a = tenants["a"]
    response = series(client, key_a, f"length=3&app_id={apps_a[1].app_id}")
    assert response.status_code == 200, response.text


def test_segment_id_is_refused_for_now(client, tenants):
    _, _, key = tenants["a"]
    bad_request(client, key, f"length=3&segment_id={uuid.uuid4()}", "segment_id")
    bad_request(client, key, "length=3&segment_id=", "segment_id")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("length=3&length=3", "length"),
        ("length=3&length=4", "length"),
        ("length=3&unit=day&unit=day", "unit"),
        ("length=3&ending_at=2025-06-01&ending_at=2025-06-01", "ending_at"),
        ("length=3&time_zone=UTC&time_zone=UTC", "time_zone"),
        ("length=3&app_id=x&app_id=x", "app_id"),
        ("length=3&segment_id=x&segment_id=y", "segment_id"),
    ],
)
def test_repeated_parameter(client, tenants, query, parameter):
    _, _, key = tenants["a"]
    bad_request(client, key, query, parameter)


def test_unknown_parameters_are_ignored(client, tenants):
    _, _, key = tenants["a"]
    response = series(
        client, key, "length=2&unit=day&fields_to_export=sessions&foo=1&foo=2&Length=7&UNIT=x&=&&x"
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2


def test_response_shape_and_unit_is_case_insensitive(client, tenants):
    _, _, key = tenants["a"]
    response = series(client, key, "length=5&unit=HOUR&ending_at=2025-06-01T12:00:00Z")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"data", "message"} and body["message"] == "success"
    assert [p["time"] for p in body["data"]] == [
        f"2025-06-01T{h:02d}:00:00+00:00" for h in range(8, 13)
    ]
    assert all(set(p) == {"time", "sessions"} and p["sessions"] == 0 for p in body["data"])
    assert_rate_headers(response)


def test_malformed_query_strings_never_give_5xx(client, tenants):
    _, _, key = tenants["a"]
    for query in ["length=%", "length=%zz", "%%%=%%%", "length=3&ending_at=%ff%fe", "length=3&time_zone=%00",
                  "length=3&app_id=%ff", "length=\u00e9", "length=3&unit=%C0%80"]:
        response = series(client, key, query)
        assert response.status_code in (200, 400), (query, response.status_code, response.text)
        json_message(response) if response.status_code == 400 else None


# ----------------------------------------------------------------- lenient ending_at


# (raw ending_at as sent in the query string, last day label, last hour label) in UTC.
LENIENT_UTC = [
    ("2025-06-01", "2025-06-01", "2025-06-01T00:00:00+00:00"),
    ("2025-06-01T12:34:56Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:34:56z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01t12:34:56Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:34Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:34:56", "2025-06-01", "2025-06-01T12:00:00+00:00"),  # wall time, UTC zone
    ("2025-06-01T12:34:56.123Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:59:59.999999999Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:34:56,5Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:34:56%2B05:30", "2025-06-01", "2025-06-01T07:00:00+00:00"),  # encoded '+'
    ("2025-06-01T12:34:56+05:30", "2025-06-01", "2025-06-01T07:00:00+00:00"),  # '+' decodes to ' '
    ("2025-06-01T12:34:56%2B0530", "2025-06-01", "2025-06-01T07:00:00+00:00"),
    ("2025-06-01T12:34:56+0530", "2025-06-01", "2025-06-01T07:00:00+00:00"),
    ("2025-06-01T12:34:56%2B05", "2025-06-01", "2025-06-01T07:00:00+00:00"),
    ("2025-06-01T12:34:56-5:00", "2025-06-01", "2025-06-01T17:00:00+00:00"),  # one-digit hour
    ("2025-06-01T12:34:56-05:00", "2025-06-01", "2025-06-01T17:00:00+00:00"),
    ("2025-06-01T12:34:56-0500", "2025-06-01", "2025-06-01T17:00:00+00:00"),
    ("2025-06-01T23:30:00-05:00", "2025-06-02", "2025-06-02T04:00:00+00:00"),  # next UTC day
    ("2025-06-01T02:00:00%2B05:45", "2025-05-31", "2025-05-31T20:00:00+00:00"),  # previous UTC day
    ("2025-06-01%2012:34:56Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),  # space for T
    ("2025-06-01+12:34:56Z", "2025-06-01", "2025-06-01T12:00:00+00:00"),  # '+' for the space
    ("2025-06-01%2012:34:56%2B05:30", "2025-06-01", "2025-06-01T07:00:00+00:00"),
    ("2025-06-01+12:34:56+05:30", "2025-06-01", "2025-06-01T07:00:00+00:00"),
    ("2025-06-01%2012:34:56.5+05:30", "2025-06-01", "2025-06-01T07:00:00+00:00"),
    ("2025-06-01T12:34:56.25-5:00", "2025-06-01", "2025-06-01T17:00:00+00:00"),
]


@pytest.mark.parametrize(("ending_at", "day_label", "hour_label"), LENIENT_UTC)
def test_lenient_ending_at(client, tenants, ending_at, day_label, hour_label):
    _, _, key = tenants["a"]
    for unit, label in (("day", day_label), ("hour", hour_label)):
        response = series(client, key, f"length=3&unit={unit}&ending_at={ending_at}")
        assert response.status_code == 200, (ending_at, unit, response.text)
        data = response.json()["data"]
        assert len(data) == 3
        assert data[-1]["time"] == label, (ending_at, unit, data)


@pytest.mark.parametrize(
    ("ending_at", "day_label", "hour_label"),
    [
        # naive: wall time in the bucketing zone (Asia/Kathmandu, +05:45)
        ("2025-06-01T12:34:56", "2025-06-01", "2025-06-01T12:00:00+05:45"),
        ("2025-06-01", "2025-06-01", "2025-06-01T00:00:00+05:45"),
        # with an offset: an instant
        ("2025-06-01T12:34:56Z", "2025-06-01", "2025-06-01T18:00:00+05:45"),
        ("2025-06-01T20:00:00Z", "2025-06-02", "2025-06-02T01:00:00+05:45"),
        ("2025-06-01T18:14:59Z", "2025-06-01", "2025-06-01T23:00:00+05:45"),
        ("2025-06-01T18:15:00Z", "2025-06-02", "2025-06-02T00:00:00+05:45"),
        ("2025-06-01T12:34:56+05:30", "2025-06-01", "2025-06-01T12:00:00+05:45"),
        ("2025-06-01T12:34:56-5:00", "2025-06-01", "2025-06-01T23:00:00+05:45"),
    ],
)
def test_lenient_ending_at_in_time_zone(client, tenants, ending_at, day_label, hour_label):
    _, _, key = tenants["a"]
    for unit, label in (("day", day_label), ("hour", hour_label)):
        response = series(client, key, f"length=2&unit={unit}&ending_at={ending_at}&time_zone=Asia/Kathmandu")
        assert response.status_code == 200, (ending_at, unit, response.text)
        assert response.json()["data"][-1]["time"] == label, (ending_at, unit, response.json())


@pytest.mark.parametrize("zone", ["Etc/GMT%2B5", "Etc/GMT+5"])  # encoded, and '+' decoded to a space
def test_time_zone_with_a_plus_sign(client, tenants, zone):
    _, _, key = tenants["a"]
    response = series(client, key, f"length=2&unit=hour&ending_at=2025-06-01T12:00:00Z&time_zone={zone}")
    assert response.status_code == 200, response.text
    labels = [p["time"] for p in response.json()["data"]]
    assert labels == ["2025-06-01T06:00:00-05:00", "2025-06-01T07:00:00-05:00"]
