"""answers.AnswerCache: answers kept per thread, under one change token at a time."""

from __future__ import annotations

import threading

from sessiontally.answers import AnswerCache


def test_nothing_is_kept_without_a_token_or_room() -> None:
    assert AnswerCache().under(None) is None
    assert AnswerCache(max_entries=0).under(object()) is None


def test_answers_last_while_the_token_is_the_same_object() -> None:
    cache, token = AnswerCache(), object()
    kept = cache.under(token)
    assert kept is not None
    kept[("k",)] = 1
    assert cache.under(token) == {("k",): 1}
    assert cache.under(object()) == {}  # something was committed: all is dropped
    assert cache.under(token) == {}  # and the old token does not bring it back


def test_a_full_cache_starts_over() -> None:
    cache, token = AnswerCache(max_entries=2), object()
    answers = cache.under(token)
    assert answers is not None
    answers.update({("a",): 1, ("b",): 2})
    assert cache.under(token) == {}


def test_each_thread_keeps_its_own() -> None:
    cache, token = AnswerCache(), object()
    kept = cache.under(token)
    assert kept is not None
    kept[("k",)] = "main"
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(cache.under(token)))
    worker.start()
    worker.join()
    assert seen == [{}]
    assert cache.under(token) == {("k",): "main"}
