"""The ``sessiontally`` command (docs/cli.md).

Every ``create`` prints the new id or key on stdout, or a JSON object with ``--json``;
errors are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click
import orjson

from . import admin, keys, limits, members
from .config import DATABASE, SETTINGS, Setting, Settings
from .errors import SessiontallyError
from .store import open_store
from .store.base import App, Member, Store, Workspace

F = TypeVar("F", bound=Callable[..., Any])

# The settings with a flag on ``serve`` alone (``--database`` is on every command).
SERVE_SETTINGS = tuple(setting for setting in SETTINGS if setting.flag and not setting.every_command)


def _emit(as_json: bool, plain: str, payload: dict[str, Any]) -> None:
    click.echo(orjson.dumps(payload).decode() if as_json else plain)


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
    """The command's store, opened and migrated; closed when the command ends."""
    ctx = click.get_current_context()
    url = DATABASE.value(os.environ, _database_given())
    try:
        store = open_store(url)
        ctx.call_on_close(store.close)
        store.migrate()
    except Exception as exc:  # a bad URL or unreachable database: one line, no traceback
        raise click.ClickException(f"cannot open store {_safe_url(url)}: {exc}") from None
    return store


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


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
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=OneLineErrors)
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
    """Run the HTTP API."""
    try:
        # Every setting read here: a bad one stops here, in one line, not in every worker.
        settings = Settings.from_env(database=_database_given(), **given)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _store().close()  # apply migrations once, before any worker starts
    base_url = f"http://{settings.host}:{settings.port}"
    click.echo(f"sessiontally serving on {base_url} (store: {_safe_url(settings.database)})\n"
               f"dashboard: {base_url}/ (members sign in; add one with: sessiontally member add)",
               err=True)
    _run_server(settings)


def _run_server(settings: Settings) -> None:
    """Serve the API with uvicorn, as ``uvicorn.run`` does, except that each worker builds
    the app from ``settings`` (pickled to the spawned workers with the config) rather than
    from the environment: ``uvicorn.run`` takes only an import string with several workers."""
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
        timeout_graceful_shutdown=10,
        # Forwarded headers decide the client address that IP allowlists check, so they
        # are trusted only from proxies the operator names (never by default).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)


# -------------------------------------------------------------------- workspaces


@main.group()
def workspace() -> None:
    """Create workspaces (tenants) and change their zone."""


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


@workspace.command("update")
@database_option
@click.argument("workspace_ref", metavar="WORKSPACE")
@click.option("--time-zone", required=True,
              help="IANA zone name; the KPIs' days are rebuilt in it.")
@click.option("--json", "as_json", is_flag=True)
@_admin
def workspace_update(workspace_ref: str, time_zone: str, as_json: bool) -> None:
    """Change a workspace's zone; its daily KPIs are recomputed."""
    store = _store()
    ws = admin.change_time_zone(store, admin.resolve_workspace(store, workspace_ref), time_zone)
    _emit(as_json, f"{ws.name}: time zone {ws.time_zone}", {"id": ws.workspace_id, "name": ws.name,
          "time_zone": ws.time_zone, "rate_limit": ws.rate_limit})


# -------------------------------------------------------------------------- apps


@main.group()
def app() -> None:
    """Create, list, show and update apps; rotate write keys."""


@app.command("create")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.argument("name")
@click.option("--platform", default=None, help="ios, android, web, ... (stored in lower case).")
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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def app_list(workspace_ref: str, as_json: bool) -> None:
    """List the workspace's apps and their settings."""
    store = _store()
    found = store.list_apps(admin.resolve_workspace(store, workspace_ref).workspace_id)
    if as_json:
        for each in found:
            click.echo(orjson.dumps(_app_json(each)).decode())
        return
    click.echo(_table(APP_COLUMNS, [_app_row(each) for each in found]))


def _resolved_app(store: Store, workspace_ref: str, app_ref: str) -> tuple[Workspace, App]:
    ws = admin.resolve_workspace(store, workspace_ref)
    return ws, admin.resolve_app(store, ws, app_ref)


@app.command("show")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.argument("app_ref", metavar="APP")
@click.option("--json", "as_json", is_flag=True, help="Print the app as a JSON object.")
@_admin
def app_show(workspace_ref: str, app_ref: str, as_json: bool) -> None:
    """Show every field of APP (its id or its name)."""
    _, found = _resolved_app(_store(), workspace_ref, app_ref)
    _emit(as_json, _app_details(found), _app_json(found))


@app.command("update")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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


# -------------------------------------------------------------------------- keys


@main.group()
def key() -> None:
    """Create and revoke API keys."""


@key.command("create")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.argument("key_ref", metavar="KEY")
@_admin
def key_revoke(workspace_ref: str, key_ref: str) -> None:
    """Revoke KEY (the key itself, or its numeric id)."""
    store = _store()
    admin.revoke_key(store, admin.resolve_workspace(store, workspace_ref), key_ref)
    click.echo("revoked", err=True)


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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_admin
def member_list(workspace_ref: str, as_json: bool) -> None:
    """List the workspace's members (UTC times)."""
    store = _store()
    found = members.list_members(store, admin.resolve_workspace(store, workspace_ref))
    if as_json:
        for each in found:
            click.echo(orjson.dumps(_member_json(each)).decode())
        return
    click.echo(_table(MEMBER_COLUMNS, [
        [str(each.member_id), each.email, _instant(each.created_at) or "-",
         _instant(each.last_sign_in_at) or "never"] for each in found]))


@member.command("remove")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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
    """Create segments and turn their analytics tracking on or off."""


@segment.command("create")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
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
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.argument("segment_id")
@click.argument("state", type=click.Choice(["on", "off"]))
@_admin
def segment_analytics(workspace_ref: str, segment_id: str, state: str) -> None:
    """Turn a segment's analytics tracking on or off.

    Not retroactive: sessions count toward SEGMENT_ID from now on."""
    store = _store()
    admin.set_segment_analytics(store, admin.resolve_workspace(store, workspace_ref), segment_id,
                                state == "on")
    click.echo(f"analytics tracking {state}", err=True)


# ------------------------------------------------------------------------ import


class _UnreadableInput(click.ClickException):
    exit_code = 2


@main.command("import")
@database_option
@click.option("--workspace", "workspace_ref", required=True, help="Workspace id or name.")
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", default=None, metavar="ndjson|csv",
              help="Override the format told by FILE's extension (.ndjson/.jsonl/.json, .csv); "
              "stdin ('-') defaults to ndjson.")
@click.option("--json", "as_json", is_flag=True, help="Also print the summary as JSON on stdout.")
@_admin
def import_sessions(workspace_ref: str, file: str, fmt: str | None, as_json: bool) -> None:
    """Import sessions from an NDJSON or CSV file.

    FILE has the fields of POST /sessions/track ('-' reads stdin); lines get the API's
    validation and de-duplication.

    Exit status: 0 when the file was read, even if some lines were rejected; 1 when it had
    rejections and not one valid session; 2 when it cannot be read.
    """
    from . import importer

    try:
        fmt = importer.detect_format(file, fmt)
        source = importer.open_source(file)
    except importer.UnreadableFile as exc:
        raise _UnreadableInput(str(exc)) from None
    with source:
        store = _store()
        ws = admin.resolve_workspace(store, workspace_ref)
        try:
            summary = importer.import_stream(store, ws, source, fmt, progress=sys.stderr.isatty())
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
@_admin
def demo_workspace(name: str, days: int, users: int, seed: int) -> None:
    """Create a demo workspace with months of data.

    The workspace (America/New_York) gets apps, users, segments and months of sessions,
    then a key with every permission; it prints the write keys and curl commands ready
    to paste."""
    from . import demo

    store = _store()
    result = demo.run_demo(store, name, days=days, users=users, seed=seed,
                           log=lambda line: click.echo(line, err=True))
    click.echo(demo.curl_commands(result))
    click.echo(demo.dashboard_lines(result))


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
