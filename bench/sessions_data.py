"""New sessions as real traffic sends them, for the ingest benchmarks.

- ``session_id``: 24 random hex digits (uniformly random keys: every insert lands at a
  random place of the B-tree, the worst case and the usual one for client-made ids);
- ``external_id``: ``user<n>``, ``n`` uniform in ``[0, 100000)``;
- ``app_id``: uniform over the workspace's apps;
- ``started_at``: uniform over the 3 days before ``now``, as ISO-8601 with milliseconds
  and ``Z`` (e.g. ``2025-06-01T12:34:56.789Z``); no ``ended_at``.

The same seed gives the same sessions, as NDJSON lines (for HTTP and ``import``) and as
rows of the ``sessions`` table (for the bare ``executemany``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

CHUNK = 1_000_000


@dataclass
class SessionData:
    app_ids: Sequence[str]
    app_keys: Sequence[int]
    count: int
    seed: int = 7
    now_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    users: int = 100_000
    days: int = 3

    def _chunks(self) -> Iterator[tuple[list[int], list[int], list[int], list[int], np.ndarray]]:
        for c, start in enumerate(range(0, self.count, CHUNK)):
            n = min(CHUNK, self.count - start)
            rng = np.random.default_rng([self.seed, c])
            hi = rng.integers(0, 2**63, n, dtype=np.int64).tolist()
            lo = rng.integers(0, 2**32, n, dtype=np.int64).tolist()
            user = rng.integers(0, self.users, n).tolist()
            app = rng.integers(0, len(self.app_ids), n).tolist()
            started_ms = self.now_ms - rng.integers(1, self.days * 86_400_000, n, dtype=np.int64)
            yield hi, lo, user, app, started_ms

    def lines(self) -> Iterator[bytes]:
        apps = list(self.app_ids)
        for hi, lo, user, app, started_ms in self._chunks():
            iso = np.datetime_as_string(started_ms.astype("datetime64[ms]"), unit="ms").tolist()
            for h, l_, u, a, s in zip(hi, lo, user, app, iso, strict=True):
                yield (f'{{"session_id":"{h:016x}{l_:08x}","external_id":"user{u}",'
                       f'"app_id":"{apps[a]}","started_at":"{s}Z"}}\n').encode()

    def rows(self, workspace_id: int) -> Iterator[tuple[int, str, str, int, int, None]]:
        """``(workspace_id, session_id, external_id, app_key, started_at µs, ended_at)``."""
        keys = list(self.app_keys)
        for hi, lo, user, app, started_ms in self._chunks():
            started_us = (started_ms * 1000).tolist()
            for h, l_, u, a, s in zip(hi, lo, user, app, started_us, strict=True):
                yield (workspace_id, f"{h:016x}{l_:08x}", f"user{u}", keys[a], s, None)

    def write_ndjson(self, path: str) -> None:
        with open(path, "wb", buffering=1 << 20) as out:
            batch: list[bytes] = []
            for line in self.lines():
                batch.append(line)
                if len(batch) >= 100_000:
                    out.write(b"".join(batch))
                    batch = []
            out.write(b"".join(batch))
