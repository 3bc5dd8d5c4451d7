"""HTTP helpers (api/http.py): the query string parsed once and remembered."""

from __future__ import annotations

from starlette.requests import Request

from sessiontally.api import http


def _request(query: bytes) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": []})


def test_pairs_keep_repeats_blanks_and_decode_plus() -> None:
    assert http.query_pairs(_request(b"a=1&a=2&b=&c=x+y%2B")) == (
        ("a", "1"), ("a", "2"), ("b", ""), ("c", "x y+"),
    )


def test_a_short_query_is_parsed_once() -> None:
    query = b"length=100&unit=day&marker=test_a_short_query_is_parsed_once"
    first = http.query_pairs(_request(query))
    assert http.query_pairs(_request(query)) is first  # remembered: the same tuple


def test_a_long_query_is_parsed_every_time_and_not_kept() -> None:
    query = b"x=" + b"y" * http.MEMOISED_QUERY_BYTES
    before = http._parsed_query.cache_info().currsize
    first = http.query_pairs(_request(query))
    assert first == (("x", "y" * (http.MEMOISED_QUERY_BYTES - 0)),)
    assert http.query_pairs(_request(query)) is not first
    assert http._parsed_query.cache_info().currsize == before
