"""Group commit: concurrent writers of one process share a transaction.

Each writer queues its work; whoever holds the leader lock runs every queued piece of
work in one transaction and commits once. Everyone gets their result only after that
commit, so an acknowledgement still means durable. Under concurrency this turns N
commits (N fsyncs, N rewrites of the pages the batches share) into one; alone, a writer
just runs its own transaction.

A piece of work that fails must not undo the others. Pieces do not run in savepoints
(SQLite copies every page a savepoint changes to its journal first: that doubled the
cost of inserting a batch, bench/RESULTS.md); instead, when one fails, the transaction
is rolled back and the group runs again without it. Work is therefore run again after
a rollback: it must depend only on the database (as recording a batch does).
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
    def __init__(self, transaction: Callable[[], AbstractContextManager[Conn]]) -> None:
        self._transaction = transaction
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
        failed: _Job | None = None
        try:
            with self._transaction() as conn:
                for job in group:
                    try:
                        job.result = job.work(conn)
                    except Exception as exc:  # this job's failure is its own
                        job.error, failed = exc, job
                        raise
        except Exception as exc:
            for job in group:
                job.result = None
            if failed is not None and len(group) > 1:
                # Rolled back: the others run again, in a transaction of their own.
                self._commit([job for job in group if job is not failed])
            elif failed is None:  # BEGIN or COMMIT failed: nothing of the group is durable
                for job in group:
                    job.error = exc
        except BaseException as exc:  # e.g. KeyboardInterrupt: no one's work is durable
            for job in group:
                job.error, job.result = exc, None
            raise
        finally:
            for job in group:
                job.done = True
