"""The ``sessiontally`` command (docs/cli.md).

Every ``create`` prints the new id or key on stdout, or a JSON object with ``--json``;
errors are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click
import orjson

from . import admin, buckets, keys, limits, members, retention
from .config import DATABASE, HOST, PORT, SETTINGS, Setting, Settings, redacted_url, sqlite_file
from .errors import SessiontallyError, StoreUnavailable, needs_extra
from .store import check_scheme, open_store
from .store.base import App, KeyInfo, Member, Segment, Store, Workspace

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
# The SQLite files this invocation created, named on stderr once it has succeeded.
_NEW_STORES: list[str] = []
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # api.metrics's; not imported here: see there

# The settings with a flag on ``serve`` alone (``--database`` is on every command).
SERVE_SETTINGS = tuple(setting for setting in SETTINGS if setting.flag and not setting.every_command)


def _emit(as_json: bool, plain: str, payload: dict[str, Any]) -> None:
    click.echo(orjson.dumps(payload).decode() if as_json else plain)


def _emit_list(as_json: bool, found: Sequence[T], as_object: Callable[[T], dict[str, Any]],
               headers: Sequence[str], as_row: Callable[[T], list[str]]) -> None:
    """What ``list`` prints: a table, or one JSON object per line with ``--json``."""
    if as_json:
        for each in found:
            click.echo(orjson.dumps(as_object(each)).decode())
        return
    click.echo(_table(headers, [as_row(each) for each in found]))


# Every command that acts within one workspace names it the same way.
workspace_option = click.option("--workspace", "workspace_ref", required=True,
                                help="Workspace id or name.")


class SettingValue(click.ParamType):  # type: ignore[type-arg]  # ParamType[...] fails at runtime before click 8.4
    """A setting's value on the command line, read by its declaration's parser."""

    def __init__(self, setting: Setting[Any]) -> None:
        self.setting = setting
        self.name = setting.metavar or setting.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.setting.parse(value)
        except ValueError as exc:
            self.fail(f"{exc} (got {value!r})", param, ctx)


def setting_option(setting: Setting[Any]) -> Callable[[F], F]:
    """The option of a declared setting: flag, help, environment variable and default all
    from the declaration. Its own default is None (not given), so that the environment and
    then the declared default apply (``Settings.from_env``)."""
    assert setting.flag is not None, setting.name
    shown = ([f"env var: {setting.env}"] if setting.env else []) + [f"default: {setting.default_text}"]
    return click.option(setting.flag, setting.name, default=None, type=SettingValue(setting),
                        metavar=setting.metavar, help=f"{setting.help}  [{'; '.join(shown)}]")


def serve_options(func: F) -> F:
    """The options of SERVE_SETTINGS, in their declared order."""
    for setting in reversed(SERVE_SETTINGS):
        func = setting_option(setting)(func)
    return func


def database_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--database`` on every command, as well as on the group."""

    @setting_option(DATABASE)
    @wraps(func)
    def wrapper(*args: Any, database: str | None = None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        root = ctx.find_root()
        root.meta["database"] = database or root.meta.get("database")
        return func(*args, **kwargs)

    return wrapper


def _database_given() -> str | None:
    """The ``--database`` given to the command or the group (the command's wins), if any."""
    given: str | None = click.get_current_context().find_root().meta.get("database")
    return given


def _store() -> Store:
    """The command's store, opened and migrated; closed when the command ends. A command
    that creates a new SQLite file says so on stderr (``store: /abs/path (new)``): run
    from another directory, it would otherwise fill a file nobody looks for."""
    ctx = click.get_current_context()
    url = DATABASE.value(os.environ, _database_given())
    path = sqlite_file(url)
    new = path is not None and not os.path.exists(path)
    try:
        check_scheme(url)
        if path is None:
            with needs_extra("postgres"):
                from .store.postgres import check_reachable

            check_reachable(url)
        store = open_store(url)
        ctx.call_on_close(store.close)
        store.migrate()
    except StoreUnavailable as exc:  # one line: the cause, then which database
        raise click.ClickException(f"{exc.message} ({_safe_url(url)})") from None
    except SessiontallyError as exc:  # a missing extra, a SQLite file that cannot be: one line
        raise click.ClickException(exc.message) from None
    except Exception as exc:  # a bad URL or unreachable database: one line, no traceback
        raise click.ClickException(f"cannot open store {_safe_url(url)}: {exc}") from None
    if new and path is not None:  # said once the command has succeeded (OneLineErrors)
        _NEW_STORES.append(os.path.abspath(path))
    return store


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    return redacted_url(url)


def _admin(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a refusal (``sessiontally.errors``) into a one-line message and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SessiontallyError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


class OneLineErrors(click.Group):
    """Usage errors as one line on stderr (docs/cli.md), not click's usage block."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _NEW_STORES.clear()
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        for path in _NEW_STORES:  # a refusal stays one line; a success says where it wrote
            click.echo(f"store: {path} (new)", err=True)
        sys.exit(result if isinstance(result, int) else 0)


EXAMPLE_SESSION = """\b
Example session (store: ./sessiontally.sqlite3, or give --database URL):
  sessiontally demo              # demo data; prints a key and curl lines
  sessiontally serve             # API and dashboard at http://127.0.0.1:8000/
  sessiontally workspace create acme --time-zone Europe/Berlin
  sessiontally app create --workspace acme Web --platform web
  sessiontally key create --workspace acme --name etl \\
      --permission sessions.data_series
  sessiontally COMMAND --help    # each command's options
"""


@click.group(cls=OneLineErrors, epilog=EXAMPLE_SESSION)
@setting_option(DATABASE)
@click.version_option(package_name="sessiontally")
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """sessiontally: session analytics with a Braze-compatible export API."""
    ctx.meta["database"] = database


# ------------------------------------------------------------------------- serve


@main.command()
@database_option
@serve_options
def serve(**given: Any) -> None:
    """Run the HTTP API and the dashboard.

    The port is bound before anything is said to be served: a port in use, or an address
    that cannot be bound, is one line on stderr and exit status 1. Then a banner names the
    store, the rate-limit counters, the workers and the URLs."""
    try:
        # Every setting read here: a bad one stops here, in one line, not in every worker.
        settings = Settings.from_env(database=_database_given(), **given)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _store().close()  # apply migrations once, before any worker starts
    from .ratelimit import check_installed

    try:
        check_installed(settings)
    except SessiontallyError as exc:
        raise click.ClickException(exc.message) from None
    _run_server(settings)


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or one line saying why not."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise click.ClickException(f"cannot listen on {host}: not an address or known host name "
                                   f"({reason})") from None
    family, kind, proto, _, address = found[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(f"port {port} is in use ({reason})") from None
        if exc.errno == errno.EACCES:
            raise click.ClickException(
                f"cannot listen on port {port}: permission denied (ports below 1024 need privileges)"
            ) from None
        raise click.ClickException(f"cannot listen on {host}:{port} ({reason})") from None
    sock.set_inheritable(True)  # the spawned workers accept on it
    return sock


def _banner(settings: Settings) -> str:
    from .ratelimit import describe_limiter

    base_url = _base_url(settings.host, settings.port)
    metrics = f"{base_url}/metrics" if settings.metrics else "off (SESSIONTALLY_METRICS=off)"
    return "\n".join([
        f"sessiontally serving on {base_url} (store: {_safe_url(settings.database)})",
        f"  store: {_store_description(settings.database)}",
        f"  rate limits: {describe_limiter(settings)}",
        f"  workers: {settings.workers}",
        f"  health: {base_url}/healthz (liveness), {base_url}/readyz (every dependency)",
        f"  metrics: {metrics}",
        f"dashboard: {base_url}/ (members sign in; add one with: sessiontally member add)",
    ])


def _store_description(url: str) -> str:
    path = sqlite_file(url)
    if path is None:
        return f"PostgreSQL {_safe_url(url)}"
    return f"SQLite {os.path.abspath(path)}"


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """With several workers, PROMETHEUS_MULTIPROC_DIR set to a fresh directory (the
    workers, spawned after, inherit it; /metrics sums their files), removed at the end.
    With one, the variable unset: that process's own metrics are the whole story."""
    before = os.environ.get(MULTIPROC_VARIABLE)
    folder = tempfile.mkdtemp(prefix="sessiontally-metrics-") if workers > 1 else None
    if folder is None:
        os.environ.pop(MULTIPROC_VARIABLE, None)
    else:
        os.environ[MULTIPROC_VARIABLE] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_VARIABLE, None)
        else:
            os.environ[MULTIPROC_VARIABLE] = before
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _run_server(settings: Settings) -> None:
    """Bind the port, say what is served, then serve the API with uvicorn, as
    ``uvicorn.run`` does, except that each worker builds the app from ``settings``
    (pickled to the spawned workers with the config) rather than from the environment:
    ``uvicorn.run`` takes only an import string with several workers."""
    sock = _bind(settings.host, settings.port)
    click.echo(_banner(settings), err=True)
    with _metrics_directory(settings.workers):
        _serve_on(settings, sock)


def _stop_at_once(supervisor: Any) -> None:
    """Make uvicorn's supervisor start stopping the moment SIGTERM or SIGINT arrives: it
    notices signals only between half-second naps otherwise. A SIGTERM sent to the whole
    process group also stops the workers at once, and a health check the supervisor was
    just sending to one of them would wait 5 s for an answer that never comes: each
    check is answered here, in the workers' place (nothing reads the answers after)."""
    def stop(sig: int, frame: Any) -> None:
        supervisor.signal_queue.append(sig)
        supervisor.should_exit.set()
        for process in list(getattr(supervisor, "processes", ())):
            with contextlib.suppress(Exception):
                process.child_conn.send(False)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def _stop_resource_tracker() -> None:
    """Stop and reap the helper process multiprocessing started beside the workers, so
    that nothing of the server outlives it (left to exit on its own, it lingers until a
    reaper collects it)."""
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # private: may go
    if stop is not None:
        with contextlib.suppress(Exception):
            stop()


def _serve_on(settings: Settings, sock: socket.socket) -> None:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from .api.app import create_app

    config = uvicorn.Config(
        functools.partial(create_app, settings),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,  # our own access log redacts keys; uvicorn's would not
        http="sessiontally.api.protocol:HttpProtocol",  # JSON bodies on parser refusals too
        log_level="warning",
        server_header=False,
        # In-flight requests get this long after a SIGTERM; idle connections close at once.
        timeout_graceful_shutdown=10,
        # Forwarded headers decide the client address that IP allowlists check, so they
        # are trusted only from proxies the operator names (never by default).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            supervisor = Multiprocess(config, sockets=[sock])
            _stop_at_once(supervisor)
            try:
                supervisor.run()
            finally:
                _stop_resource_tracker()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)


# -------------------------------------------------------------------- workspaces


@main.group()
def workspace() -> None:
    """Create, list, show, update and delete workspaces (tenants)."""


@workspace.command("create")
@database_option
@click.argument("name")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA zone name.")
@click.option("--rate-limit", default=limits.DEFAULT_RATE_LIMIT, show_default=True, type=int,
              help="Requests per UTC clock hour.")
@click.option("--json", "as_json", is_flag=True)
@_admin
def workspace_create(name: str, time_zone: str, rate_limit: int, as_json: bool) -> None:
    """Create a workspace; print its id."""
    ws = admin.create_workspace(_store(), name, time_zone, rate_limit)
    _emit(as_json, str(ws.workspace_id), {"id": ws.workspace_id, "name": ws.name,
                                          "time_zone": ws.time_zone, "rate_limit": ws.rate_limit})


def _workspace_json(summary: admin.WorkspaceSummary) -> dict[str, Any]:
    ws = summary.workspace
    return {"id": ws.workspace_id, "name": ws.name, "time_zone": ws.time_zone,
            "rate_limit": ws.rate_limit, "retention_days": ws.retention_days, "apps": summary.apps,
            "created_at": _instant(summary.created_at * 1_000_000)}


def _workspace_details(summary: admin.WorkspaceSummary) -> str:
    ws = summary.workspace
    return "\n".join([
        f"id: {ws.workspace_id}",
        f"name: {ws.name}",
        f"time zone: {ws.time_zone}",
        f"rate limit: {ws.rate_limit} requests per UTC hour",
        f"raw rows kept: {'forever' if ws.retention_days is None else f'{ws.retention_days} days'}",
        f"apps: {summary.apps}",
        f"created: {_instant(summary.created_at * 1_000_000)}",
    ])


WORKSPACE_COLUMNS = ("ID", "NAME", "TIME ZONE", "RATE LIMIT (/H)", "APPS", "CREATED")


@workspace.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def workspace_list(as_json: bool) -> None:
    """List every workspace (UTC times)."""
    found = admin.list_workspaces(_store())
    _emit_list(as_json, found, _workspace_json, WORKSPACE_COLUMNS, _workspace_row)


def _workspace_row(summary: admin.WorkspaceSummary) -> list[str]:
    ws = summary.workspace
    return [str(ws.workspace_id), ws.name, ws.time_zone, str(ws.rate_limit), str(summary.apps),
            _instant(summary.created_at * 1_000_000) or "-"]


@workspace.command("show")
@database_option
@click.argument("workspace_ref", metavar="WORKSPACE")
@click.option("--json", "as_json", is_flag=True, help="Print the workspace as a JSON object.")
@_admin
def workspace_show(workspace_ref: str, as_json: bool) -> None:
    """Show WORKSPACE (its id or its name)."""
    store = _store()
    summary = admin.summarise_workspace(store, admin.resolve_workspace(store, workspace_ref))
    _emit(as_json, _workspace_details(summary), _workspace_json(summary))


def retention_option(func: F) -> F:
    """``--retention-days`` (workspace update)."""
    return click.option(
        "--retention-days", type=click.IntRange(0, retention.MAX_RETENTION_DAYS), default=None,
        metavar="DAYS", help="Delete raw sessions and events older than DAYS days (counts stay); "
        "0 keeps them forever.")(func)


def _apply_retention(store: Store, ws: Workspace, days: int | None) -> Workspace:
    return ws if days is None else retention.set_retention(store, ws, days)


@workspace.command("update")
@database_option
@click.argument("workspace_ref", metavar="WORKSPACE")
@click.option("--time-zone", default=None,
              help="IANA zone name; the KPIs' days are rebuilt in it.")
@click.option("--rate-limit", type=int, default=None, metavar="N",
              help="Requests per UTC clock hour; applies from the next request, no restart.")
@retention_option
@click.option("--json", "as_json", is_flag=True, help="Print the workspace as a JSON object.")
@_admin
def workspace_update(workspace_ref: str, time_zone: str | None, rate_limit: int | None,
                     retention_days: int | None, as_json: bool) -> None:
    """Change a workspace's zone, rate limit or retention.

    Options not given stay as they are. A new zone recomputes the daily KPIs in it; a
    retention deletes older raw rows (counts stay)."""
    if time_zone is None and rate_limit is None and retention_days is None:
        raise click.UsageError("nothing to change: give --time-zone, --rate-limit or --retention-days")
    store = _store()
    ws = admin.resolve_workspace(store, workspace_ref)
    if time_zone is not None or rate_limit is not None:
        ws = admin.update_workspace(store, ws, time_zone, rate_limit)
    ws = _apply_retention(store, ws, retention_days)
    summary = admin.summarise_workspace(store, ws)
    _emit(as_json, _workspace_details(summary), _workspace_json(summary))


@workspace.command("delete")
@database_option
@click.argument("workspace_ref", metavar="WORKSPACE")
@click.option("--yes", is_flag=True, help="Confirm: the workspace and all of its data are deleted.")
@_admin
def workspace_delete(workspace_ref: str, yes: bool) -> None:
    """Delete WORKSPACE and all of its data."""
    if not yes:
        raise click.UsageError(f"deleting workspace {workspace_ref!r} and all of its data cannot "
                               "be undone: add --yes")
    store = _store()
    ws = admin.resolve_workspace(store, workspace_ref)
    admin.delete_workspace(store, ws)
    click.echo(f"deleted workspace {ws.name}", err=True)


# ------------------------------------------------------------------ users (erasure)


@main.group()
def user() -> None:
    """Erase a user's data."""


@user.command("delete")
@database_option
@workspace_option
@click.argument("external_id")
@click.option("--yes", is_flag=True, help="Confirm: the user's data and counts are erased.")
@_admin
def user_delete(workspace_ref: str, external_id: str, yes: bool) -> None:
    """Erase EXTERNAL_ID and every count it contributed.

    Its attributes, sessions and events go; anonymous ids whose events carry
    EXTERNAL_ID as userId are erased with it."""
    if not yes:
        raise click.UsageError(f"erasing user {external_id!r} cannot be undone: add --yes")
    from . import audience, erasure

    store = _store()
    ws = admin.resolve_workspace(store, workspace_ref)
    found = erasure.erase(store, ws, external_id, audience.SegmentClassifier())
    click.echo(f"erased {external_id}" if found else f"nothing stored for {external_id}", err=True)


# ------------------------------------------------------------------- maintenance


@main.group()
def maintenance() -> None:
    """Jobs for cron: retention, and past sign-in counts."""


@maintenance.command("run")
@database_option
@click.option("--workspace", "workspace_ref", default=None, help="Only this workspace (id or name).")
@_admin
def maintenance_run(workspace_ref: str | None) -> None:
    """Delete raw rows past each workspace's retention.

    Without --workspace, also the dashboard's sign-in counts of past windows. Prints what
    was deleted, one line per workspace."""
    import time

    store = _store()
    only = admin.resolve_workspace(store, workspace_ref).workspace_id if workspace_ref else None
    now = time.time()
    if only is None:
        purged = members.purge_sign_in_attempts(store, now)
        if purged:
            click.echo(f"sign-in attempts: deleted {purged} counts of past windows")
    done = retention.run(store, now, only)
    for expired in done:
        click.echo(expired.report())
    if not done:
        click.echo("no workspace with a retention" + (f" named {workspace_ref!r}" if only else ""))


# -------------------------------------------------------------------------- apps


@main.group()
def app() -> None:
    """Create, list, show, update and delete apps; rotate write keys."""


@app.command("create")
@database_option
@workspace_option
@click.argument("name")
@click.option("--platform", default=None, metavar="PLATFORM",
              help=f"One of: {', '.join(admin.PLATFORMS)} (any case).")
@click.option("--json", "as_json", is_flag=True, help="Print the app as a JSON object.")
@_admin
def app_create(workspace_ref: str, name: str, platform: str | None, as_json: bool) -> None:
    """Create an app; print its id, then its write key.

    The id stays alone on the first line; the second reads ``write key: wk_...``."""
    store = _store()
    created = admin.create_app(store, admin.resolve_workspace(store, workspace_ref), name, platform)
    _emit(as_json, f"{created.app_id}\nwrite key: {created.write_key}",
          {"id": created.app_id, "name": created.name, "platform": created.platform,
           "write_key": created.write_key})


def _app_json(found: App) -> dict[str, Any]:
    return {"id": found.app_id, "name": found.name, "platform": found.platform,
            "write_key": found.write_key, "session_timeout_s": found.session_timeout_s,
            "allowed_origins": list(found.allowed_origins), "event_limit": found.event_limit}


def _origins_text(found: App) -> str:
    return ", ".join(found.allowed_origins) if found.allowed_origins else "any"


def _app_row(found: App) -> list[str]:
    return [found.app_id, found.name, found.platform or "-", found.write_key,
            str(found.session_timeout_s), _origins_text(found), str(found.event_limit)]


def _app_details(found: App) -> str:
    return "\n".join([
        f"id: {found.app_id}",
        f"name: {found.name}",
        f"platform: {found.platform or '-'}",
        f"write key: {found.write_key}",
        f"session timeout: {found.session_timeout_s} s",
        f"allowed origins: {_origins_text(found)}",
        f"event limit: {found.event_limit} messages per UTC hour",
    ])


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header line first."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


APP_COLUMNS = ("ID", "NAME", "PLATFORM", "WRITE KEY", "TIMEOUT (S)", "ALLOWED ORIGINS",
               "EVENT LIMIT (/H)")


@app.command("list")
@database_option
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def app_list(workspace_ref: str, as_json: bool) -> None:
    """List the workspace's apps and their settings."""
    store = _store()
    found = store.list_apps(admin.resolve_workspace(store, workspace_ref).workspace_id)
    _emit_list(as_json, found, _app_json, APP_COLUMNS, _app_row)


def _resolved_app(store: Store, workspace_ref: str, app_ref: str) -> tuple[Workspace, App]:
    ws = admin.resolve_workspace(store, workspace_ref)
    return ws, admin.resolve_app(store, ws, app_ref)


@app.command("show")
@database_option
@workspace_option
@click.argument("app_ref", metavar="APP")
@click.option("--json", "as_json", is_flag=True, help="Print the app as a JSON object.")
@_admin
def app_show(workspace_ref: str, app_ref: str, as_json: bool) -> None:
    """Show every field of APP (its id or its name)."""
    _, found = _resolved_app(_store(), workspace_ref, app_ref)
    _emit(as_json, _app_details(found), _app_json(found))


@app.command("update")
@database_option
@workspace_option
@click.argument("app_ref", metavar="APP")
@click.option("--session-timeout", "session_timeout_s", type=int, default=None, metavar="SECONDS",
              help="Inactivity that ends a derived session (1 to 604800; default of new apps 1800).")
@click.option("--allow-origin", "origins", multiple=True, metavar="ORIGIN",
              help="Browser origin scheme://host[:port] the write key works from; repeatable; "
              "replaces the list.")
@click.option("--any-origin", is_flag=True, help="Allow every browser origin (the default).")
@click.option("--event-limit", type=int, default=None, metavar="N",
              help="Tracking-API messages per UTC hour.")
@click.option("--json", "as_json", is_flag=True, help="Print the updated app as a JSON object.")
@_admin
def app_update(workspace_ref: str, app_ref: str, session_timeout_s: int | None,
               origins: tuple[str, ...], any_origin: bool, event_limit: int | None,
               as_json: bool) -> None:
    """Change APP's session timeout, origins or event limit.

    Options not given stay as they are; --allow-origin replaces the whole list."""
    if any_origin and origins:
        raise click.UsageError("give --allow-origin or --any-origin, not both")
    if session_timeout_s is None and not origins and not any_origin and event_limit is None:
        raise click.UsageError("nothing to change: give --session-timeout, --allow-origin, "
                               "--any-origin or --event-limit")
    allowed: tuple[str, ...] | None = () if any_origin else (origins or None)
    store = _store()
    ws, found = _resolved_app(store, workspace_ref, app_ref)
    updated = admin.update_app(store, ws, found, session_timeout_s, allowed, event_limit)
    _emit(as_json, _app_details(updated), _app_json(updated))


@app.command("rotate-write-key")
@database_option
@workspace_option
@click.argument("app_ref", metavar="APP")
@click.option("--json", "as_json", is_flag=True, help="Print {id, write_key} as JSON.")
@_admin
def app_rotate_write_key(workspace_ref: str, app_ref: str, as_json: bool) -> None:
    """Give APP a new write key; the old one stops at once.

    Prints the new key (apps and pages must be given it)."""
    store = _store()
    ws, found = _resolved_app(store, workspace_ref, app_ref)
    rotated = admin.rotate_write_key(store, ws, found)
    _emit(as_json, rotated.write_key, {"id": rotated.app_id, "write_key": rotated.write_key})


@app.command("delete")
@database_option
@workspace_option
@click.argument("app_ref", metavar="APP")
@click.option("--yes", is_flag=True, help="Confirm: the app and every count it made are deleted.")
@_admin
def app_delete(workspace_ref: str, app_ref: str, yes: bool) -> None:
    """Delete APP with its data and its counts."""
    if not yes:
        raise click.UsageError(f"deleting app {app_ref!r} and all of its data cannot be undone: "
                               "add --yes")
    store = _store()
    ws, found = _resolved_app(store, workspace_ref, app_ref)
    admin.delete_app(store, ws, found)
    click.echo(f"deleted app {found.name} ({found.app_id})", err=True)


# -------------------------------------------------------------------------- keys


@main.group()
def key() -> None:
    """Create, list and revoke API keys."""


@key.command("create")
@database_option
@workspace_option
@click.option("--name", required=True)
@click.option("--permission", "permissions", multiple=True, required=True,
              help=f"One of: {', '.join(keys.PERMISSIONS)}; repeatable.")
@click.option("--allow-ip", "allowed_ips", multiple=True, help="Address or CIDR; repeatable.")
@click.option("--json", "as_json", is_flag=True)
@_admin
def key_create(workspace_ref: str, name: str, permissions: tuple[str, ...],
               allowed_ips: tuple[str, ...], as_json: bool) -> None:
    """Create an API key; print it (shown this once only)."""
    store = _store()
    created = admin.create_key(store, admin.resolve_workspace(store, workspace_ref), name,
                               permissions, allowed_ips)
    _emit(as_json, created.key, {"id": created.key_id, "key": created.key, "name": created.name,
                                 "permissions": list(created.permissions),
                                 "allowed_ips": list(created.allowed_ips)})


@key.command("revoke")
@database_option
@workspace_option
@click.argument("key_ref", metavar="KEY")
@_admin
def key_revoke(workspace_ref: str, key_ref: str) -> None:
    """Revoke KEY (the key itself, or its numeric id)."""
    store = _store()
    admin.revoke_key(store, admin.resolve_workspace(store, workspace_ref), key_ref)
    click.echo("revoked", err=True)


def _seconds(value: int | None) -> str | None:
    return None if value is None else _instant(value * 1_000_000)


def _key_json(found: KeyInfo) -> dict[str, Any]:
    return {"id": found.key_id, "name": found.name, "prefix": found.prefix,
            "permissions": list(found.permissions), "allowed_ips": list(found.allowed_ips),
            "created_at": _seconds(found.created_at), "last_seen_at": _seconds(found.last_seen_at),
            "revoked_at": _seconds(found.revoked_at)}


KEY_COLUMNS = ("ID", "NAME", "PREFIX", "PERMISSIONS", "ALLOWED IPS", "CREATED", "LAST SEEN", "REVOKED")


@key.command("list")
@database_option
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def key_list(workspace_ref: str, as_json: bool) -> None:
    """List the workspace's keys, never the keys."""
    store = _store()
    found = admin.list_keys(store, admin.resolve_workspace(store, workspace_ref))
    _emit_list(as_json, found, _key_json, KEY_COLUMNS, _key_row)


def _key_row(key: KeyInfo) -> list[str]:
    return [str(key.key_id), key.name, key.prefix + "...", ",".join(key.permissions),
            ",".join(key.allowed_ips) or "any", _seconds(key.created_at) or "-",
            _seconds(key.last_seen_at) or "never", _seconds(key.revoked_at) or "no"]


# ----------------------------------------------------------------------- members


@main.group()
def member() -> None:
    """Add, list and remove dashboard members; reset passwords."""


def _password_from_stdin(given: bool) -> str | None:
    """The password on stdin's first line (without its line ending) when asked for; None
    (generate one) otherwise."""
    if not given:
        return None
    return click.get_text_stream("stdin").readline().removesuffix("\n").removesuffix("\r")


def _instant(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _member_json(found: Member) -> dict[str, Any]:
    return {"member_id": found.member_id, "email": found.email,
            "created_at": _instant(found.created_at), "last_sign_in_at": _instant(found.last_sign_in_at)}


MEMBER_COLUMNS = ("ID", "E-MAIL", "CREATED", "LAST SIGN-IN")


@member.command("add")
@database_option
@workspace_option
@click.argument("email")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from stdin's first line instead of generating one.")
@click.option("--json", "as_json", is_flag=True, help="Print {member_id, email, password} as JSON.")
@_admin
def member_add(workspace_ref: str, email: str, password_stdin: bool, as_json: bool) -> None:
    """Add a member; print its e-mail, then its password.

    The e-mail stays alone on the first line; the second reads ``password: ...`` (not
    printed with --password-stdin; null in JSON)."""
    chosen = _password_from_stdin(password_stdin)
    store = _store()
    added, password = members.add_member(store, admin.resolve_workspace(store, workspace_ref), email,
                                         chosen)
    shown = None if password_stdin else password
    _emit(as_json, added.email + ("" if shown is None else f"\npassword: {shown}"),
          {"member_id": added.member_id, "email": added.email, "password": shown})


@member.command("list")
@database_option
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def member_list(workspace_ref: str, as_json: bool) -> None:
    """List the workspace's members (UTC times)."""
    store = _store()
    found = members.list_members(store, admin.resolve_workspace(store, workspace_ref))
    _emit_list(as_json, found, _member_json, MEMBER_COLUMNS, _member_row)


def _member_row(found: Member) -> list[str]:
    return [str(found.member_id), found.email, _instant(found.created_at) or "-",
            _instant(found.last_sign_in_at) or "never"]


@member.command("remove")
@database_option
@workspace_option
@click.argument("member_ref", metavar="MEMBER")
@click.option("--yes", is_flag=True, help="Confirm: the member is removed and signed out.")
@_admin
def member_remove(workspace_ref: str, member_ref: str, yes: bool) -> None:
    """Remove MEMBER (e-mail or id) and end its sessions."""
    if not yes:
        raise click.UsageError(f"removing member {member_ref!r} cannot be undone: add --yes")
    store = _store()
    removed = members.remove_member(store, admin.resolve_workspace(store, workspace_ref), member_ref)
    click.echo(f"removed {removed.email}", err=True)


@member.command("reset-password")
@database_option
@workspace_option
@click.argument("member_ref", metavar="MEMBER")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from stdin's first line instead of generating one.")
@click.option("--json", "as_json", is_flag=True, help="Print {member_id, email, password} as JSON.")
@_admin
def member_reset_password(workspace_ref: str, member_ref: str, password_stdin: bool,
                          as_json: bool) -> None:
    """Give MEMBER a new password; print it.

    Every session of the member ends (signed out everywhere)."""
    chosen = _password_from_stdin(password_stdin)
    store = _store()
    ws = admin.resolve_workspace(store, workspace_ref)
    found = members.resolve_member(store, ws, member_ref)
    password = members.reset_password(store, ws, str(found.member_id), chosen)
    _emit(as_json, password, {"member_id": found.member_id, "email": found.email, "password": password})


# ---------------------------------------------------------------------- segments


@main.group()
def segment() -> None:
    """Create, list, show, update and delete segments; track them."""


@segment.command("create")
@database_option
@workspace_option
@click.option("--name", required=True)
@click.option("--filter", "filter_text", required=True, help='Filter JSON, e.g. \'{"attribute": '
              '"country", "op": "eq", "value": "US"}\'.')
@click.option("--description", default="")
@click.option("--tag", "tags", multiple=True, help="Repeatable.")
@click.option("--analytics", is_flag=True, help="Turn analytics tracking on from now.")
@click.option("--json", "as_json", is_flag=True)
@_admin
def segment_create(workspace_ref: str, name: str, filter_text: str, description: str,
                   tags: tuple[str, ...], analytics: bool, as_json: bool) -> None:
    """Create a segment from a filter; print its id."""
    store = _store()
    created = admin.create_segment(store, admin.resolve_workspace(store, workspace_ref), name,
                                   filter_text, description, tags, analytics)
    _emit(as_json, created.segment_id, {"id": created.segment_id, "name": created.name,
                                        "analytics_tracking_enabled": created.analytics_enabled,
                                        "tags": list(created.tags)})


@segment.command("analytics")
@database_option
@workspace_option
@click.argument("segment_ref", metavar="SEGMENT")
@click.argument("state", type=click.Choice(["on", "off"]))
@_admin
def segment_analytics(workspace_ref: str, segment_ref: str, state: str) -> None:
    """Turn a segment's analytics tracking on or off.

    Not retroactive: sessions count toward SEGMENT (its id or name) from now on."""
    store = _store()
    ws = admin.resolve_workspace(store, workspace_ref)
    found = admin.resolve_segment(store, ws, segment_ref)
    admin.set_segment_analytics(store, ws, found.segment_id, state == "on")
    click.echo(f"analytics tracking {state}", err=True)


def _segment_json(found: Segment) -> dict[str, Any]:
    return {"id": found.segment_id, "name": found.name, "description": found.description,
            "tags": list(found.tags), "filter": orjson.loads(found.filter_json),
            "analytics_tracking_enabled": found.analytics_enabled,
            "tracking_since": _instant(found.tracking_since) if found.analytics_enabled else None,
            "created_at": _instant(found.created_at), "updated_at": _instant(found.updated_at)}


def _tracking_text(found: Segment) -> str:
    return f"on since {_instant(found.tracking_since)}" if found.analytics_enabled else "off"


def _segment_details(found: Segment) -> str:
    return "\n".join([
        f"id: {found.segment_id}",
        f"name: {found.name}",
        f"description: {found.description or '-'}",
        f"tags: {', '.join(found.tags) or '-'}",
        f"filter: {found.filter_json}",
        f"analytics tracking: {_tracking_text(found)}",
        f"created: {_instant(found.created_at)}",
        f"updated: {_instant(found.updated_at)}",
    ])


SEGMENT_COLUMNS = ("ID", "NAME", "TRACKING", "TAGS", "CREATED")


@segment.command("list")
@database_option
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def segment_list(workspace_ref: str, as_json: bool) -> None:
    """List the workspace's segments."""
    store = _store()
    found = admin.list_segments(store, admin.resolve_workspace(store, workspace_ref))
    _emit_list(as_json, found, _segment_json, SEGMENT_COLUMNS, _segment_row)


def _segment_row(found: Segment) -> list[str]:
    return [found.segment_id, found.name, _tracking_text(found), ",".join(found.tags) or "-",
            _instant(found.created_at) or "-"]


def _resolved_segment(store: Store, workspace_ref: str, segment_ref: str) -> tuple[Workspace, Segment]:
    ws = admin.resolve_workspace(store, workspace_ref)
    return ws, admin.resolve_segment(store, ws, segment_ref)


@segment.command("show")
@database_option
@workspace_option
@click.argument("segment_ref", metavar="SEGMENT")
@click.option("--json", "as_json", is_flag=True, help="Print the segment as a JSON object.")
@_admin
def segment_show(workspace_ref: str, segment_ref: str, as_json: bool) -> None:
    """Show every field of SEGMENT (id or name)."""
    _, found = _resolved_segment(_store(), workspace_ref, segment_ref)
    _emit(as_json, _segment_details(found), _segment_json(found))


@segment.command("update")
@database_option
@workspace_option
@click.argument("segment_ref", metavar="SEGMENT")
@click.option("--name", default=None, help="A new name.")
@click.option("--description", default=None, help="A new description ('' clears it).")
@click.option("--tag", "tags", multiple=True, help="Repeatable; replaces the tags.")
@click.option("--no-tags", is_flag=True, help="Remove every tag.")
@click.option("--filter", "filter_text", default=None,
              help="A new filter (JSON); refused while analytics tracking is on.")
@click.option("--json", "as_json", is_flag=True, help="Print the updated segment as a JSON object.")
@_admin
def segment_update(workspace_ref: str, segment_ref: str, name: str | None, description: str | None,
                   tags: tuple[str, ...], no_tags: bool, filter_text: str | None,
                   as_json: bool) -> None:
    """Change SEGMENT's name, description, tags, filter.

    Options not given stay as they are. A tracked segment's filter cannot change (its
    counts were made with it): turn tracking off, change it, turn tracking on again."""
    if tags and no_tags:
        raise click.UsageError("give --tag or --no-tags, not both")
    new_tags: tuple[str, ...] | None = () if no_tags else (tags or None)
    if name is None and description is None and new_tags is None and filter_text is None:
        raise click.UsageError("nothing to change: give --name, --description, --tag, --no-tags "
                               "or --filter")
    store = _store()
    ws, found = _resolved_segment(store, workspace_ref, segment_ref)
    updated = admin.update_segment(store, ws, found, name, description, new_tags, filter_text)
    _emit(as_json, _segment_details(updated), _segment_json(updated))


@segment.command("delete")
@database_option
@workspace_option
@click.argument("segment_ref", metavar="SEGMENT")
@click.option("--yes", is_flag=True, help="Confirm: the segment and its counts are deleted.")
@_admin
def segment_delete(workspace_ref: str, segment_ref: str, yes: bool) -> None:
    """Delete SEGMENT and its counts."""
    if not yes:
        raise click.UsageError(f"deleting segment {segment_ref!r} and its counts cannot be undone: "
                               "add --yes")
    store = _store()
    ws, found = _resolved_segment(store, workspace_ref, segment_ref)
    admin.delete_segment(store, ws, found)
    click.echo(f"deleted segment {found.name} ({found.segment_id})", err=True)


# ------------------------------------------------------------------------ import


class _UnreadableInput(click.ClickException):
    exit_code = 2


@main.command("import")
@database_option
@workspace_option
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", default=None, metavar="ndjson|csv",
              help="Override the format told by FILE's extension (.ndjson/.jsonl/.json, .csv); "
              "stdin ('-') defaults to ndjson.")
@click.option("--time-zone", "time_zone", default=None, metavar="ZONE",
              help="IANA zone of timestamps without an offset (else they are refused).")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN",
              help="Read FIELD (session_id, external_id, app_id, started_at, ended_at) from the "
              "CSV column (or NDJSON key) COLUMN; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Also print the summary as JSON on stdout.")
@_admin
def import_sessions(workspace_ref: str, file: str, fmt: str | None, time_zone: str | None,
                    mapping: tuple[str, ...], as_json: bool) -> None:
    """Import sessions from an NDJSON or CSV file.

    FILE has the fields of POST /sessions/track ('-' reads stdin); lines get the API's
    validation and de-duplication.

    Exit status: 0 when the file was read, even if some lines were rejected; 1 when it had
    rejections and not one valid session; 2 when it cannot be read.
    """
    from . import importer

    zone = None
    if time_zone is not None:
        try:
            zone = buckets.load_zone(time_zone)
        except buckets.UnknownZoneError:
            raise click.UsageError(buckets.unknown_zone_message(
                f"--time-zone: unknown IANA time zone {time_zone!r}", time_zone)) from None
    try:
        options = importer.ImportOptions(zone, importer.parse_map(mapping))
        fmt = importer.detect_format(file, fmt)
        source = importer.open_source(file)
    except importer.UnreadableFile as exc:
        raise _UnreadableInput(str(exc)) from None
    with source:
        store = _store()
        ws = admin.resolve_workspace(store, workspace_ref)
        try:
            summary = importer.import_stream(store, ws, source, fmt, progress=sys.stderr.isatty(),
                                             options=options)
        except importer.UnreadableFile as exc:
            raise _UnreadableInput(str(exc)) from None
        except importer.ImportAborted as exc:
            click.echo(exc.summary.report(), err=True)
            raise click.ClickException(str(exc)) from None
    click.echo(summary.report(), err=True)
    if as_json:
        click.echo(orjson.dumps(summary.as_json()).decode())
    click.get_current_context().exit(130 if summary.interrupted else summary.exit_status)


# -------------------------------------------------------------------------- demo


@main.command("demo")
@database_option
@click.option("--workspace", "name", default="demo", show_default=True, help="Workspace name.")
@click.option("--days", default=120, show_default=True, type=click.IntRange(1, 3650))
@click.option("--users", default=5000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--host", default=None, type=SettingValue(HOST), metavar="HOST",
              help=f"The address serve will listen on, for the printed commands (serve --host).  "
              f"[default: {HOST.default_text}]")
@click.option("--port", default=None, type=SettingValue(PORT), metavar="PORT",
              help=f"The port serve will listen on, for the printed commands (serve --port).  "
              f"[default: {PORT.default_text}]")
@_admin
def demo_workspace(name: str, days: int, users: int, seed: int, host: str | None,
                   port: int | None) -> None:
    """Create a demo workspace with months of data and a key.

    The workspace (America/New_York) gets apps, users, segments and months of sessions,
    then a key with every permission (replacing the key of an earlier run, which is
    revoked); it prints the write keys and curl commands ready to paste, for a server
    started with the same --host and --port."""
    from . import demo

    chosen_host, chosen_port = HOST.value(os.environ, host), PORT.value(os.environ, port)
    serve_command = " ".join(["sessiontally serve",
                              *([f"--host {chosen_host}"] if chosen_host != HOST.default else []),
                              *([f"--port {chosen_port}"] if chosen_port != PORT.default else [])])
    store = _store()
    result = demo.run_demo(store, name, days=days, users=users, seed=seed,
                           log=lambda line: click.echo(line, err=True))
    base_url = _base_url(_reachable(chosen_host), chosen_port)
    click.echo(demo.curl_commands(result, base_url, serve_command))
    click.echo(demo.dashboard_lines(result, base_url, serve_command))


def _reachable(host: str) -> str:
    """The address a client on this machine reaches a server listening on ``host`` at:
    the loopback address for the wildcard ones."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


# ------------------------------------------------------------------------- citus


@main.group()
def citus() -> None:
    """Running on a Citus cluster (docs/operations.md)."""


@citus.command("distribute")
@database_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per table.")
def citus_distribute(as_json: bool) -> None:
    """Distribute every table on a Citus coordinator (idempotent).

    Applies the migrations, then makes each table a reference table or a table distributed
    by workspace_id, co-located (tables already so are left as they are). Migrations do
    this by themselves on a coordinator; the command does it on demand and says where
    each table is. Not on a Citus coordinator (SQLite, plain PostgreSQL): says so and
    changes nothing; exit status 0 either way.
    """
    from .store import distribute_on_citus

    ctx = click.get_current_context()
    url = DATABASE.value(os.environ, _database_given())
    try:
        store = open_store(url)
        ctx.call_on_close(store.close)
        placements = distribute_on_citus(store)
    except Exception as exc:  # unreachable database, a table Citus refuses: one line
        raise click.ClickException(f"cannot distribute {_safe_url(url)}: {exc}") from None
    if placements is None:
        click.echo("not a Citus coordinator; nothing to do")
        return
    for table, kind, changed in placements:
        state = "made" if changed else "already"
        _emit(as_json, f"{table}: {state} {kind}",
              {"table": table, "placement": kind, "changed": changed})
