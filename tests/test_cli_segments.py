"""``sessiontally segment list | show | update | delete`` (names or ids) and ``segment
analytics`` by name, through click's CliRunner on both engines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from cli_support import cli, ok, refused

if TYPE_CHECKING:
    from conftest import TestDatabase

PRO = '{"attribute": "plan", "op": "eq", "value": "pro"}'
US = '{"attribute": "country", "op": "eq", "value": "US"}'





@pytest.fixture
def acme(db: TestDatabase) -> TestDatabase:
    """Workspace ``acme`` with segments ``pros`` (tracked, tagged) and ``americans``."""
    ok(cli(db, "workspace", "create", "acme"))
    ok(cli(db, "segment", "create", "--workspace", "acme", "--name", "pros", "--filter", PRO,
           "--tag", "paid", "--tag", "b2b", "--description", "Paying users", "--analytics"))
    ok(cli(db, "segment", "create", "--workspace", "acme", "--name", "americans", "--filter", US))
    return db


def shown(db: TestDatabase, ref: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(ok(cli(db, "segment", "show", "--workspace", "acme", ref,
                                                 "--json")))
    return found


def test_segment_list_and_show(acme: TestDatabase) -> None:
    header, *rows = ok(cli(acme, "segment", "list", "--workspace", "acme")).splitlines()
    assert header.split() == ["ID", "NAME", "TRACKING", "TAGS", "CREATED"]
    assert [row.split()[1:3] for row in rows] == [["pros", "on"], ["americans", "off"]]
    assert "since" in rows[0] and "paid,b2b" in rows[0]
    lines = [json.loads(line) for line in ok(cli(acme, "segment", "list", "--workspace", "acme",
                                                  "--json")).splitlines()]
    assert [line["name"] for line in lines] == ["pros", "americans"]
    pros = shown(acme, "pros")
    assert pros == lines[0] == shown(acme, str(pros["id"]))
    assert pros["filter"] == json.loads(PRO) and pros["tags"] == ["paid", "b2b"]
    assert pros["analytics_tracking_enabled"] is True and str(pros["tracking_since"]).endswith("Z")
    assert shown(acme, "americans")["tracking_since"] is None
    text = ok(cli(acme, "segment", "show", "--workspace", "acme", "pros")).splitlines()
    assert text[1:4] == ["name: pros", "description: Paying users", "tags: paid, b2b"]
    assert text[5].startswith("analytics tracking: on since ")
    assert refused(cli(acme, "segment", "show", "--workspace", "acme", "nope")) == \
        "Error: no segment 'nope' in workspace 'acme'"


def test_segment_update(acme: TestDatabase) -> None:
    updated = json.loads(ok(cli(acme, "segment", "update", "--workspace", "acme", "americans",
                                "--name", "US", "--description", "", "--tag", "geo",
                                "--filter", PRO, "--json")))
    assert (updated["name"], updated["tags"], updated["filter"]) == ("US", ["geo"], json.loads(PRO))
    assert shown(acme, "US") == updated
    ok(cli(acme, "segment", "update", "--workspace", "acme", "US", "--no-tags"))
    assert shown(acme, "US")["tags"] == [] and shown(acme, "US")["name"] == "US"


def test_a_tracked_segments_filter_change_is_refused(acme: TestDatabase) -> None:
    before = shown(acme, "pros")
    message = refused(cli(acme, "segment", "update", "--workspace", "acme", "pros", "--filter", US))
    assert "turn tracking off" in message
    assert shown(acme, "pros") == before
    ok(cli(acme, "segment", "analytics", "--workspace", "acme", "pros", "off"))  # by name
    ok(cli(acme, "segment", "update", "--workspace", "acme", "pros", "--filter", US))
    ok(cli(acme, "segment", "analytics", "--workspace", "acme", "pros", "on"))
    assert shown(acme, "pros")["filter"] == json.loads(US)


@pytest.mark.parametrize(("args", "words"), [
    ([], "nothing to change"),
    (["--tag", "a", "--no-tags"], "not both"),
    (["--filter", "{"], "invalid filter"),
    (["--name", " "], "segment name"),
])
def test_segment_update_refusals_change_nothing(acme: TestDatabase, args: list[str], words: str) -> None:
    before = shown(acme, "americans")
    assert words in refused(cli(acme, "segment", "update", "--workspace", "acme", "americans", *args))
    assert shown(acme, "americans") == before


def test_segment_delete(acme: TestDatabase) -> None:
    pros = shown(acme, "pros")
    assert "add --yes" in refused(cli(acme, "segment", "delete", "--workspace", "acme", "pros"))
    assert shown(acme, "pros") == pros
    ok(cli(acme, "segment", "delete", "--workspace", "acme", str(pros["id"]), "--yes"))
    assert "no segment" in refused(cli(acme, "segment", "show", "--workspace", "acme", "pros"))
    assert [json.loads(line)["name"] for line in ok(cli(acme, "segment", "list", "--workspace", "acme",
                                                          "--json")).splitlines()] == ["americans"]


def test_an_ambiguous_segment_name_is_refused(acme: TestDatabase) -> None:
    ok(cli(acme, "segment", "create", "--workspace", "acme", "--name", "pros", "--filter", US))
    assert "2 segments" in refused(cli(acme, "segment", "show", "--workspace", "acme", "pros"))
