"""Screenshots of the dashboard for the docs (docs/screenshots/*.png).

    export PYTHONPATH=$PWD/src        # from the repository's root
    python scripts/dashboard_screenshots.py [--out docs/screenshots] [--days 120] [--users 5000]

Makes the demo database in a temporary folder (``python -m sessiontally demo``, which
prints the demo member's e-mail and password), starts ``sessiontally serve`` on a free
port of 127.0.0.1 (its own process group, stopped at the end), signs in with headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; no browser is downloaded
and the browser's proxy is a closed local port, so nothing leaves the machine) and saves:

- ``sign-in.png``: the sign-in form;
- ``dashboard.png``: the default view (last 30 days, all apps) at 1280 wide, the whole page;
- ``dashboard-hourly.png``: the "Paying users" segment by hour in Europe/Berlin, the top
  of the page;
- ``dashboard-table.png``: the DAU card with its table open;
- ``dashboard-phone.png``: the top of the page at 375 wide.

The demo's data ends when the script runs, so the pictures change with the day they are
made. The dashboard's own ``html[data-charts=ready]`` says when a view is drawn (the
page's Content-Security-Policy forbids eval, so waits use selectors). Each PNG is checked
to stay under 400 KB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
READY = "html[data-charts=ready]"
MAX_BYTES = 400_000
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_demo(database: str, days: int, users: int) -> tuple[str, str]:
    """Run ``sessiontally demo``; return the member's e-mail and password it printed."""
    env = dict(os.environ, SESSIONTALLY_DATABASE=database)
    done = subprocess.run([sys.executable, "-m", "sessiontally", "demo", "--days", str(days),
                           "--users", str(users)], env=env, capture_output=True, text=True, check=True)
    email = re.search(r"^#\s+e-mail:\s+(\S+)", done.stdout, re.M)
    password = re.search(r"^#\s+password:\s+(\S+)", done.stdout, re.M)
    if not email or not password:
        raise SystemExit(f"no e-mail and password in the demo's output:\n{done.stdout}")
    return email.group(1), password.group(1)


@contextlib.contextmanager
def serving(database: str, log: Path) -> Iterator[str]:
    """``sessiontally serve`` on ``database`` (its access log in ``log``); yields its URL."""
    port = free_port()
    env = dict(os.environ, SESSIONTALLY_DATABASE=database)
    with open(log, "wb") as err:
        server = subprocess.Popen([sys.executable, "-m", "sessiontally", "serve", "--host", "127.0.0.1",
                                   "--port", str(port), "--workers", "1"], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def shoot(base: str, email: str, password: str, out: Path) -> list[Path]:
    from playwright.sync_api import Page, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def settle(page: Page) -> None:
        page.wait_for_selector(READY, state="attached", timeout=60_000)
        page.wait_for_timeout(300)  # let the charts finish their first paint

    def change(page: Page, action) -> None:  # type: ignore[no-untyped-def]
        page.evaluate("document.documentElement.dataset.charts = 'changing'")
        action()
        settle(page)

    def save(page: Page, name: str, **options) -> None:  # type: ignore[no-untyped-def]
        path = out / name
        page.screenshot(path=str(path), **options)
        saved.append(path)

    def signed_in(page: Page) -> None:
        page.goto(base + "/sign-in")
        page.fill("#email", email)
        page.fill("#password", password)
        with page.expect_navigation():
            page.click("button[type=submit]")
        settle(page)
        page.wait_for_selector("#app-list article", state="attached")

    closed = free_port()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"],
            proxy={"server": f"http://127.0.0.1:{closed}", "bypass": "localhost,127.0.0.1"})
        desk = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light",
                                   device_scale_factor=1)
        page = desk.new_page()
        page.goto(base + "/sign-in")
        page.fill("#email", email)
        box = page.locator("main.signin").bounding_box()
        assert box is not None
        top = max(0, box["y"] - 40)
        save(page, "sign-in.png", clip={"x": 0, "y": top, "width": 1280,
                                        "height": min(900 - top, box["height"] + 80)})
        page.fill("#email", "")
        signed_in(page)
        save(page, "dashboard.png", full_page=True)

        # a segment, by hour, in another zone (the pickers, as a person would use them)
        segment = page.locator("#pick-segment option", has_text="Paying users").get_attribute("value")
        change(page, lambda: page.select_option("#pick-segment", segment))
        change(page, lambda: page.select_option("#pick-unit", "hour"))
        change(page, lambda: (page.fill("#pick-zone", "Europe/Berlin"), page.press("#pick-zone", "Enter")))
        page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
        save(page, "dashboard-hourly.png", clip={"x": 0, "y": 0, "width": 1280, "height": 900})

        # the DAU card with its table open
        change(page, lambda: page.goto(base + "/?unit=day&range=7"))
        card = page.locator('[data-chart="dau"]')
        card.get_by_role("button", name="Table").click()
        card.locator("table.data-table").wait_for(state="visible")
        card.scroll_into_view_if_needed()
        card.screenshot(path=str(out / "dashboard-table.png"))
        saved.append(out / "dashboard-table.png")
        desk.close()

        phone = browser.new_context(viewport={"width": 375, "height": 812}, color_scheme="light",
                                    device_scale_factor=1, is_mobile=True, has_touch=True)
        page = phone.new_page()
        signed_in(page)
        save(page, "dashboard-phone.png", clip={"x": 0, "y": 0, "width": 375, "height": 1500},
             full_page=True)
        phone.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--users", type=int, default=5000)
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="sessiontally-shots-") as folder:
        database = str(Path(folder) / "demo.sqlite3")
        email, password = make_demo(database, args.days, args.users)
        with serving(database, Path(folder) / "server.log") as base:
            saved = shoot(base, email, password, args.out)
    too_big = []
    for path in saved:
        size = path.stat().st_size
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {size:,} bytes")
        if size > MAX_BYTES:
            too_big.append(path.name)
    if too_big:
        raise SystemExit(f"over {MAX_BYTES:,} bytes: {', '.join(too_big)}")


if __name__ == "__main__":
    main()
