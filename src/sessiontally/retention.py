"""Retention (issue 20 item 3): per workspace, raw rows (recorded sessions, events, ended
derived sessions) older than its ``retention_days`` are deleted by a bounded job, in
small transactions, without changing any count (``Store.expire_raw_rows``). The same job
deletes the sign-in counts of past windows (``members.purge_sign_in_attempts``). It runs
from ``sessiontally maintenance run`` (cron) and from a thread in each server worker
(``Maintenance``); several at once are harmless. Knows nothing of HTTP."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import members
from .errors import InvalidInput
from .store.base import Store, Workspace

log = logging.getLogger("sessiontally.retention")

DAY_US = 86_400 * 1_000_000
MAX_RETENTION_DAYS = 36_500
INTERVAL_S = 3600.0  # between two runs of a server worker's job
FIRST_RUN_S = (60.0, 600.0)  # a worker's first run, at random in this range (workers spread)


def horizon_us(retention_days: int, now_s: float) -> int:
    """The instant before which raw rows are past a retention of ``retention_days``."""
    return int(now_s * 1_000_000) - retention_days * DAY_US


def set_retention(store: Store, workspace: Workspace, days: int) -> Workspace:
    """Keep the workspace's raw rows ``days`` days (0: forever)."""
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"retention must be 0 (keep forever) to {MAX_RETENTION_DAYS} days")
    store.set_retention(workspace.workspace_id, days or None)
    changed = store.get_workspace(workspace.workspace_id)
    assert changed is not None
    return changed


@dataclass(frozen=True, slots=True)
class Expired:
    workspace_id: int
    retention_days: int
    deleted: dict[str, int]  # rows per table

    def report(self) -> str:
        parts = ", ".join(f"{n} {table}" for table, n in self.deleted.items())
        return f"workspace {self.workspace_id} (retention {self.retention_days} days): deleted {parts}"


def run(store: Store, now_s: float, workspace_id: int | None = None) -> list[Expired]:
    """Apply every workspace's retention (or one workspace's); what was deleted."""
    done = []
    for found, days in store.retention_workspaces():
        if workspace_id is None or found == workspace_id:
            deleted = store.expire_raw_rows(found, horizon_us(days, now_s))
            done.append(Expired(found, days, deleted))
    return done


class Maintenance:
    """The retention job (and the purge of past sign-in windows) in a background thread:
    a first run at a random moment (so that the workers of a server do not all start
    together), then every ``interval_s``."""

    def __init__(self, store: Store, clock: Callable[[], float], interval_s: float = INTERVAL_S) -> None:
        self.store, self.clock, self.interval_s = store, clock, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        wait = random.uniform(*FIRST_RUN_S)
        while not self._stop.wait(wait):
            wait = self.interval_s
            try:
                now = self.clock()
                purged = members.purge_sign_in_attempts(self.store, now)
                if purged:
                    log.info("retention: deleted %d sign-in counts of past windows", purged)
                for expired in run(self.store, now):
                    if any(expired.deleted.values()):
                        log.info("retention: %s", expired.report())
            except Exception as exc:  # e.g. the store is down: the next run tries again
                log.warning("retention run failed: %s", type(exc).__name__)
