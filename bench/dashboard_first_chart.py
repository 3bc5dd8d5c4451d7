"""How soon the dashboard draws its first chart, in real Chromium, at 10^4 ... 10^7 stored
sessions (issue 19: within 300 ms of navigation on localhost at 10^7), and the page's weight.

    python bench/dashboard_first_chart.py [--sizes 10000 10000000] [--repeats 30]

For each size: a fresh SQLite database of N sessions ending now over 100 days, built by
the bulk loader (``series_database``: it fills ``sessions``, ``session_counts`` and
``session_counts_coarse``; the KPI tables ``kpi_counts``/``person_days`` and the event
tables stay empty), one member added to its workspace, and a real ``sessiontally serve``
(1 worker, as shipped). Debian's Chromium (headless, driven by Playwright, never a
download) signs in once through the form; the session cookie is then reused, so the
navigations measured go straight to ``/`` and no argon2 hash is counted.

Each navigation is measured from its start (the Navigation Timing origin, 0 ms):

- ``first chart``: ``performance.getEntriesByName("sessiontally:first-chart")[0].startTime``,
  the mark dashboard.js sets once the first card's chart is drawn with data;
- ``all charts``: the ``performance.now()`` of a MutationObserver (a Playwright init
  script, which the page's CSP does not apply to) when ``html[data-charts]`` first turns
  ``ready``; the observer runs as a microtask of the change, so this is exact to a few µs;
- ``DOMContentLoaded``: ``domContentLoadedEventEnd``, the page without its data (the
  baseline, in the same run).

Two cache states, each ``--repeats`` navigations: ``cold``, a new browser context each
time (its own empty HTTP cache and connection pool) with the cookie copied in; ``warm``,
one page per size reloaded (the assets come from its cache or are revalidated: their
Resource Timing ``transferSize`` says which). Every size is built first and served at
once, by one server each, and each round measures every size and state in turn (the
order of the sizes reversed every other round), so the shared machine's load falls on
all alike. The Resource Timing entries also give where the time
goes: the HTML, the scripts, ``context.json`` and the first series request.

The page weight: each file the page loads, gzipped as served (``assets.ASSETS``), and the
HTML as rendered from its template, gzipped at level 9 for comparison.
"""

from __future__ import annotations

import argparse
import gzip
import sqlite3
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from common import load_average, log, machine, percentile, remove_database, series_database, server

from sessiontally import admin, members
from sessiontally.api import assets, pages
from sessiontally.store import open_store

CHROMIUM = "/usr/bin/chromium"
EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple 19"
PAGE_ASSETS = ["vendor/uplot/uPlot.min.css", "dashboard.css", "vendor/uplot/uPlot.iife.min.js",
               "dashboard.js"]

# Runs before the page's own scripts in every document of the context (when the <html>
# element may not exist yet: so it observes the document's subtree).
READY_OBSERVER = """
(() => {
  window.__benchChartsReady = null;
  new MutationObserver(() => {
    if (window.__benchChartsReady === null && document.documentElement.dataset.charts === 'ready') {
      window.__benchChartsReady = performance.now();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-charts'] });
})();
"""

# What one navigation measured, read from the page once every chart is done.
READ_TIMINGS = """
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const mark = performance.getEntriesByName('sessiontally:first-chart')[0];
  const pick = (r) => ({ name: r.name, start: r.startTime, requestStart: r.requestStart,
    responseStart: r.responseStart, end: r.responseEnd, transfer: r.transferSize,
    encoded: r.encodedBodySize });
  return {
    first: mark ? mark.startTime : null,
    ready: window.__benchChartsReady,
    dcl: nav.domContentLoadedEventEnd,
    interactive: nav.domInteractive,
    html: pick(nav),
    resources: performance.getEntriesByType('resource').map(pick),
  };
}
"""


def build(database: str, size: int) -> None:
    """The database of ``size`` sessions and a member of its (only) workspace."""
    began = time.perf_counter()
    series_database(database, size)
    conn = sqlite3.connect(database)
    (name,) = conn.execute("SELECT name FROM workspaces").fetchone()
    conn.close()
    store = open_store(database)
    try:
        members.add_member(store, admin.resolve_workspace(store, name), EMAIL, PASSWORD)
    finally:
        store.close()
    log(f"built {size:,} sessions in {time.perf_counter() - began:.0f} s"
        f" ({Path(database).stat().st_size / 2**20:,.0f} MiB)")


def sign_in(browser: Any, base: str) -> list[Any]:
    """Sign in through the form once; returns the context's cookies."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/sign-in")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    cookies = context.cookies()
    assert any(c["name"] == pages.SESSION_COOKIE for c in cookies), cookies
    context.close()
    return cookies


def settle(page: Any) -> dict[str, Any]:
    page.wait_for_selector("html[data-first-chart=drawn]", state="attached", timeout=60_000)
    page.wait_for_selector("html[data-charts=ready]", state="attached", timeout=60_000)
    timings: dict[str, Any] = page.evaluate(READ_TIMINGS)
    assert timings["first"] is not None and timings["ready"] is not None, timings
    return timings


def cold(browser: Any, base: str, cookies: list[Any]) -> dict[str, Any]:
    """One navigation in a new context: empty HTTP cache, no open connection."""
    context = browser.new_context()
    context.add_cookies(cookies)
    context.add_init_script(READY_OBSERVER)
    page = context.new_page()
    page.goto(f"{base}/")
    timings = settle(page)
    context.close()
    return timings


def warm_page(browser: Any, base: str, cookies: list[Any]) -> Any:
    """A page that has loaded the dashboard once (its cache filled; not counted)."""
    context = browser.new_context()
    context.add_cookies(cookies)
    context.add_init_script(READY_OBSERVER)
    page = context.new_page()
    page.goto(f"{base}/")
    settle(page)
    return page


def warm(page: Any) -> dict[str, Any]:
    page.reload()
    return settle(page)


def breakdown(run: dict[str, Any]) -> dict[str, float]:
    """Milestones of one navigation (ms from its start), from the Resource Timing entries."""
    def first(part: str) -> dict[str, Any]:
        return next(r for r in run["resources"] if part in r["name"])

    series = [r for r in run["resources"] if "/dashboard/api/sessions/data_series" in r["name"]]
    return {
        "HTML response end": run["html"]["end"],
        "uPlot JS response end": first("uPlot.iife.min.js")["end"],
        "dashboard.js response end": first("dashboard.js")["end"],
        "DOM interactive": run["interactive"],
        "first series request start": series[0]["start"],
        "first series response end": series[0]["end"],
        "context.json start": first("context.json")["start"],
        "context.json response end": first("context.json")["end"],
        "first chart mark": run["first"],
        "DOMContentLoaded end": run["dcl"],
        "all charts ready": run["ready"],
        "series requests before ready": len(series),
    }


def asset_transfer(runs: list[dict[str, Any]]) -> str:
    """How the warm reloads got the assets: median transferSize of the four files."""
    sizes = [sum(r["transfer"] for r in run["resources"] if "/dashboard/static/" in r["name"])
             for run in runs]
    return f"{statistics.median(sizes):,.0f} B"


def page_weight() -> tuple[list[tuple[str, int, int]], int]:
    """(name, raw bytes, gzipped bytes) of the HTML and each asset the page loads; the total."""
    html = pages.render("dashboard.html", {
        "workspace_name": "bench-0123abcd", "member_email": EMAIL,
        "csrf_token": "x" * 43, "asset_version": assets.ASSET_VERSION,
    }).encode()
    rows = [("dashboard.html (rendered; served uncompressed)", len(html),
             len(gzip.compress(html, 9, mtime=0)))]
    rows += [(name, len(assets.ASSETS[name].body), len(assets.ASSETS[name].gzipped)) for name in PAGE_ASSETS]
    return rows, sum(g for _, _, g in rows)


def ms(values: list[float]) -> str:
    return (f"{percentile(values, 0.5):,.0f} / {percentile(values, 0.9):,.0f} /"
            f" {max(values):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}; load average {load_average()}", flush=True)
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="sessiontally-dashboard-", dir=args.workdir) as tmp, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        print(f"chromium: {browser.version}", flush=True)
        databases = {size: str(Path(tmp) / f"dashboard-{size}.sqlite3") for size in args.sizes}
        try:
            for size, database in databases.items():
                build(database, size)
            with ExitStack() as stack:
                # Every size is served at once and measured in turn within each round (the
                # order reversed every other round), so the machine's load falls on all alike.
                bases = {size: stack.enter_context(server(database)).base
                         for size, database in databases.items()}
                cookies = {size: sign_in(browser, base) for size, base in bases.items()}
                pages_ = {size: warm_page(browser, base, cookies[size]) for size, base in bases.items()}
                for size in args.sizes:
                    results[size, "cold"], results[size, "warm"] = [], []
                for round_ in range(args.repeats):
                    for size in args.sizes if round_ % 2 == 0 else reversed(args.sizes):
                        results[size, "cold"].append(cold(browser, bases[size], cookies[size]))
                        results[size, "warm"].append(warm(pages_[size]))
                for page in pages_.values():
                    page.context.close()
        finally:
            for database in databases.values():
                remove_database(database)
        results = {key: results[key] for key in sorted(results)}
        for (size, state), runs in results.items():
            log(f"{size:,} {state}: first chart p50 {percentile([r['first'] for r in runs], 0.5):.0f} ms")
        browser.close()
    print(f"load average at the end: {load_average()}")
    print("\n| stored sessions | cache | first chart (ms) p50 / p90 / max | all charts ready"
          " | DOMContentLoaded | first chart − DOMContentLoaded, p50 |\n|---|---|---|---|---|---|")
    for (size, state), runs in results.items():
        first = [r["first"] for r in runs]
        dcl = [r["dcl"] for r in runs]
        print(f"| {size:,} | {state} | {ms(first)} | {ms([r['ready'] for r in runs])} | {ms(dcl)} |"
              f" {percentile([f - d for f, d in zip(first, dcl, strict=True)], 0.5):,.0f} |")
    sizes = sorted({size for size, _ in results})
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        print(f"\n| cache | {high:,} / {low:,}, p50: first chart | all charts ready | DOMContentLoaded |"
              "\n|---|---|---|---|")
        for state in ("cold", "warm"):
            cells = []
            for field in ("first", "ready", "dcl"):
                a = percentile([r[field] for r in results[high, state]], 0.5)
                b = percentile([r[field] for r in results[low, state]], 0.5)
                cells.append(f"{a / b:.2f}x")
            print(f"| {state} | {' | '.join(cells)} |")

    print("\nWhere the time goes (p50 over the navigations, ms from the navigation's start):\n")
    keys = list(breakdown(next(iter(results.values()))[0]))
    print("| milestone | " + " | ".join(f"{size:,} {state}" for size, state in results) + " |")
    print("|---|" + "---|" * len(results))
    for key in keys:
        cells = [statistics.median(breakdown(run)[key] for run in runs) for runs in results.values()]
        print(f"| {key} | " + " | ".join(f"{c:,.1f}" if key != "series requests before ready" else f"{c:.0f}"
                                           for c in cells) + " |")
    print("\nwarm reloads, bytes transferred for the four assets (median): "
          + ", ".join(f"{size:,}: {asset_transfer(results[size, 'warm'])}" for size in sizes))

    rows, total = page_weight()
    print("\n| file | bytes | gzipped |\n|---|---|---|")
    for name, raw, packed in rows:
        print(f"| {name} | {raw:,} | {packed:,} |")
    print(f"| **total** | {sum(r for _, r, _ in rows):,} | **{total:,}** ({total / 1024:.1f} KiB) |")
    print(f"\nassets.page_weight() (every file under static/dashboard, LICENSE and VERSION"
          f" included): {assets.page_weight():,} bytes")


if __name__ == "__main__":
    main()
