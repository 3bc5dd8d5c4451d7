"""Every error message that gives an example gives one the field accepts (issue 22, item 2).

Each case produces a refusal of one field, reads the example(s) out of its message, and
feeds each one back to the same field, which must take it. A last test finds every string
in src/ that carries ``e.g.`` so that a new message with an example needs a case here.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessiontally import attributes, buckets, ingest, members, segments, tracking
from sessiontally.cli import main, segment_create
from sessiontally.errors import SessiontallyError
from sessiontally.series_query import parse_series_query

SRC = Path(__file__).resolve().parents[1] / "src" / "sessiontally"
NOW_US = int(time.time()) * 1_000_000


def examples(message: str) -> list[str]:
    """The examples a message gives: ``(e.g. A or B)``, ``look like A``, ``did you mean 'A'``."""
    found: list[str] = []
    for listed in re.findall(r"\(e\.g\. ([^)]*)\)", message):
        found += [part.strip().strip("'\"") for part in re.split(r",? or |, ", listed)]
    found += re.findall(r"look like (\S+?),? ", message)
    found += re.findall(r"did you mean '([^']+)'", message)
    return found


def refusal(call: Callable[[], Any]) -> str:
    try:
        call()
    except (ValueError, SessiontallyError) as exc:
        return str(exc)
    raise AssertionError("accepted, expected a refusal")


def _series(ending_at: str) -> Any:
    return parse_series_query([("length", "3"), ("unit", "day"), ("ending_at", ending_at)])


def _session(field: str, value: str) -> Any:
    item = {"session_id": "s1", "external_id": "u1", "app_id": "a1",
            "started_at": "2025-06-01T12:00:00Z", field: value}
    if field == "ended_at":  # after every example's start
        item["started_at"] = "2000-01-01T00:00:00Z"
    return ingest.validate_session(item, NOW_US)


def _message(value: str) -> Any:
    return tracking.validate_message({"type": "track", "userId": "u1", "event": "e",
                                      "timestamp": value}, "batch", NOW_US)


def _filter_time(value: str) -> Any:
    return segments.parse_filter({"attribute": "seen", "op": "gt", "value": {"$time": value}})


# (case, the field's check, values it refuses: each refusal must give an example)
CASES: list[tuple[str, Callable[[str], Any], list[str]]] = [
    ("ending_at", _series, ["not a date", "2025-13-45x"]),
    ("started_at", lambda v: _session("started_at", v), ["not a date", "2025-06-01",
                                                          "2025-06-01T12:00"]),
    ("ended_at", lambda v: _session("ended_at", v), ["not a date", "2025-06-01"]),
    ("tracking timestamp", _message, ["not a date"]),
    ("attribute $time", lambda v: attributes.time_object_instant({"$time": v}), ["not a date"]),
    ("filter $time", _filter_time, ["not a date"]),
    ("member e-mail", members.normalise_email, ["not an e-mail", "a@"]),
]


@pytest.mark.parametrize(("field", "check", "bad"), [(c, f, b) for c, f, bads in CASES for b in bads],
                         ids=[f"{c}:{b}" for c, _, bads in CASES for b in bads])
def test_a_refusals_examples_are_accepted_by_the_same_field(field: str, check: Callable[[str], Any],
                                                           bad: str) -> None:
    message = refusal(lambda: check(bad))
    given = examples(message)
    assert given, f"{field}: {message!r} gives no example"
    for example in given:
        check(example)  # raises if the example is refused


def test_the_issue_case_started_at_not_a_date() -> None:
    message = refusal(lambda: _session("started_at", "not a date"))
    assert "2025-06-01 " not in message + " "  # a bare date has no offset: not an example here
    for example in examples(message):
        _session("started_at", example)


def test_a_zone_suggestion_is_a_zone(tmp_path: Path) -> None:
    db = str(tmp_path / "x.sqlite3")
    result = CliRunner().invoke(main, ["--database", db, "workspace", "create", "w",
                                       "--time-zone", "europe/berlin"])
    assert result.exit_code != 0
    suggested = examples(result.output)
    assert suggested == ["Europe/Berlin"], result.output
    buckets.load_zone(suggested[0])
    again = CliRunner().invoke(main, ["--database", db, "workspace", "create", "w",
                                      "--time-zone", suggested[0]])
    assert again.exit_code == 0, again.output


def test_the_import_refusal_examples_import(tmp_path: Path) -> None:
    db = str(tmp_path / "x.sqlite3")
    runner = CliRunner()
    assert runner.invoke(main, ["--database", db, "workspace", "create", "w"]).exit_code == 0
    created = runner.invoke(main, ["--database", db, "app", "create", "--workspace", "w", "a"])
    app_id = created.output.splitlines()[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"session_id,external_id,app_id,started_at\ns1,u1,{app_id},2025-06-01\n")
    refused = runner.invoke(main, ["--database", db, "import", "--workspace", "w", str(bad)])
    assert refused.exit_code == 1, refused.output
    given = examples(refused.output)
    assert given, refused.output
    rows = "".join(f"s{n},u1,{app_id},{example}\n" for n, example in enumerate(given, 2))
    good = tmp_path / "good.csv"
    good.write_text("session_id,external_id,app_id,started_at\n" + rows)
    accepted = runner.invoke(main, ["--database", db, "import", "--workspace", "w", str(good)])
    assert accepted.exit_code == 0, accepted.output
    assert f"recorded: {len(given)}" in accepted.output


def test_the_segment_filter_help_example_is_a_filter() -> None:
    help_text = segment_create.params[[p.name for p in segment_create.params].index("filter_text")].help
    assert help_text is not None
    example = re.search(r"e\.g\. '(.*)'", help_text)
    assert example is not None, help_text
    segments.parse_filter_json(example.group(1))


# Every string of src/ that gives an example "e.g.", outside comments and docstrings, and
# the case above that checks it. A new one fails here until a case covers it.
COVERED = {
    "timeparse.py": "ending_at, started_at, ended_at, tracking timestamp, $time, import",
    "cli.py": "test_the_segment_filter_help_example_is_a_filter",
}


def _strings_with_examples() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and "e.g." in node.value
                    and id(node) not in docstrings):
                found.append((path.name, node.value))
    return found


def test_every_string_with_an_example_has_a_case() -> None:
    found = _strings_with_examples()
    assert found, "the scan finds nothing?"
    uncovered = [(name, text) for name, text in found if name not in COVERED]
    assert not uncovered, f"messages with examples and no case in this file: {uncovered}"
