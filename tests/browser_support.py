"""Debian's Chromium for the browser tests, driven by Playwright for Python: the machine's
own binary (never a download), behind a proxy that is not there, so that nothing a page
does leaves the machine (localhost and 127.0.0.1 bypass it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from db_support import free_port

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError as exc:  # a failure, not a skip: CI installs it with the test extras
    raise ImportError("playwright (for Python) is missing: pip install -e '.[test]'") from exc

CHROMIUM = "/usr/bin/chromium"
MISSING = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"


def require_chromium(skip_outside_ci: bool = False) -> None:
    """Fail when Chromium is missing (or, if asked, skip unless CI is set)."""
    if os.access(CHROMIUM, os.X_OK):
        return
    if skip_outside_ci and not os.environ.get("CI"):
        pytest.skip(MISSING)
    pytest.fail(MISSING, pytrace=False)


@contextmanager
def offline_chromium() -> Iterator[Browser]:
    closed_port = free_port("127.0.0.1")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"],
            proxy={"server": f"http://127.0.0.1:{closed_port}", "bypass": "localhost,127.0.0.1"},
        )
        try:
            yield launched
        finally:
            launched.close()
