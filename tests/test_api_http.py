"""HTTP helpers (api/http.py): the query string parsed once and remembered, unless it
may carry a key."""

from __future__ import annotations

import pytest
from starlette.types import Scope

from sessiontally.api import http, memo
from sessiontally.ratelimit import decide


def _request(query: bytes) -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": []}


@pytest.fixture(autouse=True)
def _empty_memo() -> None:
    http._parsed_queries.clear()


def test_pairs_keep_repeats_blanks_and_decode_plus() -> None:
    assert http.query_pairs(_request(b"a=1&a=2&b=&c=x+y%2B")) == (
        ("a", "1"), ("a", "2"), ("b", ""), ("c", "x y+"),
    )


def test_a_short_query_is_parsed_once() -> None:
    query = b"length=100&unit=day"
    first = http.query_pairs(_request(query))
    assert http.query_pairs(_request(query)) is first  # remembered: the same tuple
    assert list(http._parsed_queries) == [query]


@pytest.mark.parametrize("query", [
    b"x=" + b"y" * memo.MEMOISED_QUERY_BYTES,  # too long
    b"length=3&api_key=st_1_" + b"s" * 40,  # the legacy key parameter
    b"length=3&api%5Fkey=secret",  # the same, escaped
    b"length=3&token=st_1_" + b"s" * 40,  # a key where it does not belong
])
def test_long_queries_and_queries_with_keys_are_not_kept(query: bytes) -> None:
    first = http.query_pairs(_request(query))
    assert http.query_pairs(_request(query)) == first
    assert http._parsed_queries == {}


def test_the_memo_is_bounded() -> None:
    for n in range(3 * memo.MEMOISED_QUERIES):
        http.query_pairs(_request(f"length={n}".encode()))
        assert len(http._parsed_queries) <= memo.MEMOISED_QUERIES


def _with_headers(*headers: tuple[bytes, bytes], query: bytes = b"") -> Scope:
    return {"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": list(headers)}


@pytest.mark.parametrize(("headers", "expected"), [
    ((), None),
    (((b"authorization", b"Bearer st_1_abc"),), "st_1_abc"),
    (((b"authorization", b"  bearer   st_1_abc  "),), "st_1_abc"),
    (((b"authorization", b"Basic dXNlcjpwYXNz"),), ""),  # present but not Bearer: invalid
    (((b"authorization", b"Bearer st_1_first"), (b"authorization", b"Bearer st_1_second")), "st_1_first"),
    (((b"x-other", b"1"),), None),
])
def test_the_key_comes_from_the_authorization_header(headers, expected) -> None:
    assert http.presented_key(_with_headers(*headers), ()) == expected


def test_the_header_wins_over_the_api_key_parameter() -> None:
    pairs = (("api_key", "st_1_param"),)
    assert http.presented_key(_with_headers(), pairs) == "st_1_param"
    assert http.presented_key(_with_headers((b"authorization", b"Bearer st_1_hdr")), pairs) == "st_1_hdr"


def test_json_responses_carry_their_length_type_and_headers() -> None:
    response = http.json_response({"message": "é"}, 429, {"X-RateLimit-Limit": "10", "Retry-After": "1"})
    assert response.status_code == 429
    assert response.body == '{"message":"é"}'.encode()
    assert response.raw_headers == [
        (b"content-length", str(len(response.body)).encode()),
        (b"content-type", b"application/json"),
        (b"x-ratelimit-limit", b"10"),
        (b"retry-after", b"1"),
    ]
    assert response.headers["content-type"] == "application/json"
    encoded = http.json_response({}, 200, {"Retry-After": "2"}, [(b"x-ratelimit-limit", b"5")])
    assert encoded.raw_headers[2:] == [(b"x-ratelimit-limit", b"5"), (b"retry-after", b"2")]
    assert http.json_response([]).raw_headers == [
        (b"content-length", b"2"), (b"content-type", b"application/json"),
    ]


def test_rate_limit_headers_as_sent() -> None:
    decision = decide(7, 5, 3600)
    assert http.rate_limit_headers(decision) == [
        (b"x-ratelimit-limit", b"5"), (b"x-ratelimit-remaining", b"0"), (b"x-ratelimit-reset", b"7200"),
    ]
