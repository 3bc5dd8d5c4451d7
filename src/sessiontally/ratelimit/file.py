"""Rate-limit counters in a small file beside the embedded store, shared by every process
on the machine: a locked read-increment-write of one slot per request, kept apart from the
store's own file so that a long ingest transaction never delays a rate-limit check."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from pathlib import Path

from ..errors import RateLimiterUnavailable
from .base import RateDecision, decide, window_of

RATE_COUNTERS_SUFFIX = "-ratecounters"  # the counter file's name: the store's file + this


class FileRateLimiter:
    """Counters in a small file shared by all processes on one machine.

    One 32-byte slot per workspace at offset ``workspace_id * 32``: the two latest windows
    and their hit counts (a request that read the clock just before the hour, and reaches
    the file just after another request opened the new window, still counts in its own
    hour). A hit takes a POSIX byte-range lock on its slot, reads, increments and writes
    it in the file's shared memory map: exact across processes, two system calls, and a
    waiter is woken by the kernel the moment the lock is released (no polling with sleeps
    under contention). No fsync: a count lost in a machine
    crash only lets a few more requests through.

    POSIX locks belong to a process, and closing *any* descriptor of the file drops all of
    them (an mmap holds its own descriptor): so threads of one process take a thread lock
    too, and the map is grown and replaced only while no slot lock is held.
    """

    SLOT = struct.Struct("<qqqq")  # window_a, hits_a, window_b, hits_b
    never_blocks = True  # a slot is locked for two system calls: fine on an event loop
    dependency = "counter_file"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._map: mmap.mmap | None = None
        self._allocated: set[int] = set()  # slot offsets with a disk block
        self._thread_lock = threading.Lock()

    def _mapped(self, fd: int, end: int) -> mmap.mmap:
        """The file mapped at least up to ``end``, grown (by any process) if needed. Call
        with no slot locked: replacing the map closes a descriptor (see above)."""
        if self._map is not None and len(self._map) >= end:
            return self._map
        if os.fstat(fd).st_size < end:
            # Grown under the lock of slot 0 (no workspace has id 0), so that two processes
            # growing it at once never shrink it. Sparse: workspace ids can be large, and
            # only the slots in use get disk blocks (hit() allocates them).
            fcntl.lockf(fd, fcntl.LOCK_EX, self.SLOT.size, 0, os.SEEK_SET)
            try:
                size = os.fstat(fd).st_size
                if size < end:
                    os.ftruncate(fd, max(end, 2 * size, 4096))
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, self.SLOT.size, 0, os.SEEK_SET)
        if self._map is not None:
            self._map.close()
            self._map = None
        self._map = mmap.mmap(fd, os.fstat(fd).st_size)
        return self._map

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        window = window_of(now)
        size = self.SLOT.size
        offset = workspace_id * size
        with self._thread_lock:
            fd = self._fd
            if fd is None:
                raise RateLimiterUnavailable("closed")
            try:
                if offset not in self._allocated:
                    # The slot's disk block, allocated now: with the disk full this is an
                    # error (a 503), not a SIGBUS on the first write to the map.
                    os.posix_fallocate(fd, offset, size)
                    self._allocated.add(offset)
                slots = self._mapped(fd, offset + size)
                fcntl.lockf(fd, fcntl.LOCK_EX, size, offset, os.SEEK_SET)
            except OSError as exc:  # e.g. the disk is full: refuse (503), do not serve unlimited
                raise RateLimiterUnavailable(type(exc).__name__) from None
            try:
                hits = self._count(slots, offset, window)
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, size, offset, os.SEEK_SET)
        return decide(hits, limit, window)

    def _count(self, slots: mmap.mmap, offset: int, window: int) -> int:
        """Add one hit to ``window`` in the slot at ``offset``; its count so far."""
        window_a, hits_a, window_b, hits_b = self.SLOT.unpack_from(slots, offset)
        hits: int
        if window == window_a:
            hits_a += 1
            hits = hits_a
        elif window == window_b:
            hits_b += 1
            hits = hits_b
        elif window > min(window_a, window_b):  # a new hour: it replaces the older window
            if window_a <= window_b:
                window_a, hits_a = window, 1
            else:
                window_b, hits_b = window, 1
            hits = 1
        else:  # older than both windows kept: only a request stalled for over an hour
            return 1
        self.SLOT.pack_into(slots, offset, window_a, hits_a, window_b, hits_b)
        return hits

    def ping(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        with self._thread_lock:
            if self._map is not None:
                self._map.close()
                self._map = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

