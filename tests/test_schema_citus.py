"""Citus readiness (issue 4, docs/operations.md "Scale-out on Citus"), on both engines.

1. The schema after migrations (read from information_schema / pg_catalog, or SQLite's
   pragmas): every table but ``schema_migrations`` has a primary key that begins with
   ``workspace_id`` (the ``workspaces`` table's is ``workspace_id`` itself), and every
   other unique constraint of a tenant table includes ``workspace_id`` (Citus refuses a
   unique constraint on a distributed table without the distribution column). Every
   table has its line in the documented Citus DDL.
2. The statements: every Store method (and the rate limiter kept in the store) is run
   once while every statement sent to the database is recorded; each statement that
   touches a tenant table must filter on ``workspace_id = <param>`` (one such predicate
   per tenant table it reads, updates or deletes from) or insert ``workspace_id`` as its
   first column, and the exercised workspace id must be among its parameters. The only
   statements on ``workspaces`` without a workspace id are creating one and the
   operators' lookup by name (a reference table on Citus, so no fan-out either).
3. The same rule, statically, on every SQL string literal of the store's source files
   (so that a branch the exercise did not take is still checked).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from db_support import engine_database

import sessiontally
from sessiontally.config import sqlite_file
from sessiontally.ratelimit import RATE_COUNTERS_SUFFIX, FileRateLimiter
from sessiontally.store import open_store
from sessiontally.store.base import NewEvent, NewSession, Store, TrackedSegment

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(sessiontally.__file__).resolve().parent
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

# Reference tables on Citus: members and sign-in attempts are looked up by e-mail or
# throttle key before any workspace is known (one sign-in form for every workspace).
NOT_TENANT = {"workspaces", "schema_migrations", "members", "sign_in_attempts"}
# The primary keys of the reference tables that do not begin with workspace_id.
REFERENCE_KEYS = {"schema_migrations": ["version"], "members": ["member_id"],
                  "sign_in_attempts": ["throttle_key", "window_start"]}
TENANT_TABLES = {"apps", "api_keys", "sessions", "session_counts", "session_counts_coarse", "users",
                 "segments", "rate_windows", "events", "derived_sessions", "app_message_counts",
                "person_days", "kpi_counts", "event_names", "event_counts", "member_sessions",
                 "retired_keys"}
WORKSPACE_ID = 987_654_321  # distinctive, so that finding it among the parameters means something

# A reference to a table by a statement (SQL keywords are upper case in this code base,
# which keeps prose like "rows from sessions" in comments and docstrings out).
TABLE_REFERENCE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+([a-z_]+)\b")
WORKSPACE_PREDICATE = re.compile(r"\b(?:WHERE|AND)\s+(?:[a-z_]+\.)?workspace_id\s*=\s*(?:%s|\?\d*)")
WORKSPACE_INSERT = re.compile(r"\bINSERT\s+INTO\s+[a-z_]+\s*\(\s*workspace_id\s*[,)]")
SQL_START = re.compile(r"^\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\b")


def tenant_problem(sql: str) -> str | None:
    """Why ``sql`` would not be routed to one workspace's shard, or None if it would."""
    tenant_refs = [t for t in TABLE_REFERENCE.findall(sql) if t in TENANT_TABLES]
    if not tenant_refs:
        return None
    unknown = [t for t in TABLE_REFERENCE.findall(sql) if t not in TENANT_TABLES | NOT_TENANT]
    not_tables = {"unnest", "b", "near", "pieces", "quarter_pieces", "hour_pieces", "day_pieces", "keys",
                  "excluded", "set"}  # CTEs, functions and keywords
    unknown = [t for t in unknown if t not in not_tables]
    assert not unknown, f"a table this test does not know: {unknown} in {sql!r}"
    if _top_level_or(sql):
        return "an OR outside parentheses would let rows of other workspaces through"
    bound = len(WORKSPACE_PREDICATE.findall(sql)) + len(WORKSPACE_INSERT.findall(sql))
    if bound < len(tenant_refs):
        return (f"touches {tenant_refs} but has {bound} 'WHERE workspace_id = <param>'"
                " predicate(s) or inserted workspace_id column(s)")
    return None


def _top_level_or(sql: str) -> bool:
    depth = 0
    for i, char in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and sql.startswith(" OR ", i):
            return True
    return False


# ------------------------------------------------------------------------------ schema


def schema(store: Store, engine: str) -> dict[str, dict[str, Any]]:
    """{table: {"pk": [columns], "unique": [[columns], ...]}} of the migrated database."""
    found: dict[str, dict[str, Any]] = {}
    if engine == "postgres":
        import psycopg

        with psycopg.connect(store.url) as conn:  # type: ignore[attr-defined]
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]
            for table in tables:
                pk = [r[0] for r in conn.execute(
                    "SELECT k.column_name FROM information_schema.table_constraints c"
                    " JOIN information_schema.key_column_usage k USING"
                    " (constraint_catalog, constraint_schema, constraint_name, table_name)"
                    " WHERE c.table_schema = current_schema() AND c.table_name = %s"
                    " AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position",
                    (table,))]
                unique = [list(r[0]) for r in conn.execute(
                    "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i"
                    " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
                    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
                    " WHERE i.indrelid = %s::regclass AND i.indisunique GROUP BY i.indexrelid",
                    (table,))]
                found[table] = {"pk": pk, "unique": unique}
        return found
    with contextlib.closing(sqlite3.connect(store.path)) as conn:  # type: ignore[attr-defined]
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
            pk = [c[1] for c in sorted((c for c in columns if c[5]), key=lambda c: c[5])]
            unique = []
            for index in conn.execute(f"PRAGMA index_list({table})").fetchall():
                if index[2]:  # unique
                    info = conn.execute(f"PRAGMA index_info({index[1]})").fetchall()
                    unique.append([c[2] for c in sorted(info)])
            found[table] = {"pk": pk, "unique": unique}
    return found


def documented_distribution() -> dict[str, str]:
    """{table: "reference" | distribution column} from the DDL in docs/operations.md."""
    text = OPERATIONS_DOC.read_text()
    found = {t: "reference" for t in re.findall(r"create_reference_table\('(\w+)'\)", text)}
    found.update(re.findall(r"create_distributed_table\('(\w+)',\s*'(\w+)'", text))
    return found


def test_every_primary_key_begins_with_workspace_id(store, engine):
    tables = schema(store, engine)
    expected = {"workspaces", "schema_migrations", "apps", "api_keys", "sessions",
                "session_counts", "session_counts_coarse", "users", "segments", "events",
                "derived_sessions", "app_message_counts", "person_days", "kpi_counts",
                "event_names", "event_counts", "members", "member_sessions", "sign_in_attempts",
                "retired_keys"}
    if engine == "postgres":
        expected.add("rate_windows")  # SQLite keeps its counters in a sidecar file
    assert set(tables) == expected, "a new table: add it here and to docs/operations.md"
    assert tables["workspaces"]["pk"] == ["workspace_id"]
    for table, shape in tables.items():
        if table in REFERENCE_KEYS:
            assert shape["pk"] == REFERENCE_KEYS[table], (table, shape["pk"])
            continue
        assert shape["pk"] and shape["pk"][0] == "workspace_id", (table, shape["pk"])
        if table in TENANT_TABLES:
            for columns in shape["unique"]:
                assert "workspace_id" in columns, (table, columns)


def test_the_documented_citus_ddl_covers_every_table(store, engine):
    documented = documented_distribution()
    for table in schema(store, engine):
        assert table in documented, f"docs/operations.md has no Citus DDL for {table}"
        if table in NOT_TENANT:
            assert documented[table] == "reference", table
        else:
            assert documented[table] == "workspace_id", table
    assert set(documented) - NOT_TENANT <= TENANT_TABLES


# -------------------------------------------------------------------------- statements


@dataclass
class Recorder:
    """Statements sent to the database while ``active``, labelled with the Store method
    being run."""

    active: bool = False
    label: str = ""
    statements: list[tuple[str, str, list[Sequence[Any]]]] = field(default_factory=list)
    called: set[str] = field(default_factory=set)

    def record(self, sql: Any, rows: list[Sequence[Any]]) -> None:
        if self.active:
            text = sql if isinstance(sql, str) else sql.as_string(None)
            self.statements.append((self.label, text, [tuple(r or ()) for r in rows]))

    @contextlib.contextmanager
    def calling(self, label: str) -> Iterator[None]:
        self.label, self.active = label, True
        self.called.add(label)
        try:
            yield
        finally:
            self.active, self.label = False, ""


class _RecordingSqlite(sqlite3.Connection):
    recorder: Recorder | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        if self.recorder:
            self.recorder.record(sql, [parameters])
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        seq = list(seq)
        if self.recorder:
            self.recorder.record(sql, seq)
        return super().executemany(sql, seq)

    def executescript(self, script: str, /) -> sqlite3.Cursor:  # type: ignore[override]
        if self.recorder:
            self.recorder.record(script, [()])
        return super().executescript(script)


@pytest.fixture
def recorded(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(store, limiter, recorder): a migrated store whose every statement is recorded,
    where the next workspace created gets the id WORKSPACE_ID."""
    recorder = Recorder()
    with engine_database(engine, tmp_path) as url:
        if engine == "postgres":
            import psycopg

            with psycopg.connect(url) as conn:  # the migrations, then the next identity
                open_store(url).migrate()
                conn.execute("SELECT setval(pg_get_serial_sequence('workspaces', 'workspace_id'),"
                             " %s, false)", (WORKSPACE_ID,))
            original = psycopg.Cursor.execute
            original_many = psycopg.Cursor.executemany

            def execute(self, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
                recorder.record(query, [params])
                return original(self, query, params, **kwargs)

            def executemany(self, query, params_seq, **kwargs):  # type: ignore[no-untyped-def]
                params_seq = list(params_seq)
                recorder.record(query, params_seq)
                return original_many(self, query, params_seq, **kwargs)

            monkeypatch.setattr(psycopg.Cursor, "execute", execute)
            monkeypatch.setattr(psycopg.Cursor, "executemany", executemany)
            from sessiontally.ratelimit import PostgresRateLimiter

            store = open_store(url)
            limiter: Any = PostgresRateLimiter(url)
        else:
            first = open_store(url)
            first.migrate()
            first.close()
            with contextlib.closing(sqlite3.connect(url)) as conn, conn:  # rowid: max + 1 next
                conn.execute("INSERT INTO workspaces (workspace_id, name, time_zone, rate_limit, created_at)"
                             " VALUES (?, 'placeholder', 'UTC', 1, 0)",
                             (WORKSPACE_ID - 1,))
            _RecordingSqlite.recorder = recorder
            monkeypatch.setattr(sqlite3, "connect",
                                functools.partial(sqlite3.connect, factory=_RecordingSqlite))
            store = open_store(url)
            path = sqlite_file(url)
            assert path is not None
            limiter = FileRateLimiter(path + RATE_COUNTERS_SUFFIX)  # a file, no SQL: nothing to route
        try:
            yield store, limiter, recorder
        finally:
            _RecordingSqlite.recorder = None
            limiter.close()
            store.close()


def classify_everyone(
    tracked: Sequence[TrackedSegment], users: Sequence[str], stored: Mapping[str, str]
) -> dict[str, list[int]]:
    return {user: [t.segment_key for t in tracked] for user in users}


def exercise(store: Store, limiter: Any, recorder: Recorder) -> None:
    """Every Store method once (a few twice, for their other branch), and the limiter."""
    now_us = int(time.time()) * 1_000_000
    with recorder.calling("migrate"):
        store.migrate()
    with recorder.calling("ping"):
        assert store.ping()
    with recorder.calling("create_workspace"):
        ws = store.create_workspace("citus-ws", "UTC", 1000)
    assert ws.workspace_id == WORKSPACE_ID
    w = ws.workspace_id
    with recorder.calling("get_workspace"):
        assert store.get_workspace(w) in (ws, replace(ws, retention_days=30))
    with recorder.calling("find_workspace"):
        assert store.find_workspace("citus-ws") == ws
    with recorder.calling("create_app"):
        app = store.create_app(w, "app-uuid", "app", "ios")
    with recorder.calling("find_app"):
        assert store.find_app(w, "app-uuid") == app
    with recorder.calling("list_apps"):
        assert store.list_apps(w) == [app]
    with recorder.calling("create_key"):
        key_id = store.create_key(w, "k", b"h" * 32, "st_", ["sessions.track"], ["10.0.0.0/8"])
    with recorder.calling("find_key_by_hash"):
        key = store.find_key_by_hash(w, b"h" * 32)
    assert key is not None and key.key_id == key_id
    with recorder.calling("touch_key"):
        store.touch_key(w, key_id, int(time.time()))
    with recorder.calling("revoke_key"):
        assert store.revoke_key(w, b"h" * 32, None)
    with recorder.calling("update_users"):
        store.update_users(w, ["u1", "u2"], lambda current: {e: '{"plan": "pro"}' for e in ("u1", "u2")},
                           now_us)
    with recorder.calling("user_attributes"):
        assert store.user_attributes(w, "u1") == '{"plan": "pro"}'
    with recorder.calling("create_segment"):
        segment = store.create_segment(w, "seg-uuid", "pros", "", ["t"], '{"attribute": "plan",'
                                       ' "op": "eq", "value": "pro"}', True, now_us)
    with recorder.calling("set_segment_tracking"):
        store.set_segment_tracking(w, "seg-uuid", False, now_us)
        store.set_segment_tracking(w, "seg-uuid", True, now_us)
    with recorder.calling("get_segment"):
        assert store.get_segment(w, "seg-uuid") is not None
    with recorder.calling("list_segments"):
        assert len(store.list_segments(w, 0, 100, False)) == 1
    sessions = [NewSession(f"s{i}", f"u{i % 3}", app.app_key, now_us - i * 60_000_000, None)
                for i in range(5)]
    with recorder.calling("record_sessions"):
        assert store.record_sessions(w, sessions, classify_everyone).recorded == 5
        assert store.record_sessions(w, sessions[:2], classify_everyone).duplicates == 2
    quarter = now_us // 900_000_000
    with recorder.calling("find_app_by_write_key"):
        assert store.find_app_by_write_key(w, app.write_key) == app
    with recorder.calling("set_write_key"):
        assert store.set_write_key(w, app.app_key, f"wk_{w}_" + "0" * 32)
    with recorder.calling("update_app"):
        assert store.update_app(w, app.app_key, session_timeout_s=600, allowed_origins=["https://a.example"])
    app = store.find_app(w, "app-uuid")
    assert app is not None
    events = [NewEvent(f"m{i}", "track", "Signed Up", f"u{i % 2}", f"u{i % 2}", now_us - i * 900_000_000,
                       now_us) for i in range(4)]
    with recorder.calling("record_events"):
        assert store.record_events(w, app, events, now_us, classify_everyone,
                                   lambda ids: (["u0"], lambda current: {"u0": '{"plan": "pro"}'})
                                   ).recorded == 4
        assert store.record_events(w, app, events[:1], now_us, classify_everyone).duplicates == 1
    with recorder.calling("kpi_series"):
        assert sum(store.kpi_series(w, 0, 1, 0, now_us // 86_400_000_000 + 2)) >= 1
    with recorder.calling("event_names"):
        assert store.event_names(w, 0, 10) == ["Signed Up"]
    with recorder.calling("event_name_key"):
        name_key = store.event_name_key(w, "Signed Up")
    assert name_key is not None
    with recorder.calling("count_events_by_quarters"):
        assert sum(store.count_events_by_quarters(w, 0, 0, name_key, [quarter - 20, quarter + 1])) == 4
    with recorder.calling("active_days"):
        assert store.active_days(w, 0)
    with recorder.calling("change_time_zone"):
        store.change_time_zone(w, "Asia/Kolkata")
        store.change_time_zone(w, "UTC")
    with recorder.calling("derived_sessions"):
        assert len(store.derived_sessions(w, app.app_key)) == 4
    with recorder.calling("count_by_quarters"):
        assert sum(store.count_by_quarters(w, 0, 0, [quarter - 20, quarter + 1])) == 9
    with recorder.calling("count_raw_sessions"):
        assert store.count_raw_sessions(w) == 9  # recorded and derived
    with recorder.calling("has_sessions"):
        assert store.has_sessions(w)
    with recorder.calling("count_raw_in_range"):
        assert store.count_raw_in_range(w, app.app_key, 0, now_us + 1) == 9
    with recorder.calling("rollup_total"):
        assert store.rollup_total(w, 0, segment.segment_key) == 9
    with recorder.calling("set_retention"):
        assert store.set_retention(w, 30)
    with recorder.calling("retention_workspaces"):
        assert store.retention_workspaces() == [(w, 30)]
    with recorder.calling("expire_raw_rows"):
        assert store.expire_raw_rows(w, now_us - 10 * 60_000_000, batch=2) == {
            "sessions": 0, "events": 3, "derived_sessions": 0}
        assert store.expire_raw_rows(w, now_us + 8 * 86_400_000_000, batch=2) == {
            "sessions": 5, "events": 1, "derived_sessions": 4}
    with recorder.calling("erase_user"):
        assert store.erase_user(w, "u0", classify_everyone)
        assert not store.erase_user(w, "u0", classify_everyone)
    with recorder.calling("list_workspaces"):
        assert [found for found, _ in store.list_workspaces()][-1].workspace_id == w
    with recorder.calling("set_rate_limit"):
        assert store.set_rate_limit(w, 500) and store.set_rate_limit(w, ws.rate_limit)
    with recorder.calling("list_keys"):
        assert [k.key_id for k in store.list_keys(w)] == [key_id]
    with recorder.calling("update_segment"):
        assert store.update_segment(w, "seg-uuid", now_us, name="pro users") is not None
    with recorder.calling("delete_segment"):
        assert store.delete_segment(w, "seg-uuid")
    with recorder.calling("delete_app"):
        assert store.delete_app(w, app.app_key)
    assert store.count_raw_sessions(w) == 0
    with recorder.calling("add_member"):
        member = store.add_member(w, "amy@example.com", "hash", now_us)
    with recorder.calling("find_member"):
        assert store.find_member("amy@example.com") == member
    with recorder.calling("get_member"):
        assert store.get_member(w, member.member_id) == member
    with recorder.calling("list_members"):
        assert store.list_members(w) == [member]
    now_s = now_us // 1_000_000
    with recorder.calling("start_member_session"):
        store.start_member_session(w, member.member_id, b"t" * 32, now_s, now_s + 60)
    with recorder.calling("member_session"):
        assert store.member_session(w, b"t" * 32, now_s) is not None
    with recorder.calling("member_session_expiry"):
        assert store.member_session_expiry(w, b"t" * 32, now_s) is not None
    with recorder.calling("end_member_session"):
        store.end_member_session(w, b"t" * 32)
    with recorder.calling("set_member_password"):
        assert store.set_member_password(w, member.member_id, "hash2", now_us)
    with recorder.calling("remove_member"):
        assert store.remove_member(w, member.member_id)
    with recorder.calling("count_sign_in_attempts"):
        assert store.count_sign_in_attempts(["email:x", "ip:1"], now_s) == [1, 1]
    with recorder.calling("purge_sign_in_attempts"):
        assert store.purge_sign_in_attempts(now_s + 900) == 2
    with recorder.calling("pinned_reads"), store.pinned_reads():
        assert store.get_workspace(w) in (ws, replace(ws, retention_days=30))
    with recorder.calling("change_token"):
        store.change_token()  # SQLite: PRAGMA data_version, which names no table
    with recorder.calling("ratelimit.hit"):
        assert limiter.hit(w, 10, time.time() - 3600).remaining == 9
        assert limiter.hit(w, 10, time.time()).remaining == 9  # a new window: old ones deleted
        assert limiter.hit(w, 10, time.time()).remaining == 8
    with recorder.calling("delete_workspace"):
        assert store.delete_workspace(w)


def store_methods() -> set[str]:
    methods = {name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")}
    return methods - {"close"}


def test_every_statement_is_routed_by_workspace_id(recorded):
    store, limiter, recorder = recorded
    exercise(store, limiter, recorder)
    assert store_methods() <= recorder.called, "exercise the new Store method here"
    problems = []
    unfiltered_workspace_statements = set()
    checked = 0
    for label, sql, rows in recorder.statements:
        if not SQL_START.match(sql):
            continue  # BEGIN, COMMIT, SHOW, CREATE TABLE IF NOT EXISTS ...
        reason = tenant_problem(sql)
        if reason:
            problems.append(f"{label}: {reason}: {sql}")
            continue
        if any(t in TENANT_TABLES for t in TABLE_REFERENCE.findall(sql)):
            checked += 1
            if label == "migrate":
                continue  # it visits every workspace (write keys for older apps), each routed
            for row in rows:
                values = row.values() if isinstance(row, Mapping) else row
                if WORKSPACE_ID not in list(values):
                    problems.append(f"{label}: the workspace id is not a parameter: {sql} {row}")
        elif "workspaces" in TABLE_REFERENCE.findall(sql) and "workspace_id =" not in sql:
            unfiltered_workspace_statements.add(label)
    assert not problems, "\n".join(problems)
    assert checked >= 25, checked  # the exercise did reach the tenant tables
    # workspaces is a reference table: only creating one, finding one by name and listing
    # them (CLI), migrating (giving apps of every workspace their write keys) and listing
    # the workspaces with a retention (the job's) read it without its id
    assert unfiltered_workspace_statements == {"create_workspace", "find_workspace",
                                               "list_workspaces", "migrate",
                                               "retention_workspaces"}


def test_synchronous_commit_is_never_turned_off_by_the_store(recorded, engine):
    store, limiter, recorder = recorded
    exercise(store, limiter, recorder)
    for _, sql, _ in recorder.statements:
        assert not re.search(r"synchronous(_commit)?\s*(=|TO)\s*'?(off|0|normal)", sql, re.I), sql


# ---------------------------------------------------------------------- static check


def _known_strings(tree: ast.AST) -> dict[str, str]:
    """Names (and class attributes) bound to plain string constants in a module."""
    known = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            name = target.id if isinstance(target, ast.Name) else None
            value = node.value
            if name and isinstance(value, ast.Constant) and isinstance(value.value, str):
                known[name] = value.value
            elif name and isinstance(value, ast.Tuple | ast.BinOp):
                with contextlib.suppress(ValueError, TypeError, SyntaxError):
                    text = ast.literal_eval(value)
                    if isinstance(text, str):
                        known[name] = text
    return known


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a source file that reads like SQL touching a table, with
    f-string fields filled from the module's own string constants."""
    tree = ast.parse(path.read_text())
    # the engines import their shared column lists from store/sql.py
    known = {**_known_strings(ast.parse((SOURCE / "store" / "sql.py").read_text())),
             **_known_strings(tree)}
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    inside_fstrings = {
        id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings or id(node) in inside_fstrings:
                continue
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                else:
                    expr = value.value  # type: ignore[attr-defined]
                    name = expr.attr if isinstance(expr, ast.Attribute) else getattr(expr, "id", "")
                    parts.append(known.get(name, "{?}"))
            text = "".join(parts)
        else:
            continue
        if TABLE_REFERENCE.search(text):
            found.append((node.lineno, text))
    return found


@pytest.mark.parametrize("module", ["store/postgres.py", "store/sqlite.py", "store/sql.py",
                                    "store/erasure.py", "store/kpis.py", "store/derived.py"])
def test_every_sql_literal_in_the_source_is_routed_by_workspace_id(module):
    literals = sql_literals(SOURCE / module)
    assert len(literals) >= 2, literals
    problems = [f"{module}:{line}: {reason}: {text}" for line, text in literals
                if (reason := tenant_problem(text))]
    assert not problems, "\n".join(problems)


def test_the_rule_catches_unrouted_statements():
    assert tenant_problem("SELECT COUNT(*) FROM sessions WHERE session_id = %s")
    assert tenant_problem("SELECT 1 FROM api_keys WHERE key_hash = ? AND workspace_id = ?") is None
    assert tenant_problem("INSERT INTO users (external_id, workspace_id) VALUES (?, ?)")
    assert tenant_problem("UPDATE segments SET name = ? WHERE workspace_id = ? OR name = ?")
    assert tenant_problem("UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ?"
                          " AND (key_hash = ? OR key_id = ?)") is None
    assert tenant_problem("SELECT * FROM sessions s JOIN users u ON u.external_id = s.external_id"
                          " WHERE s.workspace_id = %s")
    assert tenant_problem("DELETE FROM rate_windows WHERE window_start < ?")
    assert tenant_problem("SELECT name FROM workspaces WHERE name = ?") is None
    assert tenant_problem("DELETE FROM rate_windows WHERE workspace_id = ? AND window_start < ?") is None
