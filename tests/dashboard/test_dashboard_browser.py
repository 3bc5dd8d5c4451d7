"""The dashboard in real headless Chromium (Debian's, driven by Playwright; no browser
download) against a real ``sessiontally serve``, on both engines: a member signs in
through the form, works the pickers as a person would, and every number the page draws
(each card's table: ``data-time``, ``data-value``, ``data-previous``) must equal what the
API answers an API key for the same parameters, read in pieces of 100 as documented
(tests/dashboard/dashboard_support.py). Also: the CSV download, signing out, isolation
from another workspace's member, phone width and the keyboard, the empty states, and no
console error or CSP violation anywhere.

One database, server and browser per engine serve the whole module. Its workspaces:
"alpha" (two apps, a tracked segment, ~75 days of sessions, custom events, uninstalls,
and every hour of the days around New York's last change of daylight saving time),
"bravo" (the same, smaller), "charlie" (no app) and "delta" (an app, no data).

The in-process and isolation tests of the same endpoints are tests/test_api_dashboard.py
and tests/hostile/test_hostile_dashboard.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser_support import offline_chromium, require_chromium
from dashboard_support import (
    CARDS,
    DST_ZONE,
    WORKSPACE_ZONE,
    Tenant,
    View,
    bare_tenant,
    expected_card,
    full_tenant,
    last_dst_change,
    table_rows,
)
from db_support import engine_database

from sessiontally.api import dashboard
from sessiontally.store import open_store

pytestmark = pytest.mark.e2e

try:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response
except ImportError as exc:  # a failure, not a skip: CI installs it with the test extras
    raise ImportError("playwright (for Python) is missing: pip install -e '.[test]'") from exc

READY = "html[data-charts=ready]"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium(skip_outside_ci=True)
    with offline_chromium() as launched:
        yield launched


@dataclass
class World:
    url: str
    alpha: Tenant
    bravo: Tenant
    charlie: Tenant  # no app
    delta: Tenant  # an app, no data
    api: httpx.Client  # alpha's API key
    problems: list[str] = field(default_factory=list)  # console errors, page errors, CSP
    pages_watched: int = 0


@pytest.fixture(scope="module")
def world(engine, tmp_path_factory, session_server_factory) -> Iterator[World]:  # type: ignore[no-untyped-def]
    with engine_database(engine, tmp_path_factory.mktemp(f"dashboard-{engine}")) as url:
        store = open_store(url)
        store.migrate()
        server = session_server_factory(url, env={"TZ": "Pacific/Chatham"})
        try:
            alpha = full_tenant(store, server.url, "alpha", seed=1)
            bravo = full_tenant(store, server.url, "bravo", seed=2, per_day=8)
            with httpx.Client(base_url=server.url, timeout=30,
                              headers={"Authorization": f"Bearer {alpha.key}"}) as api:
                yield World(server.url, alpha, bravo, bare_tenant(store, "charlie"),
                            bare_tenant(store, "delta", apps=1), api)
        finally:
            server.stop()
            store.close()


# ------------------------------------------------------------------ driving the page


def watch(world: World, page: Page, expected: tuple[str, ...] = ()) -> None:
    """Record every console error and uncaught error of ``page`` (a CSP violation is a
    console error), except those containing one of ``expected``."""
    world.pages_watched += 1

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not any(text in msg.text for text in expected):
            world.problems.append(f"console: {msg.text} ({page.url})")

    page.on("console", console)
    page.on("pageerror", lambda error: world.problems.append(f"pageerror: {error} ({page.url})"))


def open_page(browser: Browser, world: World, **options: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(accept_downloads=True, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch(world, page)
    return context, page


def sign_in(page: Page, world: World, tenant: Tenant) -> None:
    """Through the form, as a person would, from the page's own address."""
    page.goto(world.url + "/")
    assert urlsplit(page.url).path == "/sign-in", page.url
    page.fill("#email", tenant.email)
    page.fill("#password", tenant.password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == "/", page.url
    settled(page)
    page.wait_for_selector("#app-list article, #onboarding:not([hidden])", state="attached")


def settled(page: Page) -> None:
    page.wait_for_selector(READY, state="attached")


def act(page: Page, action: Any) -> None:
    """Do ``action`` (a control change) and wait until the charts it reloads settle."""
    page.evaluate("document.documentElement.dataset.charts = 'changing'")
    action()
    settled(page)


def type_zone(page: Page, zone: str) -> None:
    page.fill("#pick-zone", zone)
    page.press("#pick-zone", "Enter")


def url_view(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def default_event(world: World) -> str:
    names = world.api.get("/events/list").json()["events"]
    return next((n for n in names if not n.startswith("Application ")), names[0])


def assert_matches_api(page: Page, world: World, view: View, cards: tuple[str, ...] = tuple(CARDS)) -> None:
    """Every card is drawn, and its table equals the API's answer for ``view``."""
    states = page.evaluate("[...document.querySelectorAll('[data-chart]')].map(c => c.dataset.state)")
    assert states == ["ready"] * len(CARDS), states
    shown = url_view(page)
    assert shown.get("app", "") == view.app and shown.get("segment", "") == view.segment, shown
    assert shown.get("zone", "") == view.zone and shown["unit"] == view.unit, shown
    assert shown.get("range", "") == (str(view.range) if view.range else ""), shown
    assert (shown.get("from", ""), shown.get("to", "")) == (view.start, view.to), shown
    for key in cards:
        rows = table_rows(page, key)
        assert rows, f"{key}: no rows"
        expected = expected_card(world.api, CARDS[key], view, WORKSPACE_ZONE,
                                 newest=rows[-1][0] if view.range else None)
        assert rows == expected, f"{key} differs from the API for {view}:\n" + "\n".join(
            f"{got} != {want}" for got, want in zip(rows, expected, strict=False) if got != want)[:3000]


def assert_quiet(world: World) -> None:
    assert not world.problems, "\n".join(world.problems)


# ------------------------------------------------------------------ the tests


def test_sign_in_then_every_card_equals_the_api(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.alpha)
        page.wait_for_selector("html[data-first-chart=drawn]", state="attached")
        assert page.title().startswith(world.alpha.ws.name)
        view = View(event=default_event(world))
        assert page.input_value("#pick-event") == view.event
        assert_matches_api(page, world, view)
        assert any(int(v) for _, v, _ in table_rows(page, "sessions"))
        assert any(int(v) for _, v, _ in table_rows(page, "uninstalls"))
        assert any(int(v) for _, v, _ in table_rows(page, "events"))
    finally:
        context.close()
    assert_quiet(world)


def test_the_default_views_first_series_is_preloaded_and_asked_once(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.alpha)
        asked: list[str] = []
        warnings: list[str] = []
        page.on("request", lambda request: asked.append(request.url) if "/sessions/" in request.url else None)
        page.on("console", lambda msg: warnings.append(msg.text) if "preload" in msg.text else None)
        page.goto(world.url + "/")
        settled(page)
        assert asked == [world.url + dashboard.FIRST_SERIES], asked  # the preload, used by the script
        page.wait_for_timeout(3500)  # Chromium warns of an unused preload after about 3 s
        assert not warnings, warnings
    finally:
        context.close()
    assert_quiet(world)


def test_every_picker_change_redraws_the_apis_numbers(browser, world) -> None:  # type: ignore[no-untyped-def]
    alpha = world.alpha
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, alpha)
        view = View(event=default_event(world))
        steps: list[tuple[str, Any, View]] = [
            ("app", lambda: page.select_option("#pick-app", alpha.apps[1].app_id),
             replace(view, app=alpha.apps[1].app_id)),
            ("segment", lambda: page.select_option("#pick-segment", alpha.segment.segment_id), None),
            ("event", lambda: page.select_option("#pick-event", alpha.events[0]), None),
            ("zone", lambda: type_zone(page, "Asia/Kolkata"), None),
            ("unit", lambda: page.select_option("#pick-unit", "hour"), None),
            ("range of 168 hours: pieces", lambda: page.select_option("#pick-range", "168"), None),
            ("all apps", lambda: page.select_option("#pick-app", ""), None),
        ]
        changes = {
            "segment": {"segment": alpha.segment.segment_id}, "event": {"event": alpha.events[0]},
            "zone": {"zone": "Asia/Kolkata"}, "unit": {"unit": "hour", "range": 24},
            "range of 168 hours: pieces": {"range": 168}, "all apps": {"app": ""},
        }
        for name, action, target in steps:
            view = target or replace(view, **changes[name])
            act(page, action)
            assert_matches_api(page, world, view)
            assert_quiet(world)

        # New York, by hour, over its last change of daylight saving time: a custom range
        # of 5 local days (119 or 121 hours, so two pieces that meet across the change)
        change = last_dst_change(DST_ZONE, datetime.now(UTC))
        start, to = (change - timedelta(days=2)).isoformat(), (change + timedelta(days=2)).isoformat()
        act(page, lambda: type_zone(page, DST_ZONE))
        view = replace(view, zone=DST_ZONE)
        assert_matches_api(page, world, view)
        page.select_option("#pick-range", "custom")
        assert page.is_visible("#custom-range")
        page.fill("#pick-from", start)
        page.fill("#pick-to", to)
        act(page, lambda: page.click("#custom-range button[type=submit]"))
        view = replace(view, range=0, start=start, to=to)
        assert_matches_api(page, world, view)
        rows = table_rows(page, "sessions")
        offsets = {time[19:] for time, _, _ in rows}
        assert offsets == {"-04:00", "-05:00"}, offsets
        assert len(rows) in (119, 121) and len({time for time, _, _ in rows}) == len(rows)
        assert sum(int(v) for _, v, _ in rows) > 0

        # a year by day, in New York (both changes of the year inside): 8 pieces of 100
        act(page, lambda: page.select_option("#pick-unit", "day"))
        view = replace(view, unit="day", range=0)  # the custom dates stay, by day now
        assert_matches_api(page, world, view)
        act(page, lambda: page.select_option("#pick-range", "365"))
        view = replace(view, range=365, start="", to="")
        assert_matches_api(page, world, view)
        assert len(table_rows(page, "sessions")) == 365
        assert all(previous != "" for _, _, previous in table_rows(page, "mau"))
    finally:
        context.close()
    assert_quiet(world)


def test_the_csv_download_is_the_table_and_the_api(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.alpha)
        view = View(event=default_event(world))
        for key in ("sessions", "dau", "events"):
            card = page.locator(f'[data-chart="{key}"]')
            with page.expect_download() as info:
                card.get_by_role("button", name="Download CSV").click()
            download = info.value
            assert download.suggested_filename.endswith(".csv")
            text = Path(download.path()).read_text("utf-8")
            lines = list(csv.reader(io.StringIO(text)))
            assert lines[0] == ["time", CARDS[key].field, "previous"], lines[0]
            table = table_rows(page, key)
            assert [tuple(line) for line in lines[1:]] == table
            assert table == expected_card(world.api, CARDS[key], view, WORKSPACE_ZONE, newest=table[-1][0])
    finally:
        context.close()
    assert_quiet(world)


def test_sign_out_ends_the_session(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.alpha)
        cookie = next(c["value"] for c in context.cookies() if c["name"] == "sessiontally_session")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign out").click()
        assert urlsplit(page.url).path == "/sign-in"
        assert not [c for c in context.cookies() if c["name"] == "sessiontally_session"]
        page.goto(world.url + "/")
        assert urlsplit(page.url).path == "/sign-in"
        old = httpx.get(world.url + "/dashboard/api/sessions/data_series?length=3",
                        headers={"Cookie": f"sessiontally_session={cookie}"})
        assert old.status_code == 401, old.text
        assert old.json() == {"message": "Your dashboard session has ended; sign in again"}
    finally:
        context.close()
    assert_quiet(world)


def test_another_workspaces_member_sees_nothing_of_it(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world)
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    try:
        sign_in(page, world, world.bravo)
        page.select_option("#pick-segment", world.bravo.segment.segment_id)  # more answers to search
        settled(page)
        bodies = [page.content()]
        for response in responses:
            if (response.request.resource_type in ("document", "fetch", "xhr") and response.status != 303
                    and urlsplit(response.url).path != "/sign-in"):  # the form, navigated away from
                bodies.append(response.text())
        assert len(bodies) > 8
        assert world.bravo.apps[0].write_key in page.content()  # its own workspace is there
        for marker in world.alpha.markers():
            leaks = [n for n, body in enumerate(bodies) if marker in body]
            assert not leaks, f"{marker!r} of the other workspace in answers {leaks}"

        # the other workspace's app named in the address: an error on every card, no data
        page.goto(f"{world.url}/?app={world.alpha.apps[0].app_id}&unit=day&range=30")
        settled(page)
        states = page.evaluate("[...document.querySelectorAll('[data-chart]')].map(c => c.dataset.state)")
        assert states == ["error"] * len(CARDS), states
        assert page.locator("[data-chart] table.data-table tbody tr").count() == 0
        assert "could not be loaded" in page.inner_text("#status")
        assert world.alpha.apps[0].name not in page.content()
    finally:
        context.close()
    # the browser reports each refused request as a failed resource load: expected here
    world.problems[:] = [p for p in world.problems if not (
        "Failed to load resource: the server responded with a status of 400" in p and "?app=" in p)]
    assert_quiet(world)


def test_phone_width_and_keyboard(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world, viewport={"width": 375, "height": 800})
    try:
        sign_in(page, world, world.alpha)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
        boxes = [page.locator(f'[data-chart="{key}"]').bounding_box() for key in CARDS]
        for upper, lower in zip(boxes, boxes[1:], strict=False):
            assert upper and lower and lower["y"] >= upper["y"] + upper["height"], (upper, lower)
            assert abs(lower["x"] - upper["x"]) < 1 and lower["x"] + lower["width"] <= 375
        # the keyboard: from the top of the page, Tab reaches every picker and a Table button
        page.evaluate("document.activeElement && document.activeElement.blur()")
        reached: list[str] = []
        for _ in range(40):
            page.keyboard.press("Tab")
            reached.append(page.evaluate(
                "(e => e.id || (e.textContent || '').trim())(document.activeElement)"))
            if reached[-1] == "Table":
                break
        for control in ("pick-app", "pick-segment", "pick-zone", "pick-unit", "pick-range", "Table"):
            assert control in reached, reached
        focused = page.locator(":focus")
        assert focused.get_attribute("aria-expanded") == "false"
        page.keyboard.press("Enter")
        assert focused.get_attribute("aria-expanded") == "true"
        table = page.locator(f"#{focused.get_attribute('aria-controls')}")
        assert table.is_visible() and table.locator("table.data-table tbody tr").count() > 0
        other = page.locator('[data-chart="dau"]').get_by_role("button", name="Table")
        other.focus()
        page.keyboard.press(" ")
        assert other.get_attribute("aria-expanded") == "true"
        assert page.locator(f"#{other.get_attribute('aria-controls')}").is_visible()
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"overflow with the tables open: {width}"
    finally:
        context.close()
    assert_quiet(world)


def test_empty_workspaces_say_what_to_do_next(browser, world) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.charlie)
        onboarding = page.locator("#onboarding")
        onboarding.wait_for(state="visible")
        assert "sessiontally app create" in onboarding.inner_text()
        assert world.charlie.ws.name in onboarding.inner_text()
    finally:
        context.close()
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.delta)
        onboarding = page.locator("#onboarding")
        onboarding.wait_for(state="visible")
        text = onboarding.inner_text()
        assert "No sessions in this range yet" in text
        assert world.delta.apps[0].write_key in text and "<script src=" in text
        assert "/js/sessiontally.js" in text
    finally:
        context.close()
    assert_quiet(world)


def test_no_csp_violation_or_console_error_anywhere(browser, world) -> None:  # type: ignore[no-untyped-def]
    """Everything above was watched; and the watch does see a CSP violation."""
    assert world.pages_watched >= 8, "run the whole module: the other tests are what is watched"
    assert_quiet(world)
    context, page = open_page(browser, world)
    try:
        sign_in(page, world, world.alpha)
        page.evaluate("""() => { const s = document.createElement('script');
                                 s.textContent = 'window.inlined = 1'; document.body.append(s); }""")
        page.wait_for_timeout(200)
        assert page.evaluate("window.inlined === undefined")
    finally:
        context.close()
    seen, world.problems[:] = list(world.problems), []
    assert any("Content Security Policy" in p for p in seen), seen
