"""The hostile suites' summary: how many fuzz cases, bad inputs, crashes and storms ran."""

from __future__ import annotations

import pytest
from hostile_support import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("hostile conditions: what ran")
    for name, count in sorted(TALLY.items()):
        terminalreporter.write_line(f"{name}: {count}")
