"""``sessiontally import --time-zone`` and ``--map``, and an unclosed CSV quote reported at
its line (issue 20 item 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from test_importer import Tenant, summary_of, tenant  # noqa: F401 - tenant is a fixture


def _instants(made: Tenant) -> list[int]:
    with made.connect() as conn:
        return sorted(row[0] for row in conn.execute("SELECT started_at FROM sessions"))


def _micros(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1_000_000)


def test_time_zone_gives_naive_timestamps_their_offset(tenant: Tenant) -> None:  # noqa: F811
    path = tenant.ndjson("naive.ndjson", [
        tenant.session(1, started_at="2025-06-01T12:00:00"),  # CEST: 10:00 UTC
        tenant.session(2, started_at="2025-01-15 08:30"),  # CET: 07:30 UTC
        tenant.session(3, started_at="2025-06-01T12:00:00Z"),  # has an offset: kept
    ])
    refused = tenant.run("--workspace", "acme", path, "--json")
    assert summary_of(refused)["rejected"] == 3 - 1  # without --time-zone they are refused
    result = tenant.run("--workspace", "acme", path, "--time-zone", "Europe/Berlin", "--json")
    assert result.exit_code == 0, result.output
    assert summary_of(result)["recorded"] == 2
    assert _instants(tenant) == sorted([_micros("2025-06-01T10:00:00+00:00"),
                                        _micros("2025-01-15T07:30:00+00:00"),
                                        _micros("2025-06-01T12:00:00+00:00")])


def test_a_wrongly_cased_time_zone_is_refused_with_a_suggestion(tenant: Tenant) -> None:  # noqa: F811
    path = tenant.ndjson("x.ndjson", [tenant.session(1)])
    result = tenant.run("--workspace", "acme", path, "--time-zone", "europe/berlin")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --time-zone: unknown IANA time zone 'europe/berlin'; did you mean 'Europe/Berlin'?"]


def test_map_reads_fields_from_other_csv_columns(tenant: Tenant) -> None:  # noqa: F811
    path = tenant.file("other.csv", [
        "id,user,application,begin,session_id",
        f"a1,u1,{tenant.ios.app_id},2025-06-01T12:00:00Z,ignored",
        f"a2,u2,{tenant.web.app_id},2025-06-01T13:00:00Z,ignored",
    ])
    result = tenant.run("--workspace", "acme", path, "--json", "--map", "session_id=id",
                        "--map", "external_id=user", "--map", "app_id=application",
                        "--map", "started_at=begin")
    assert result.exit_code == 0, result.output
    assert summary_of(result)["recorded"] == 2
    with tenant.connect() as conn:
        assert sorted(r[0] for r in conn.execute("SELECT session_id FROM sessions")) == ["a1", "a2"]


def test_map_renames_ndjson_keys_too(tenant: Tenant) -> None:  # noqa: F811
    item = tenant.session(1)
    item["sid"] = item.pop("session_id")
    path = tenant.file("k.ndjson", [json.dumps(item)])
    result = tenant.run("--workspace", "acme", path, "--json", "--map", "session_id=sid")
    assert summary_of(result)["recorded"] == 1, result.output


def test_map_refuses_an_unknown_field_or_a_missing_column(tenant: Tenant) -> None:  # noqa: F811
    path = tenant.file("h.csv", ["session_id,external_id,app_id,started_at"])
    bad_field = tenant.run("--workspace", "acme", path, "--map", "user=external_id")
    assert bad_field.exit_code == 2 and "--map 'user=external_id'" in bad_field.stderr
    missing = tenant.run("--workspace", "acme", path, "--map", "started_at=begin")
    assert missing.exit_code == 2 and "does not have: begin" in missing.stderr


def test_an_unclosed_quote_is_reported_at_its_line(tenant: Tenant) -> None:  # noqa: F811
    app = tenant.ios.app_id
    path = tenant.file("q.csv", [
        "session_id,external_id,app_id,started_at",
        f"s1,u1,{app},2025-06-01T12:00:00Z",
        f's2,"u2,{app},2025-06-01T12:00:00Z',
        f"s3,u3,{app},2025-06-01T12:00:00Z",
    ])
    result = tenant.run("--workspace", "acme", path, "--json")
    errors = summary_of(result)["errors"]
    assert errors == [{"line": 3, "message": "not valid CSV: a quoted field opened on line 3 is never "
                       "closed (lines 3 to 4 were read into it)"}]
