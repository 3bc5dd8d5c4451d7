"""Real headless Chromium (Debian's, driven by Playwright for Python; no browser download)
against a running server: @segment/analytics-next with its settings inline, and the
first-party ``/js/sessiontally.js`` tracker, each from a page on ``localhost`` talking to
the API on ``127.0.0.1`` (another origin, so CORS is real). Each checks the series.

No request may leave the machine: the browser's proxy is a closed local port (loopback
is never proxied), and every request the pages make is recorded and checked. Playwright's
request routing is not used, because while it is on Playwright answers CORS preflights
itself and the server would never see them.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_support import offline_chromium, require_chromium
from clients_support import (
    NODE_MODULES,
    access_log,
    require_node_modules,
    tenant,
    wait_for_total,
)

pytestmark = pytest.mark.e2e

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Request
except ImportError as exc:  # a failure, not a skip: CI installs it with the test extras
    raise ImportError("playwright (for Python) is missing: pip install -e '.[test]'") from exc

LOCAL_HOSTS = {"localhost", "127.0.0.1"}
UMD = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd"
SERIES = "unit=day&length=2"  # today and yesterday: a run that crosses midnight still adds up


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with offline_chromium() as launched:
        yield launched


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served at ``http://localhost:PORT`` (the pages' origin) and that origin."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Recorder:
    """Every request of a browser context, and the bodies it posted to the tracking API."""

    def __init__(self, context: BrowserContext) -> None:
        self.urls: list[str] = []
        self.posts: list[tuple[str, dict[str, str], Any]] = []
        context.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        self.urls.append(request.url)
        if request.method == "POST" and urlsplit(request.url).path.startswith("/v1/"):
            body = request.post_data
            self.posts.append((request.url, request.headers, json.loads(body) if body else None))

    def foreign(self) -> list[str]:
        return [url for url in self.urls
                if urlsplit(url).scheme != "data" and urlsplit(url).hostname not in LOCAL_HOSTS]

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for _, _, body in self.posts:
            found.extend(body.get("batch", [body]) if isinstance(body, dict) else [])
        return found


def wait_until(condition: Any, what: str, page: Page | None = None, timeout: float = 20.0) -> None:
    """Poll ``condition``; with a ``page``, wait through it, since Playwright's sync API
    delivers the recorded events only while one of its calls runs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if page is None:
            time.sleep(0.1)
        else:
            page.wait_for_timeout(100)


def new_context(browser: Browser) -> tuple[BrowserContext, Recorder]:
    context = browser.new_context()
    return context, Recorder(context)


# ------------------------------------------------------------------ analytics-next


NEXT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,">
<script src="/umd/index.js"></script></head>
<body><script>
  var api = %(api)s, writeKey = %(write_key)s;
  var segmentio = {apiKey: writeKey, apiHost: api, protocol: "http"};
  var analytics = window.AnalyticsNext.AnalyticsBrowser.load(
    {writeKey: writeKey, cdnSettings: {integrations: {"Segment.io": segmentio}, metrics: {sampleRate: 0}}},
    {integrations: {"Segment.io": {apiHost: api, protocol: "http"}}});
  window.run = async function (userId) {
    await analytics.page();
    await analytics.track("Added to Cart", {sku: "a1"});
    await analytics.identify(userId, {plan: "pro"});
    return "sent";
  };
</script></body></html>
"""


def test_analytics_next_in_chromium(db, server_factory, browser, site) -> None:  # type: ignore[no-untyped-def]
    require_node_modules()
    assert UMD.joinpath("index.js").is_file(), f"{UMD}/index.js missing: npm ci in tests/clients/node"
    t = tenant(db)
    server = server_factory(db)
    folder, origin = site
    (folder / "umd").symlink_to(UMD, target_is_directory=True)
    api = f"127.0.0.1:{server.port}/v1"
    values = {"api": json.dumps(api), "write_key": json.dumps(t.write_key)}
    (folder / "shop.html").write_text(NEXT_PAGE % values)

    recorders = []
    for user in ("grace", "heidi"):  # two browsers, two people
        context, recorder = new_context(browser)
        recorders.append(recorder)
        page = context.new_page()
        page.goto(f"{origin}/shop.html")
        assert page.evaluate(f"window.run({json.dumps(user)})") == "sent"
        wait_until(lambda r=recorder: {m["type"] for m in r.messages()} >= {"page", "track", "identify"},
                   "analytics-next to post page, track and identify", page)
        context.close()

    wait_for_total(server, t, SERIES, 2)
    for recorder in recorders:
        assert recorder.foreign() == []
        for url, headers, body in recorder.posts:
            assert urlsplit(url).netloc == f"127.0.0.1:{server.port}", url
            assert headers["authorization"].startswith("Basic "), headers
            assert body["writeKey"] == t.write_key
    # The page is on another origin and sends Authorization: the server saw real preflights.
    wait_until(lambda: any(e["method"] == "OPTIONS" and e["path"].startswith("/v1/") and e["status"] == 204
                           for e in access_log(server)), "a CORS preflight in the server's log")
    posted = [e for e in access_log(server) if e["method"] == "POST" and e["path"].startswith("/v1/")]
    assert posted and all(e["status"] == 200 for e in posted), posted


# ------------------------------------------------------------------ sessiontally.js


TRACKER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Home</title><link rel="icon" href="data:,">
<script src="%(src)s" data-write-key="%(write_key)s"></script></head>
<body><h1>Home</h1></body></html>
"""


def test_the_first_party_tracker_in_chromium(db, server_factory, browser, site) -> None:  # type: ignore[no-untyped-def]
    t = tenant(db)
    server = server_factory(db)
    folder, origin = site
    src = f"{server.url}/js/sessiontally.js"
    (folder / "home.html").write_text(TRACKER_PAGE % {"src": src, "write_key": t.write_key})

    context, recorder = new_context(browser)
    page = context.new_page()
    page.goto(f"{origin}/home.html")
    page.evaluate("""() => {
        history.pushState({}, "", "/pricing?plan=pro");
        history.replaceState({}, "", "/pricing?plan=pro#faq");  // the same page
        sessiontally.track("Signed Up", {plan: "pro"});
        sessiontally.identify("ivan", {plan: "pro"});
    }""")
    wait_until(lambda: len(recorder.messages()) >= 4, "the tracker's four messages", page)
    page.goto(f"{origin}/home.html")  # a new load, the same person: the id is in localStorage
    wait_until(lambda: len(recorder.messages()) >= 5, "the page of the second load", page)
    cookies = page.evaluate("document.cookie")
    first = recorder.messages()

    other, other_recorder = new_context(browser)  # another person
    other_page = other.new_page()
    other_page.goto(f"{origin}/home.html")
    wait_until(lambda: len(other_recorder.messages()) >= 1, "the other person's page", other_page)

    wait_for_total(server, t, SERIES, 2)
    assert [m["type"] for m in first] == ["page", "page", "track", "identify", "page"], first
    assert [m["context"]["page"]["path"] for m in first] == ["/home.html"] + ["/pricing"] * 3 + ["/home.html"]
    home, pricing, signed_up, identify, again = first
    assert pricing["properties"]["search"] == "?plan=pro"
    assert pricing["properties"]["referrer"] == f"{origin}/home.html"
    assert signed_up["event"] == "Signed Up" and signed_up["properties"] == {"plan": "pro"}
    assert identify["userId"] == "ivan" and identify["traits"] == {"plan": "pro"}
    assert "userId" not in home and again["userId"] == "ivan"  # kept across loads
    assert len({m["anonymousId"] for m in first}) == 1
    assert other_recorder.messages()[0]["anonymousId"] != home["anonymousId"]
    assert len({m["messageId"] for m in first}) == len(first)
    for message in first:
        assert message["timestamp"].endswith("Z")
        assert message["context"]["library"]["name"] == "sessiontally.js"
        assert message["context"]["userAgent"] and message["context"]["locale"]
        assert message["context"]["timezone"]
    for url, headers, body in recorder.posts + other_recorder.posts:
        assert url == f"{server.url}/v1/batch"
        assert "authorization" not in headers and headers["content-type"].startswith("text/plain")
        assert body["writeKey"] == t.write_key

    # No cookie anywhere, no request off the machine, no preflight (a simple request).
    assert cookies == ""
    assert context.cookies() == [] and other.cookies() == []
    assert recorder.foreign() == [] and other_recorder.foreign() == []
    posts = len(recorder.posts + other_recorder.posts)
    wait_until(lambda: len([e for e in access_log(server) if e["path"] == "/v1/batch"]) >= posts,
               "the server's log of every post")
    log = access_log(server)
    assert not [e for e in log if e["method"] == "OPTIONS"], log
    assert [e["status"] for e in log if e["path"] == "/v1/batch"] == [200] * posts
    context.close()
    other.close()
