"""``sessiontally import``: NDJSON and CSV files recorded with the API's rules (sections 4, 8)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessiontally import importer
from sessiontally.cli import main
from sessiontally.store import DATABASE_ENV, open_store
from sessiontally.store.base import Store, Workspace

START = "2025-06-01T12:00:00Z"


class Tenant:
    """A database with workspace ``acme`` (apps ``ios`` and ``web``) and helpers."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.database = str(tmp_path / "import.sqlite3")
        self.store: Store = open_store(self.database)
        self.store.migrate()
        self.workspace: Workspace = self.store.create_workspace("acme", "Europe/Paris", 1000)
        self.ios = self.store.create_app(self.workspace.workspace_id,
                                         "11111111-1111-4111-8111-111111111111", "iOS", "ios")
        self.web = self.store.create_app(self.workspace.workspace_id,
                                         "22222222-2222-4222-8222-222222222222", "Web", "web")

    def session(self, n: int, app: str | None = None, **fields: object) -> dict[str, object]:
        item: dict[str, object] = {
            "session_id": f"s{n}", "external_id": f"u{n % 3}",
            "app_id": app or self.ios.app_id, "started_at": START,
        }
        item.update(fields)
        return item

    def file(self, name: str, lines: list[str] | str, encoding: str = "utf-8") -> str:
        path = self.tmp_path / name
        text = lines if isinstance(lines, str) else "".join(line + "\n" for line in lines)
        path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
        return str(path)

    def ndjson(self, name: str, items: list[object]) -> str:
        return self.file(name, [json.dumps(item) for item in items])

    def run(self, *args: str, stdin: bytes | None = None) -> Result:
        return CliRunner().invoke(main, ["--database", self.database, "import", *args],
                                  input=stdin, catch_exceptions=False)

    def total(self) -> int:
        """Sessions in the store, checked three ways (raw rows, rollup, per-app rollups)."""
        wid = self.workspace.workspace_id
        raw = self.store.count_raw_sessions(wid)
        assert self.store.rollup_total(wid, 0, 0) == raw
        per_app = sum(self.store.rollup_total(wid, app.app_key, 0) for app in (self.ios, self.web))
        assert per_app == raw
        return raw


@pytest.fixture
def tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    made = Tenant(tmp_path)
    yield made
    made.store.close()


def summary_of(result: Result) -> dict[str, object]:
    return json.loads(result.stdout)


# ---------------------------------------------------------------- happy paths


def test_ndjson_happy_path(tenant: Tenant) -> None:
    items = [tenant.session(i, ended_at="2025-06-01T14:30:00+02:00") for i in range(5)]
    items.append(tenant.session(5, app=tenant.web.app_id, started_at="2025-06-02T08:00:00-05:00"))
    result = tenant.run("--workspace", "acme", tenant.ndjson("s.ndjson", items), "--json")
    assert result.exit_code == 0, result.stderr
    assert summary_of(result) == {"recorded": 6, "duplicates": 0, "rejected": 0, "errors": []}
    assert "recorded: 6" in result.stderr and "rejected: 0" in result.stderr
    assert tenant.total() == 6
    assert tenant.store.rollup_total(tenant.workspace.workspace_id, tenant.web.app_key, 0) == 1


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".NDJSON"])
def test_ndjson_extensions(tenant: Tenant, suffix: str) -> None:
    path = tenant.ndjson("s" + suffix, [tenant.session(1)])
    assert summary_of(tenant.run("--workspace", "1", path, "--json"))["recorded"] == 1


def test_csv_happy_path(tenant: Tenant) -> None:
    path = tenant.file("s.csv", "\ufeff" + "\r\n".join([  # BOM and CRLF, as spreadsheets write
        "app_id,session_id,started_at,ended_at,external_id,comment",  # any order, extra column
        f"{tenant.ios.app_id},a1,{START},2025-06-01T12:05:00Z,u1,x",
        f"{tenant.ios.app_id},a2,{START},,u2,empty ended_at is absent",
        f'{tenant.web.app_id},"a,3",2025-06-01T13:00:00+02:00,,"user ""quoted""","multi',
        'line"',
    ]) + "\r\n")
    result = tenant.run("--workspace", "acme", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert summary_of(result) == {"recorded": 3, "duplicates": 0, "rejected": 0, "errors": []}
    assert tenant.total() == 3
    conn = tenant.store.connections.reader()  # type: ignore[attr-defined]
    rows = dict(conn.execute("SELECT session_id, external_id FROM sessions").fetchall())
    assert rows == {"a1": "u1", "a2": "u2", "a,3": 'user "quoted"'}
    assert conn.execute("SELECT ended_at FROM sessions WHERE session_id = 'a2'").fetchone() == (None,)


def test_csv_without_ended_at_column(tenant: Tenant) -> None:
    path = tenant.file("s.csv", ["session_id,external_id,app_id,started_at",
                                 f"b1,u1,{tenant.ios.app_id},{START}"])
    assert summary_of(tenant.run("--workspace", "acme", path, "--json"))["recorded"] == 1


def test_format_override(tenant: Tenant) -> None:
    csv_in_txt = tenant.file("export.txt", ["session_id,external_id,app_id,started_at",
                                            f"c1,u1,{tenant.ios.app_id},{START}"])
    refused = tenant.run("--workspace", "acme", csv_in_txt)
    assert refused.exit_code == 2 and "--format" in refused.stderr
    result = tenant.run("--workspace", "acme", "--format", "CSV", csv_in_txt, "--json")
    assert summary_of(result)["recorded"] == 1
    ndjson_in_csv = tenant.ndjson("odd.csv", [tenant.session(2)])
    assert summary_of(tenant.run("--workspace", "acme", "--format", "ndjson", ndjson_in_csv,
                                 "--json"))["recorded"] == 1
    bad = tenant.run("--workspace", "acme", "--format", "xml", csv_in_txt)
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


# --------------------------------------------------------------------- duplicates


def test_duplicates_in_the_file_and_across_imports(tenant: Tenant) -> None:
    items = [tenant.session(1), tenant.session(2),
             tenant.session(1, started_at="2025-06-05T00:00:00Z"),  # same id: the first wins
             tenant.session(3)]
    path = tenant.ndjson("d.ndjson", items)
    first = summary_of(tenant.run("--workspace", "acme", path, "--json"))
    assert first == {"recorded": 3, "duplicates": 1, "rejected": 0, "errors": []}
    again = tenant.run("--workspace", "acme", path, "--json")
    assert again.exit_code == 0
    assert summary_of(again) == {"recorded": 0, "duplicates": 4, "rejected": 0, "errors": []}
    assert tenant.total() == 3
    conn = tenant.store.connections.reader()  # type: ignore[attr-defined]
    (started,) = conn.execute("SELECT started_at FROM sessions WHERE session_id = 's1'").fetchone()
    assert started == 1748779200 * 1_000_000  # 2025-06-01T12:00:00Z, the first line's


def test_duplicates_across_batches(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "BATCH_SIZE", 3)
    items = [tenant.session(i % 4) for i in range(10)]  # s0..s3, then repeats
    summary = importer.import_file(tenant.store, tenant.workspace, tenant.ndjson("b.ndjson", items))
    assert (summary.recorded, summary.duplicates, summary.rejected) == (4, 6, 0)
    assert tenant.total() == 4


# ---------------------------------------------------------------------- rejections


def test_bad_lines_are_reported_with_their_line_numbers(tenant: Tenant) -> None:
    lines = [
        json.dumps(tenant.session(1)),                                      # 1 ok
        '{"session_id": "s2", oops',                                        # 2 not JSON
        json.dumps(tenant.session(3)),                                      # 3 ok
        json.dumps({"session_id": "s4", "external_id": "u", "app_id": tenant.ios.app_id}),  # 4
        json.dumps(tenant.session(5, app="33333333-3333-4333-8333-333333333333")),  # 5 app
        "",                                                                 # 6 blank: skipped
        json.dumps(tenant.session(7, started_at="2999-01-01T00:00:00Z")),   # 7 future
        json.dumps(tenant.session(8, started_at="2025-06-01T12:00:00")),    # 8 no offset
        json.dumps([1, 2]),                                                 # 9 not an object
        json.dumps(tenant.session(10, ended_at="2025-06-01T11:00:00Z")),    # 10 ends too early
        json.dumps(tenant.session(11, session_id="x" * 129)),               # 11 id too long
        "   ",                                                              # 12 blank
        json.dumps(tenant.session(13)),                                     # 13 ok
    ]
    result = tenant.run("--workspace", "acme", tenant.file("bad.ndjson", lines), "--json")
    assert result.exit_code == 0
    summary = summary_of(result)
    assert (summary["recorded"], summary["duplicates"], summary["rejected"]) == (3, 0, 8)
    errors = {e["line"]: e["message"] for e in summary["errors"]}  # type: ignore[union-attr]
    assert list(errors) == [2, 4, 5, 7, 8, 9, 10, 11]
    assert errors[2].startswith("not valid JSON")
    assert "'started_at'" in errors[4]
    assert "app_id" in errors[5]
    assert "future" in errors[7]
    assert "offset" in errors[8]
    assert "object" in errors[9]
    assert "ended_at" in errors[10]
    assert "session_id" in errors[11]
    assert "line 2: not valid JSON" in result.stderr
    assert f"line 5: {errors[5]}" in result.stderr
    assert tenant.total() == 3


def test_line_numbers_survive_batching(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch-relative indexes map back to file lines, including a batch with no valid item
    (the service's 400) and reader rejections between valid lines."""
    monkeypatch.setattr(importer, "BATCH_SIZE", 4)
    bad_app = "33333333-3333-4333-8333-333333333333"
    lines = []
    expected_bad = []
    for n in range(1, 31):
        if n % 7 == 0:
            lines.append("not json")
            expected_bad.append(n)
        elif 9 <= n <= 16 or n % 5 == 0:
            lines.append(json.dumps(tenant.session(n, app=bad_app)))
            expected_bad.append(n)
        else:
            lines.append(json.dumps(tenant.session(n)))
    summary = importer.import_file(tenant.store, tenant.workspace, tenant.file("m.ndjson", lines))
    assert [line for line, _ in summary.errors] == expected_bad
    assert summary.rejected == len(expected_bad)
    assert summary.recorded == 30 - len(expected_bad) == tenant.total()


def test_csv_bad_rows(tenant: Tenant) -> None:
    app = tenant.ios.app_id
    content = (
        "session_id,external_id,app_id,started_at,ended_at\n"  # 1
        f"c1,u1,{app},{START},\n"                                # 2 ok
        f"c2,u1,{app},{START}\n"                                 # 3 too few fields
        f'c3,"u1\nstill u1",{app},{START},\n'                    # 4-5 ok (quoted newline)
        f"c4,u1,{app},{START},,extra\n"                          # 6 too many fields
        "\n"                                                     # 7 blank: skipped
        f"c5,u1,{app},yesterday,\n"                              # 8 bad time
        f'c6,u1,{app},{START},"x"y\n'                            # 9 bad quoting
        f",u1,{app},{START},\n"                                  # 10 empty session_id
    ).encode() + "c7,ü\xff,".encode() + b"\xff" + f",{app},{START},\n".encode()  # 11 bad UTF-8
    content += f"c8,u1,{app},{START},\n".encode()                # 12 ok
    path = tenant.tmp_path / "bad.csv"
    path.write_bytes(content)
    summary = importer.import_file(tenant.store, tenant.workspace, str(path))
    errors = dict(summary.errors)
    assert list(errors) == [3, 6, 8, 9, 10, 11], errors
    assert "4 fields" in errors[3] and "6 fields" in errors[6]
    assert "'started_at'" in errors[8]
    assert errors[9].startswith("not valid CSV")
    assert "'session_id'" in errors[10]
    assert "UTF-8" in errors[11]
    assert summary.recorded == 3 == tenant.total()


def test_over_long_lines_are_rejected(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_LINE_BYTES", 300)
    lines = [json.dumps(tenant.session(1)), json.dumps(tenant.session(2, pad="x" * 1000)),
             json.dumps(tenant.session(3))]
    summary = importer.import_file(tenant.store, tenant.workspace, tenant.file("l.ndjson", lines))
    assert summary.recorded == 2
    assert [line for line, _ in summary.errors] == [2]
    assert "longer than" in summary.errors[0][1]


def test_nothing_valid(tenant: Tenant) -> None:
    lines = ["nope", json.dumps(tenant.session(1, app="nope")), json.dumps({"x": 1})]
    result = tenant.run("--workspace", "acme", tenant.file("none.ndjson", lines), "--json")
    assert result.exit_code == 1
    summary = summary_of(result)
    assert (summary["recorded"], summary["rejected"]) == (0, 3)
    assert [e["line"] for e in summary["errors"]] == [1, 2, 3]  # type: ignore[union-attr]
    assert tenant.total() == 0


def test_only_duplicates_and_a_bad_line_is_success(tenant: Tenant) -> None:
    path = tenant.ndjson("a.ndjson", [tenant.session(1)])
    tenant.run("--workspace", "acme", path)
    mixed = tenant.file("b.ndjson", [json.dumps(tenant.session(1)), "bad"])
    assert tenant.run("--workspace", "acme", mixed).exit_code == 0


def test_empty_file(tenant: Tenant) -> None:
    for name in ("e.ndjson", "e.csv"):
        result = tenant.run("--workspace", "acme", tenant.file(name, ""), "--json")
        assert result.exit_code == 0
        assert summary_of(result) == {"recorded": 0, "duplicates": 0, "rejected": 0, "errors": []}


def test_first_twenty_rejections_are_listed(tenant: Tenant) -> None:
    lines = [json.dumps(tenant.session(0))] + ["bad"] * 25
    result = tenant.run("--workspace", "acme", tenant.file("many.ndjson", lines))
    assert result.exit_code == 0
    listed = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert listed == [f"line {n}: " + listed[0].split(": ", 1)[1] for n in range(2, 22)]
    assert "... and 5 more" in result.stderr
    assert result.stdout == ""  # no --json: nothing on stdout


# ------------------------------------------------------------------- inputs


def test_stdin(tenant: Tenant) -> None:
    data = "\n".join(json.dumps(tenant.session(i)) for i in range(4)).encode()  # no final newline
    result = tenant.run("--workspace", "acme", "-", "--json", stdin=data)
    assert result.exit_code == 0, result.stderr
    assert summary_of(result)["recorded"] == 4
    csv_data = f"session_id,external_id,app_id,started_at\nz1,u1,{tenant.ios.app_id},{START}\n"
    result = tenant.run("--workspace", "acme", "--format", "csv", "-", "--json",
                        stdin=csv_data.encode())
    assert summary_of(result)["recorded"] == 1
    assert tenant.total() == 5


def test_import_stream_api(tenant: Tenant) -> None:
    stream = io.BytesIO(b"\n".join(json.dumps(tenant.session(i)).encode() for i in range(3)))
    source = importer.Source("<memory>", stream, None, owned=False)
    summary = importer.import_stream(tenant.store, tenant.workspace, source, "ndjson")
    assert summary.as_json() == {"recorded": 3, "duplicates": 0, "rejected": 0, "errors": []}
    assert summary.exit_status == 0


def test_progress_bar(tenant: Tenant, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "BATCH_SIZE", 2)
    path = tenant.ndjson("p.ndjson", [tenant.session(i) for i in range(5)])
    summary = importer.import_file(tenant.store, tenant.workspace, path, progress=True)
    assert summary.recorded == 5
    assert "import" in capsys.readouterr().err
    stream = io.BytesIO(b"\n".join(json.dumps(tenant.session(i)).encode() for i in range(5, 8)))
    summary = importer.import_stream(tenant.store, tenant.workspace,
                                     importer.Source("<pipe>", stream, None, owned=False),
                                     "ndjson", progress=True)
    assert summary.recorded == 3
    assert "lines" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["missing.ndjson", "folder.csv"])
def test_unreadable_file_exits_2(tenant: Tenant, name: str) -> None:
    (tenant.tmp_path / "folder.csv").mkdir()
    result = tenant.run("--workspace", "acme", str(tenant.tmp_path / name))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "cannot read" in result.stderr


@pytest.mark.parametrize("header", ["session_id,external_id,app_id",
                                    "session_id,external_id,app_id,started_at,app_id"])
def test_bad_csv_header_exits_2(tenant: Tenant, header: str) -> None:
    path = tenant.file("h.csv", [header, "a,b,c,d,e"])
    result = tenant.run("--workspace", "acme", path)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: line 1: the CSV header")
    assert tenant.total() == 0


def test_unknown_workspace(tenant: Tenant) -> None:
    result = tenant.run("--workspace", "ghost", tenant.ndjson("s.ndjson", [tenant.session(1)]))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["Error: no workspace 'ghost'"]
