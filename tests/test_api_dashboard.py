"""The dashboard over HTTP, in process, on both engines: sign-in and sign-out with their
cookies and anti-forgery tokens, the security headers of every page, the page itself, and
the data endpoints, which must give exactly the API's answers for the member's workspace.
(The isolation matrix is tests/hostile/test_hostile_dashboard.py; the page in a real
browser is tests/dashboard/.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from sessiontally import members
from sessiontally.api import dashboard, pages
from sessiontally.api.app import create_app
from sessiontally.config import Settings
from sessiontally.store.base import NewSession

PASSWORD = "correct horse battery"
KPIS = ("dau", "mau", "new_users", "uninstalls")


@pytest.fixture
def app(db) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    made = create_app(Settings(database=db.url, redis_url=None, log_level="WARNING"))
    yield made
    made.state.service.close()


@pytest.fixture
def tenant(db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    ws = db.workspace(time_zone="America/New_York")
    web = db.app(ws, "Web", "web")
    sessions = [NewSession(f"s{i}", f"u{i % 7}", web.app_key, 1_750_000_000_000_000 + i * 3_600_000_000, None)
                for i in range(40)]
    db.store.record_sessions(ws.workspace_id, sessions)
    member, _ = members.add_member(db.store, ws, "Ana@Example.com", PASSWORD)
    return {"ws": ws, "app": web, "member": member, "key": db.key(ws)}


def client(app: Any, https: bool = False) -> TestClient:
    return TestClient(app, base_url="https://testserver" if https else "http://testserver",
                      follow_redirects=False)


def form_token(response: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, response.text
    return match.group(1)


def sign_in(web: TestClient, email: str = "ana@example.com", password: str = PASSWORD) -> Any:
    token = form_token(web.get("/sign-in"))
    return web.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})


def assert_secure_headers(response: Any) -> None:
    assert response.headers["content-security-policy"] == pages.CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in pages.CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in pages.CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def set_cookie_header(response: Any, name: str) -> str:
    found = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "=")]
    assert found, response.headers
    return found[0]


# ------------------------------------------------------------------ signing in and out


def test_the_page_asks_for_a_sign_in_first(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    response = web.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert_secure_headers(response)
    form = web.get("/sign-in")
    assert form.status_code == 200 and "text/html" in form.headers["content-type"]
    assert_secure_headers(form)
    assert form.headers["cache-control"] == "no-store"
    cookie = set_cookie_header(form, pages.SIGN_IN_COOKIE).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/sign-in" in cookie


def test_sign_in_sets_a_strict_cookie_and_opens_the_page(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    response = sign_in(web)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = set_cookie_header(response, pages.SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie.replace("samesite", "")  # plain HTTP
    page = web.get("/")
    assert page.status_code == 200
    assert_secure_headers(page)
    assert tenant["ws"].name in page.text and "ana@example.com" in page.text
    assert web.get("/sign-in").status_code == 303  # already signed in


def test_the_cookie_is_secure_over_https(app, tenant) -> None:  # type: ignore[no-untyped-def]
    response = sign_in(client(app, https=True))
    assert response.status_code == 303
    assert "; secure" in set_cookie_header(response, pages.SESSION_COOKIE).lower()


def test_only_the_default_view_preloads_its_first_series(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    assert dashboard.FIRST_SERIES_PRELOAD in web.get("/").text
    other = web.get("/?unit=hour&range=48").text
    assert "preload" not in other and "<!--" not in other
    assert web.get(dashboard.FIRST_SERIES).status_code == 200


def test_the_page_has_no_inline_script_or_style(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    for html in (web.get("/").text, web.get("/sign-in").text, client(app).get("/sign-in").text):
        for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE):
            assert "src=" in tag, tag
        assert all(not body.strip() for body in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S))
        assert not re.search(r"<style\b", html, re.IGNORECASE)
        assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE)
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
        assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html)), "an asset from elsewhere"


@pytest.mark.parametrize("case", ["wrong password", "unknown e-mail", "not an e-mail"])
def test_a_wrong_sign_in_gets_one_answer(app, tenant, case) -> None:  # type: ignore[no-untyped-def]
    email, password = {"wrong password": ("ana@example.com", "wrong password!"),
                       "unknown e-mail": ("bo@example.com", PASSWORD),
                       "not an e-mail": ("ana", PASSWORD)}[case]
    response = sign_in(client(app), email, password)
    assert response.status_code in (400, 401), response.text
    if case != "not an e-mail":
        assert response.status_code == 401 and "E-mail or password is wrong" in response.text
    assert pages.SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert_secure_headers(response)


def test_forged_sign_in_forms_are_refused(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    token = form_token(web.get("/sign-in"))
    fields = {"email": "ana@example.com", "password": PASSWORD}
    assert web.post("/sign-in", data=fields).status_code == 403  # no token
    assert web.post("/sign-in", data={**fields, "csrf_token": token + "x"}).status_code == 403
    assert web.post("/sign-in", data={**fields, "csrf_token": token},
                    headers={"Origin": "https://evil.example"}).status_code == 403
    fresh = client(app)  # a token without its cookie (another browser's page)
    refused = fresh.post("/sign-in", data={**fields, "csrf_token": token})
    assert refused.status_code == 403
    # Every refusal comes with a new form and token; that one works.
    assert fresh.post("/sign-in", data={**fields, "csrf_token": form_token(refused)},
                      headers={"Origin": "http://testserver"}).status_code == 303


def test_behind_a_proxy_that_rewrites_host_the_forwarded_host_is_the_origin(app, tenant) -> None:  # type: ignore[no-untyped-def]
    # nginx's default: Host is the upstream's (proxy_set_header Host $proxy_host)
    web = client(app)
    token = form_token(web.get("/sign-in"))
    fields = {"email": "ana@example.com", "password": PASSWORD, "csrf_token": token}
    upstream = {"Host": "127.0.0.1:8000", "Origin": "https://dash.example.com"}
    refused = web.post("/sign-in", data=fields, headers=upstream)  # no X-Forwarded-Host
    assert refused.status_code == 403
    fields["csrf_token"] = form_token(refused)
    forged = web.post("/sign-in", data=fields, headers={
        **upstream, "Origin": "https://evil.example", "X-Forwarded-Host": "dash.example.com"})
    assert forged.status_code == 403  # another site's form names its own Origin
    fields["csrf_token"] = form_token(forged)
    proxied = {**upstream, "X-Forwarded-Host": "dash.example.com"}
    assert web.post("/sign-in", data=fields, headers=proxied).status_code == 303
    out = web.post("/sign-out", data={"csrf_token": form_token(web.get("/"))}, headers=proxied)
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"


def test_the_origin_may_match_the_host_with_an_unrelated_forwarded_host(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    token = form_token(web.get("/sign-in"))
    fields = {"email": "ana@example.com", "password": PASSWORD, "csrf_token": token}
    headers = {"Origin": "http://testserver", "X-Forwarded-Host": "a.example, b.example"}
    signed = web.post("/sign-in", data=fields, headers=headers)
    assert signed.status_code == 303


@pytest.mark.parametrize("body, content_type", [
    (b"email=a%40b.c&password=x", "application/json"),
    (b"x" * 9000, "application/x-www-form-urlencoded"),
    (b"email=\xff\xfe", "application/x-www-form-urlencoded"),
])
def test_unreadable_sign_in_bodies_get_a_400(app, tenant, body, content_type) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    web.get("/sign-in")
    response = web.post("/sign-in", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400 and "could not be read" in response.text


def test_sign_in_attempts_are_limited_per_address(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    for _ in range(members.MAX_ATTEMPTS_PER_EMAIL):
        assert sign_in(web, password="wrong password!").status_code == 401
    refused = sign_in(web)  # the right password, too late
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in refused.text
    assert pages.SESSION_COOKIE not in refused.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_for_good(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    stolen = web.cookies[pages.SESSION_COOKIE]
    page = web.get("/")
    csrf = form_token(page)
    assert web.post("/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert web.get("/dashboard/context.json").status_code == 200  # still signed in
    out = web.post("/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert web.get("/").status_code == 303
    replay = client(app)
    replay.cookies.set(pages.SESSION_COOKIE, stolen)
    assert replay.get("/dashboard/context.json").status_code == 401
    assert replay.get("/").status_code == 303


def test_a_password_reset_or_removal_signs_the_member_out(app, tenant, db) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    members.reset_password(db.store, tenant["ws"], "ana@example.com", "another long password")
    assert web.get("/dashboard/context.json").status_code == 401
    again = client(app)
    assert sign_in(again, password="another long password").status_code == 303
    members.remove_member(db.store, tenant["ws"], "ana@example.com")
    assert again.get("/dashboard/context.json").status_code == 401


@pytest.mark.parametrize("value", ["", "garbage", "1.", "x" * 5000, "99999.abc", '"quoted"', "1.a;b"])
def test_garbage_cookies_are_no_session(app, tenant, value) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    web.cookies.set(pages.SESSION_COOKIE, value)
    assert web.get("/").status_code == 303
    answer = web.get("/dashboard/api/sessions/data_series?length=3")
    assert (answer.status_code, answer.json()) == (401, {"message": dashboard.SIGNED_OUT})


def cookie_of(*headers: bytes, name: str = pages.SESSION_COOKIE) -> str | None:
    return pages.cookie({"headers": [(b"cookie", value) for value in headers]}, name)


def test_cookie_parsing_keeps_the_first_value_and_skips_malformed_pairs() -> None:
    assert cookie_of(b'x="unterminated; sessiontally_session=abc') == "abc"
    assert cookie_of(b"sessiontally_session=first; sessiontally_session=second") == "first"
    assert cookie_of(b"sessiontally_session=first", b"sessiontally_session=second") == "first"
    assert cookie_of(b"novalue; a=b;; =c; sessiontally_session = 1.x ; d") == "1.x"
    assert cookie_of(b'sessiontally_session="quoted"') == "quoted"
    assert cookie_of(b"sessiontally_session=") == ""
    assert cookie_of(b"other_sessiontally_session=x; sessiontally_sessionx=y") is None
    assert cookie_of(b"a=" + b"x" * pages.MAX_COOKIE_HEADER + b"; sessiontally_session=abc") is None
    assert cookie_of(b"a=" + b"x" * pages.MAX_COOKIE_HEADER, b"sessiontally_session=abc") == "abc"


def test_a_malformed_or_repeated_cookie_does_not_sign_the_member_out(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    token = web.cookies[pages.SESSION_COOKIE]
    for header in (f'x="unterminated; {pages.SESSION_COOKIE}={token}',
                   f"{pages.SESSION_COOKIE}={token}; {pages.SESSION_COOKIE}=stale"):
        fresh = client(app)
        assert fresh.get("/dashboard/context.json", headers={"Cookie": header}).status_code == 200, header


# ------------------------------------------------------------------ what the page reads


def test_context_lists_the_workspaces_apps_and_snippets(app, tenant, db) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    body = web.get("/dashboard/context.json").json()
    stored = db.store.find_app(tenant["ws"].workspace_id, tenant["app"].app_id)
    assert body["workspace"] == {"name": tenant["ws"].name, "time_zone": "America/New_York"}
    assert body["member"] == {"email": "ana@example.com"}
    assert body["has_data"] is True
    [listed] = body["apps"]
    assert listed["app_id"] == stored.app_id and listed["write_key"] == stored.write_key
    assert listed["snippet"] == (f'<script src="http://testserver/js/sessiontally.js" '
                                 f'data-write-key="{stored.write_key}"></script>')


@pytest.mark.parametrize("path", [
    "/sessions/data_series?length=30&unit=day&ending_at=2025-06-20",
    "/sessions/data_series?length=48&unit=hour&ending_at=2025-06-16T12:00:00Z&time_zone=Asia/Kolkata",
    "/sessions/data_series?length=10&unit=day&app_id={app_id}&ending_at=2025-06-20",
    *(f"/kpi/{name}/data_series?length=20&ending_at=2025-06-20" for name in KPIS),
    "/events/list",
    "/events/data_series?event=Signed%20up&length=5&unit=day&ending_at=2025-06-20",
    "/sessions/data_series?length=101",  # the API's own refusals too
    "/sessions/data_series?app_id=nope",
    "/kpi/dau/data_series?unit=hour",
])
def test_the_data_endpoints_answer_as_the_api(app, tenant, path) -> None:  # type: ignore[no-untyped-def]
    path = path.format(app_id=tenant["app"].app_id)
    web = client(app)
    sign_in(web)
    mine = web.get("/dashboard/api" + path)
    api = client(app).get(path, headers={"Authorization": f"Bearer {tenant['key']}"})
    assert (mine.status_code, mine.json()) == (api.status_code, api.json())
    assert mine.headers["cache-control"] == "no-store"
    assert "x-ratelimit-limit" not in mine.headers  # not counted against the API's limit


def test_a_long_query_string_is_refused(app, tenant) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    sign_in(web)
    assert web.get("/dashboard/api/sessions/data_series?x=" + "a" * 9000).status_code == 414


# ------------------------------------------------------------------ assets


def test_static_assets_are_served_with_etags(app) -> None:  # type: ignore[no-untyped-def]
    from sessiontally.api import assets

    web = client(app)
    assert "dashboard.js" in assets.ASSETS and "vendor/uplot/uPlot.iife.min.js" in assets.ASSETS
    for name, asset in assets.ASSETS.items():
        response = web.get(f"/dashboard/static/{name}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200 and response.content == asset.body
        assert response.headers["content-encoding"] == "gzip"
        again = web.get(f"/dashboard/static/{name}",
                        headers={"Accept-Encoding": "gzip", "If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    for missing in ("nope.js", "../pages.py", "..%2Fpages.py", "vendor", ""):
        assert web.get(f"/dashboard/static/{missing}").status_code == 404


def test_the_page_stays_under_200_kb_gzipped() -> None:
    from sessiontally.api import assets, pages

    html = len(pages.template("dashboard.html").encode())
    assert assets.page_weight() + html < 200_000


# ------------------------------------------------------------------ hostile input


CONTENT_TYPES = ["application/x-www-form-urlencoded", "text/plain", "", "multipart/form-data"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=600), cookie=st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                                     max_size=120),
       query=st.text(max_size=200), content_type=st.sampled_from(CONTENT_TYPES))
def test_no_input_gets_a_5xx(app, tenant, body, cookie, query, content_type) -> None:  # type: ignore[no-untyped-def]
    web = client(app)
    web.get("/sign-in")
    headers = {"Content-Type": content_type} if content_type else {}
    raw_cookie = {"Cookie": f"{pages.SESSION_COOKIE}={cookie}"}
    for path in ("/sign-in", "/sign-out"):
        response = web.post(path, content=body, headers=headers)
        assert response.status_code in (303, 400, 401, 403, 429), (path, response.status_code)
        assert "Traceback" not in response.text
    query_string = quote(query, safe="=&")
    for path in ("/", "/dashboard/context.json", f"/dashboard/api/sessions/data_series?{query_string}",
                 f"/dashboard/api/kpi/dau/data_series?{query_string}"):
        response = client(app).get(path, headers=raw_cookie)
        assert response.status_code in (303, 401), (path, response.status_code)
