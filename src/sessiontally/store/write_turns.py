"""Writers in several processes take turns on one SQLite database.

SQLite's own answer to a locked database is its busy handler: sleep and retry, with
sleeps growing to 100 ms. A process with batches queued takes the lock again
microseconds after it releases it, so a worker that found the lock taken could sleep
through every release: with 2 workers and 4 clients, POSTs waited up to 6.6 s while
the median stayed near 0.1 s (bench/RESULTS.md). Here the writers wait in the kernel on
a lock in a file beside the database (``<database>-writers``), which wakes a waiter the
moment the lock is released. A turnstile before that lock makes two processes
alternate: a waiter holds the turnstile while it waits, so the process that has just
written queues behind it.

This only orders the attempts. SQLite's lock (``BEGIN IMMEDIATE``) still decides who
writes, so a process that does not take turns (an older version, the ``sqlite3`` shell)
is still safe, just not ordered. And when the file cannot be opened (a read-only
folder), writers fall back on the busy handler alone.

The locks are Linux's open-file-description locks where there are any (they belong to
this descriptor, so closing another descriptor of the file in this process does not drop
them, and two stores of one process exclude each other); POSIX ``lockf`` elsewhere.
Threads of one process must already be serialized (SqliteStore's writer lock).
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress

TURNSTILE, WRITE = 0, 1  # the byte each lock covers
_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", None)
_FLOCK = struct.Struct("hhqqi4x")  # Linux's struct flock: type, whence, start, len, pid


class WriteTurns:
    def __init__(self, database_path: str) -> None:
        self.path = f"{database_path}-writers"
        self._fd: int | None = None
        with suppress(OSError):  # if not, no turns: SQLite's busy handler alone orders writers
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the write turn of this database among the processes that take turns."""
        fd = self._fd
        if fd is None:
            yield
            return
        _lock(fd, TURNSTILE, fcntl.F_WRLCK)
        try:
            _lock(fd, WRITE, fcntl.F_WRLCK)
        finally:
            _lock(fd, TURNSTILE, fcntl.F_UNLCK)
        try:
            yield
        finally:
            _lock(fd, WRITE, fcntl.F_UNLCK)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _lock(fd: int, byte: int, kind: int) -> None:
    """Lock (F_WRLCK, waiting for it) or unlock (F_UNLCK) one byte of ``fd``'s file."""
    if _OFD_SETLKW is not None:
        fcntl.fcntl(fd, _OFD_SETLKW, _FLOCK.pack(kind, os.SEEK_SET, byte, 1, 0))
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX if kind == fcntl.F_WRLCK else fcntl.LOCK_UN, 1, byte, os.SEEK_SET)
