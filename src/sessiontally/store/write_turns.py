"""Writers in several processes take turns on one SQLite database.

SQLite's own answer to a locked database is its busy handler: sleep and retry, with
sleeps growing to 100 ms. A process with batches queued takes the lock again
microseconds after it releases it, so a worker that found the lock taken can sleep
through every release and keep a request waiting for seconds. Here the writers queue on
a lock in a file beside the database (``<database>-writers``), asking for it every 0.1 to
1 ms, behind a turnstile that makes two busy processes alternate: a waiter holds the
turnstile while it waits for the write lock, so the process that has just written
queues behind it.

This only orders the attempts. SQLite's lock (``BEGIN IMMEDIATE``) still decides who
writes, so a process that does not take turns (an older sessiontally, the ``sqlite3`` shell)
is still safe, just not ordered. Where the file cannot be opened or locked (a read-only
folder, a file system without these locks), writers fall back on the busy handler
alone, and say so once in the log.

The locks are Linux's open-file-description locks where there are any: they belong to
this descriptor, so closing another descriptor of the file in this process does not drop
them, and two stores of one process exclude each other. POSIX ``lockf`` elsewhere.
Threads of one process must already be serialized (SqliteConnections' writer lock). A wait
for a turn ends after ``timeout`` seconds with TurnTimeout, as SQLite's busy timeout
would end it: a stopped process never hangs the others for good.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("sessiontally.store")

TURNSTILE, WRITE = 0, 1  # the byte each lock covers
_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_FLOCK = struct.Struct("hhqqi4x")  # Linux's struct flock: type, whence, start, len, pid
_HELD = (errno.EAGAIN, errno.EACCES)  # what a lock held by another description answers
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.0001, 0.001


class TurnTimeout(Exception):
    """No turn within the timeout."""


class WriteTurns:
    def __init__(self, database_path: str, timeout: float) -> None:
        real = os.path.realpath(database_path)  # (one file however the database is reached)
        self.path = f"{real}-writers"
        self.timeout = timeout
        self._fd: int | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _mode_like(real))
        except OSError as exc:
            self._give_up(exc)
            return
        self._fd = fd
        try:
            _same_owner(fd, real)
            if _try(fd, TURNSTILE, fcntl.F_WRLCK):  # the file system takes these locks
                _try(fd, TURNSTILE, fcntl.F_UNLCK)
        except OSError as exc:
            self._give_up(exc)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the write turn of this database among the processes that take turns;
        TurnTimeout when none came within the timeout."""
        fd = self._fd
        if fd is not None:
            try:
                _take_turn(fd, time.monotonic() + self.timeout)
            except OSError as exc:  # (e.g. ENOLCK: the file system stopped taking locks)
                self._give_up(exc)
                fd = None
        try:
            yield
        finally:
            if fd is not None:
                _try(fd, WRITE, fcntl.F_UNLCK)

    def _give_up(self, exc: OSError) -> None:
        log.warning("no write turns (%s: %s): SQLite's busy handler alone orders the writers",
                    self.path, exc.strerror or exc)
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _take_turn(fd: int, deadline: float) -> None:
    _take(fd, TURNSTILE, deadline)
    try:
        _take(fd, WRITE, deadline)
    finally:
        _try(fd, TURNSTILE, fcntl.F_UNLCK)


def _take(fd: int, byte: int, deadline: float) -> None:
    """Lock one byte, asking again after pauses that grow to LONGEST_PAUSE_S (a waiting
    system call could not be given up after a timeout)."""
    pause = FIRST_PAUSE_S
    while not _try(fd, byte, fcntl.F_WRLCK):
        if time.monotonic() >= deadline:
            raise TurnTimeout
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_S)


def _try(fd: int, byte: int, kind: int) -> bool:
    """Lock (F_WRLCK) or unlock (F_UNLCK) one byte of ``fd``'s file without waiting; False
    when another description holds it."""
    try:
        if _OFD_SETLK is not None:
            fcntl.fcntl(fd, _OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, byte, 1, 0))
        else:
            operation = fcntl.LOCK_EX | fcntl.LOCK_NB if kind == fcntl.F_WRLCK else fcntl.LOCK_UN
            fcntl.lockf(fd, operation, 1, byte, os.SEEK_SET)
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        raise
    return True


def _mode_like(database: str) -> int:
    """The database's permission bits (as SQLite gives its -wal and -shm files), else 0644."""
    try:
        return os.stat(database).st_mode & 0o666
    except OSError:
        return 0o644


def _same_owner(fd: int, database: str) -> None:
    """Run as root, give the file the database's owner (as SQLite does for -wal and -shm),
    so that a service running as that owner can open it after root made it."""
    if os.geteuid() != 0:
        return
    try:
        owner = os.stat(database)
    except OSError:
        return
    stat = os.fstat(fd)
    if (stat.st_uid, stat.st_gid) != (owner.st_uid, owner.st_gid):
        os.fchown(fd, owner.st_uid, owner.st_gid)
