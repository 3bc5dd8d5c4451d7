"""The access log's helpers (api/logging.py): timestamps, redacted queries and paths, and
the buffered writer."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sessiontally.api import logging as access_logging
from sessiontally.api import memo


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_timestamps_match_isoformat_to_the_millisecond(now: float) -> None:
    expected = datetime.fromtimestamp(int(now), UTC).isoformat(timespec="milliseconds")
    got = access_logging.utc_timestamp(now)
    assert got[:20] == expected[:20] and got[-6:] == "+00:00" and len(got) == len(expected)
    # the milliseconds are truncated, never rounded up into the next second
    assert int(got[20:23]) == int((now - int(now)) * 1000) <= 999


def test_keys_are_redacted_and_never_kept() -> None:
    key = "st_12_" + "k" * 40
    access_logging._redacted_queries.clear()
    for query in (f"api_key={key}&length=3", f"length=3&token={key}", f"api%5Fkey={key}"):
        for _ in range(2):
            logged = access_logging.redacted_query(query.encode())
            assert key not in logged
            assert "redacted" in logged
    assert access_logging._redacted_queries == {}  # none of them kept: they hold a key
    long = b"length=3&pad=" + b"p" * memo.MEMOISED_QUERY_BYTES
    access_logging.redacted_query(long)
    assert access_logging._redacted_queries == {}


def test_a_query_without_a_key_is_redacted_once() -> None:
    access_logging._redacted_queries.clear()
    first = access_logging.redacted_query(b"length=3&unit=day")
    assert first == "length=3&unit=day"
    assert access_logging.redacted_query(b"length=3&unit=day") is first


class _Chunks(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def _handler(interval: float) -> tuple[access_logging.BufferedLineHandler, _Chunks, logging.Logger]:
    stream = _Chunks()
    handler = access_logging.BufferedLineHandler(stream, interval)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(f"test-buffered-{id(stream)}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return handler, stream, log


def test_buffered_lines_are_written_whole_in_chunks_within_the_interval() -> None:
    handler, stream, log = _handler(0.05)
    lines = [f'{{"n":{n},"pad":"{"x" * (n % 300)}"}}' for n in range(500)]
    for line in lines:
        log.info(line)
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < len(lines) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue().splitlines() == lines  # all of them, in order
    assert len(stream.writes) < len(lines) / 5  # in chunks, not a write per line
    for chunk in stream.writes:
        assert chunk.endswith("\n") and len(chunk) <= access_logging.PIPE_BUF
    handler.close()


def test_closing_writes_what_is_pending() -> None:
    handler, stream, log = _handler(3600)
    log.info("last words")
    assert stream.getvalue() == ""
    handler.close()
    assert stream.getvalue() == "last words\n"


def test_paths_are_scrubbed_and_only_clean_ones_kept() -> None:
    access_logging._logged_paths.clear()
    key = "st_12_" + "k" * 40
    assert access_logging.logged_path("/sessions/data_series") == "/sessions/data_series"
    assert access_logging.logged_path(f"/x/{key}") == "/x/st_[redacted]"
    assert access_logging.logged_path("/" + "a" * 300) == "/" + "a" * 255
    assert access_logging._logged_paths == {"/sessions/data_series": "/sessions/data_series"}
    for n in range(2 * access_logging.MEMOISED_PATHS):
        access_logging.logged_path(f"/p{n}")
    assert len(access_logging._logged_paths) == access_logging.MEMOISED_PATHS  # bounded


def test_access_lines_go_to_the_buffer_as_configured_else_through_logging() -> None:
    access_logging.configure("INFO")
    handler = access_logging.logger.handlers[0]
    assert isinstance(handler, access_logging.BufferedLineHandler)
    stream = _Chunks()
    handler.setStream(stream)
    access_logging.write_line('{"n":1}')
    assert handler.pending == ['{"n":1}\n']  # straight into the buffer, written later
    handler.flush()
    assert stream.getvalue() == '{"n":1}\n'
    # Any other set-up (here a filter) gets a LogRecord, which the filter sees.
    seen: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    access_logging.logger.addFilter(keep)
    try:
        access_logging.write_line('{"n":2}')
    finally:
        access_logging.logger.removeFilter(keep)
    handler.flush()
    assert seen == ['{"n":2}'] and stream.getvalue() == '{"n":1}\n{"n":2}\n'
    access_logging.configure("INFO")  # a fresh handler on stderr again
