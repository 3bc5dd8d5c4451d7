"""api/errors.py: every refusal of sessiontally.errors has its status, and its body is the
API's ``{"message": ...}`` shape."""

from __future__ import annotations

import inspect

import pytest

from sessiontally import errors
from sessiontally.api.errors import STATUS_BY_ERROR, QueryTooLong, UnsupportedMediaType, error_body, status_of

REFUSALS = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.SessiontallyError) and cls is not errors.SessiontallyError
]


def _instance(cls: type[errors.SessiontallyError]) -> errors.SessiontallyError:
    return cls("m", 0) if cls is errors.RateLimited else cls("m")


@pytest.mark.parametrize("cls", REFUSALS, ids=lambda cls: cls.__name__)
def test_every_refusal_has_a_status_of_its_family(cls: type[errors.SessiontallyError]) -> None:
    assert any(issubclass(cls, family) for family, _ in STATUS_BY_ERROR)
    assert 400 <= status_of(_instance(cls)) < 600


def test_a_refusal_of_no_known_kind_is_a_server_error() -> None:
    assert status_of(errors.SessiontallyError("m")) == 500


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.InvalidInput("m"), 400), (errors.Unauthenticated("m"), 401), (errors.Forbidden("m"), 403),
        (errors.NotFound("m"), 404), (errors.DuplicateName("m"), 409), (errors.TooLarge("m"), 413),
        (QueryTooLong("m"), 414), (UnsupportedMediaType("m"), 415), (errors.RateLimited("m", 0), 429),
        (errors.StoreBusy("m"), 503), (errors.StoreUnavailable("m"), 503),
        (errors.RateLimiterUnavailable("m"), 503),
    ],
)
def test_status_codes(exc: errors.SessiontallyError, status: int) -> None:
    assert status_of(exc) == status


def test_bodies_never_carry_a_dependency_s_own_words() -> None:
    assert error_body(errors.StoreUnavailable("OperationalError: connection refused")) == {
        "message": "Store unavailable; try again shortly"}
    assert error_body(errors.RateLimiterUnavailable("ConnectionError")) == {
        "message": "Rate limiter unavailable; try again shortly"}
    assert error_body(errors.InvalidInput("bad", [{"index": 0, "message": "x"}])) == {
        "message": "bad", "errors": [{"index": 0, "message": "x"}]}
