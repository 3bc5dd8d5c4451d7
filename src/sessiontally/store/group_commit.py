"""Group commit: concurrent writers of one process share a transaction.

Each writer queues its work; whoever holds the leader lock runs every queued piece of
work in one transaction and commits once. Everyone gets their result only after that
commit, so an acknowledgement still means durable. Under concurrency this turns N
commits (N fsyncs, N rewrites of the pages the batches share) into one; alone, a writer
just runs its own transaction.

A piece of work that fails must not undo the others. Pieces first run without
savepoints (SQLite copies every page a savepoint changes to its journal first, which
makes inserting a batch far slower). When one fails, that transaction is rolled back and
the group runs once more, each piece in its own savepoint, so the failing piece (or
pieces) is undone alone: at most two transactions, whatever fails. Work may therefore
run twice: it must depend only on the database (as recording a batch does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

Conn = TypeVar("Conn")
MAX_GROUP = 64  # pieces of work per transaction, to bound how long one commit holds the lock


class _Job:
    __slots__ = ("work", "result", "error", "done")

    def __init__(self, work: Callable[[Any], Any]) -> None:
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[Conn]):
    def __init__(self, transaction: Callable[[], AbstractContextManager[Conn]],
                 savepoint: Callable[[Conn, str], object]) -> None:
        self._transaction = transaction
        self._savepoint = savepoint  # runs "SAVEPOINT job" / "RELEASE job" / "ROLLBACK TO job"
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def run(self, work: Callable[[Conn], Any]) -> Any:
        job = _Job(work)
        with self._queue_lock:
            self._queue.append(job)
        while not job.done:
            with self._leader:
                if job.done:
                    break
                with self._queue_lock:
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._commit(group)
        if job.error is not None:
            raise job.error
        return job.result

    def _commit(self, group: list[_Job]) -> None:
        try:
            if not self._attempt(group, isolated=False) and len(group) > 1:
                for job in group:
                    job.result, job.error = None, None
                self._attempt(group, isolated=True)
        finally:
            for job in group:
                job.done = True

    def _attempt(self, group: list[_Job], isolated: bool) -> bool:
        """Run the group in one transaction, each piece in a savepoint when ``isolated``.
        False when a piece failed outside a savepoint (then everything is rolled back; that
        piece holds its error)."""
        try:
            with self._transaction() as conn:
                for job in group:
                    if isolated:
                        self._savepoint(conn, "SAVEPOINT job")
                    try:
                        job.result = job.work(conn)
                    except Exception as exc:  # this job's failure is its own
                        job.error, job.result = exc, None
                        if not isolated:
                            raise _PieceFailed from None
                        self._savepoint(conn, "ROLLBACK TO job")
                    if isolated:
                        self._savepoint(conn, "RELEASE job")
        except _PieceFailed:
            return False
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group is durable
            for job in group:
                if job.error is None:
                    job.error = exc
                job.result = None
        return True


class _PieceFailed(Exception):
    """A piece failed outside a savepoint: its transaction must be rolled back whole."""
