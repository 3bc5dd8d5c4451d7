"""Operator use cases (``sessiontally.admin``) for apps: resolving an app by id or name,
rotating its write key, and updating its tracking settings, on both engines."""

from __future__ import annotations

import pytest

from sessiontally import admin, keys, sessionize
from sessiontally.errors import InvalidInput, NotFound
from sessiontally.store.base import App, Store, Workspace


@pytest.fixture
def workspace(store: Store) -> Workspace:
    return admin.create_workspace(store, "acme")


def _app(store: Store, workspace: Workspace, name: str = "Web") -> App:
    return admin.create_app(store, workspace, name, "web")


# ------------------------------------------------------------------ resolve_app


def test_resolve_app_by_id_and_by_name(store: Store, workspace: Workspace) -> None:
    web, ios = _app(store, workspace, "Web"), _app(store, workspace, "iOS")
    assert admin.resolve_app(store, workspace, web.app_id) == web
    assert admin.resolve_app(store, workspace, "iOS") == ios
    assert admin.resolve_app(store, workspace, " ios ") == ios  # no exact match: case ignored


def test_resolve_app_exact_name_wins_over_case(store: Store, workspace: Workspace) -> None:
    _app(store, workspace, "web")
    upper = _app(store, workspace, "WEB")
    assert admin.resolve_app(store, workspace, "WEB") == upper


def test_resolve_app_unknown_or_of_another_workspace(store: Store, workspace: Workspace) -> None:
    other = admin.create_workspace(store, "globex")
    theirs = _app(store, other, "Theirs")
    for ref in ("nope", theirs.app_id, "Theirs", ""):
        with pytest.raises(NotFound, match="no app .* in workspace 'acme'"):
            admin.resolve_app(store, workspace, ref)


def test_resolve_app_ambiguous_name(store: Store, workspace: Workspace) -> None:
    first, _ = _app(store, workspace, "Web"), _app(store, workspace, "Web")
    with pytest.raises(InvalidInput, match="2 apps .* named 'Web': give the app id"):
        admin.resolve_app(store, workspace, "Web")
    assert admin.resolve_app(store, workspace, first.app_id) == first


# ------------------------------------------------------------- rotate_write_key


def test_new_apps_have_a_write_key_and_defaults(store: Store, workspace: Workspace) -> None:
    web = _app(store, workspace)
    assert keys.write_key_workspace(web.write_key) == workspace.workspace_id
    stored = admin.resolve_app(store, workspace, web.app_id)
    assert stored.session_timeout_s == sessionize.DEFAULT_TIMEOUT_S
    assert stored.allowed_origins == ()
    assert stored.event_limit == 10_000_000


def test_rotate_write_key_retires_the_old_key_at_once(store: Store, workspace: Workspace) -> None:
    web, ios = _app(store, workspace, "Web"), _app(store, workspace, "iOS")
    rotated = admin.rotate_write_key(store, workspace, web)
    assert rotated.app_id == web.app_id and rotated.write_key != web.write_key
    assert keys.write_key_workspace(rotated.write_key) == workspace.workspace_id
    assert store.find_app_by_write_key(workspace.workspace_id, web.write_key) is None
    assert store.find_app_by_write_key(workspace.workspace_id, rotated.write_key) == rotated
    assert store.find_app_by_write_key(workspace.workspace_id, ios.write_key) == ios  # untouched


def test_rotate_write_key_of_a_deleted_or_foreign_app(store: Store, workspace: Workspace) -> None:
    other = admin.create_workspace(store, "globex")
    theirs = _app(store, other)
    with pytest.raises(NotFound):
        admin.rotate_write_key(store, workspace, theirs)
    assert store.find_app_by_write_key(other.workspace_id, theirs.write_key) == theirs


# ------------------------------------------------------------------- update_app


def test_update_app_changes_only_what_is_given(store: Store, workspace: Workspace) -> None:
    web = _app(store, workspace)
    timed = admin.update_app(store, workspace, web, session_timeout_s=10)
    assert (timed.session_timeout_s, timed.allowed_origins, timed.event_limit) == (10, (), 10_000_000)
    limited = admin.update_app(store, workspace, timed, event_limit=500,
                               allowed_origins=["https://shop.example.com"])
    assert limited.session_timeout_s == 10
    assert limited.allowed_origins == ("https://shop.example.com",)
    assert limited.event_limit == 500
    assert limited.write_key == web.write_key
    assert admin.resolve_app(store, workspace, web.app_id) == limited
    opened = admin.update_app(store, workspace, limited, allowed_origins=[])
    assert opened.allowed_origins == () and opened.event_limit == 500


def test_update_app_needs_something_to_change(store: Store, workspace: Workspace) -> None:
    with pytest.raises(InvalidInput, match="nothing to change"):
        admin.update_app(store, workspace, _app(store, workspace))


@pytest.mark.parametrize("seconds", [sessionize.MIN_TIMEOUT_S, 10, sessionize.MAX_TIMEOUT_S])
def test_session_timeout_bounds_accepted(store: Store, workspace: Workspace, seconds: int) -> None:
    updated = admin.update_app(store, workspace, _app(store, workspace), session_timeout_s=seconds)
    assert updated.session_timeout_s == seconds


@pytest.mark.parametrize(("changes", "words"), [
    ({"session_timeout_s": 0}, "session timeout must be a whole number from 1 to 604,800"),
    ({"session_timeout_s": sessionize.MAX_TIMEOUT_S + 1}, "session timeout"),
    ({"session_timeout_s": -5}, "session timeout"),
    ({"session_timeout_s": True}, "session timeout"),
    ({"event_limit": 0}, "event limit must be a whole number from 1 to"),
    ({"event_limit": 10**12 + 1}, "event limit"),
    ({"allowed_origins": ["shop.example.com"]}, "'shop.example.com' must be scheme://host"),
])
def test_update_app_refusals_change_nothing(
    store: Store, workspace: Workspace, changes: dict[str, object], words: str
) -> None:
    web = _app(store, workspace)
    with pytest.raises(InvalidInput, match=words):
        admin.update_app(store, workspace, web, **changes)  # type: ignore[arg-type]
    assert admin.resolve_app(store, workspace, web.app_id) == web


def test_update_app_of_another_workspace(store: Store, workspace: Workspace) -> None:
    theirs = _app(store, admin.create_workspace(store, "globex"))
    with pytest.raises(NotFound):
        admin.update_app(store, workspace, theirs, event_limit=1)


# ---------------------------------------------------------------------- origins


@pytest.mark.parametrize(("given", "stored"), [
    ("https://shop.example.com", "https://shop.example.com"),
    ("HTTPS://Shop.Example.COM", "https://shop.example.com"),
    ("https://shop.example.com/", "https://shop.example.com"),  # pasted from the address bar
    ("https://shop.example.com:443", "https://shop.example.com"),  # browsers omit default ports
    ("http://localhost:80", "http://localhost"),
    ("http://localhost:3000", "http://localhost:3000"),
    ("http://localhost:3000/", "http://localhost:3000"),
    ("https://localhost:80", "https://localhost:80"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("http://[0:0::1]", "http://[::1]"),
    ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    (" https://a.example ", "https://a.example"),
])
def test_origins_are_stored_as_browsers_send_them(given: str, stored: str) -> None:
    assert admin.normalise_origins([given]) == (stored,)


@pytest.mark.parametrize("given", [
    "shop.example.com", "ftp://shop.example.com", "https://", "https://shop.example.com/cart",
    "https://shop.example.com//", "https://shop.example.com?x=1", "https://shop.example.com#top",
    "https://user:pw@shop.example.com", "https://shop.example.com:99999", "https://shop.example.com:0",
    "https://shop.example.com:http", "https://shop_example.com", "https://-shop.example.com",
    "https://[::1", "https://[nothex]", "https://bücher.example",
    "null", "", "**",
])
def test_bad_origins_are_refused(given: str) -> None:
    with pytest.raises(InvalidInput, match="origin"):
        admin.normalise_origins([given])


def test_origins_are_kept_once_in_order() -> None:
    given = ["https://b.example", "https://a.example", "HTTPS://B.example:443"]
    assert admin.normalise_origins(given) == ("https://b.example", "https://a.example")


def test_star_alone_means_any_origin() -> None:
    assert admin.normalise_origins(["*"]) == ()
    assert admin.normalise_origins(["*", " * "]) == ()
    with pytest.raises(InvalidInput, match="give it alone"):
        admin.normalise_origins(["*", "https://a.example"])


def test_at_most_so_many_origins() -> None:
    many = [f"https://a{n}.example" for n in range(admin.MAX_ORIGINS + 1)]
    assert len(admin.normalise_origins(many[:-1])) == admin.MAX_ORIGINS
    with pytest.raises(InvalidInput, match=f"at most {admin.MAX_ORIGINS}"):
        admin.normalise_origins(many)


def test_a_workspace_with_a_retention_keeps_its_zone(db) -> None:  # type: ignore[no-untyped-def]
    """The KPI days are rebuilt from raw rows, which retention deletes: refused, in one
    line, and nothing changes (the zone it has is still accepted)."""
    from sessiontally import retention
    from sessiontally.errors import Conflict

    ws = retention.set_retention(db.store, db.workspace(time_zone="UTC"), 30)
    with pytest.raises(Conflict, match="keeps raw rows 30 days"):
        admin.update_workspace(db.store, ws, time_zone="Asia/Kolkata")
    with pytest.raises(Conflict):
        admin.change_time_zone(db.store, ws, "Asia/Kolkata")
    assert db.store.get_workspace(ws.workspace_id).time_zone == "UTC"
    assert admin.update_workspace(db.store, ws, time_zone="UTC", rate_limit=5).rate_limit == 5
