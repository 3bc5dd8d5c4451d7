"""Group commit: concurrent writers of one process share a transaction.

Each writer queues its work; whoever holds the leader lock runs every queued piece of
work in one transaction (a savepoint each, so one failing piece does not undo the
others) and commits once. Everyone gets their result only after that commit, so an
acknowledgement still means durable. Under concurrency this turns N commits (N fsyncs,
N rewrites of the pages the batches share) into one; alone, a writer just runs its own
transaction.
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
                 savepoint: Callable[[Conn, str], None]) -> None:
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
            with self._transaction() as conn:
                for job in group:
                    self._savepoint(conn, "SAVEPOINT job")
                    try:
                        job.result = job.work(conn)
                    except Exception as exc:  # this job's failure is its own
                        self._savepoint(conn, "ROLLBACK TO job")
                        job.error = exc
                    self._savepoint(conn, "RELEASE job")
        except BaseException as exc:  # the commit itself failed: nothing of the group is durable
            for job in group:
                if job.error is None:
                    job.error = exc
                    job.result = None
        finally:
            for job in group:
                job.done = True
