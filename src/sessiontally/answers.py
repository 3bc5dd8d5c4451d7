"""Answers the service keeps while the stored data are unchanged.

Dashboards repeat the same few requests, and an answer (an admitted key, a serialised
series) costs far more to rebuild than to look up. Each thread keeps its own answers under
the store's change token (``Store.change_token``): the token stays the same object only
while nothing has been committed, so a new one drops everything kept under the old (an
engine may also hand out a new token early, which only costs recomputation). An engine
that gives no token gets nothing kept.
"""

from __future__ import annotations

import threading
from typing import Any

from .config import READ_CACHE


class AnswerCache:
    """Per-thread answers, valid while the store's change token is the same object."""

    def __init__(self, max_entries: int = READ_CACHE.default) -> None:
        self.max_entries = max_entries
        self._local = threading.local()

    def under(self, token: object | None) -> dict[tuple[Any, ...], Any] | None:
        """This thread's answers under ``token`` (emptied when the token changes or the
        answers reach ``max_entries``); None when nothing may be kept."""
        kept = getattr(self._local, "kept", None)  # (token, answers): one lookup
        if kept is not None and kept[0] is token and token is not None:
            answers: dict[tuple[Any, ...], Any] = kept[1]
            if len(answers) < self.max_entries:
                return answers
        if token is None or not self.max_entries:
            return None
        answers = {}
        self._local.kept = (token, answers)
        return answers
