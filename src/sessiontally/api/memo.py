"""A bounded memo of answers computed from a raw query string.

Dashboards repeat the same few queries, and parsing one is a visible share of a cached series
request. Short query strings are remembered (512 at most, then the memo starts over);
one that may carry a key never is, so no secret stays in memory past its request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from .. import keys

MEMOISED_QUERY_BYTES = 1024
MEMOISED_QUERIES = 512

V = TypeVar("V")


class QueryMemo(dict[bytes, V]):
    """A dict from raw query string to a value; ``keep`` decides what may be kept."""

    def keep(self, raw: bytes, pairs: Iterable[tuple[str, str]], value: V) -> None:
        if len(raw) <= MEMOISED_QUERY_BYTES and not keys.query_may_hold_key(pairs):
            if len(self) >= MEMOISED_QUERIES:
                self.clear()
            self[raw] = value
