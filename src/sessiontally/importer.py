"""Bulk import of sessions from an NDJSON or CSV file (docs/api.md, docs/cli.md).

The file is streamed line by line (memory stays flat whatever its size) and recorded in
batches of at most 50,000 items through ``Service.record_items``, so an imported session
is validated and deduplicated by exactly the rules of ``POST /sessions/track``. Rejections
are reported by physical line number (1-based; a CSV header is line 1); the summary keeps
the first 1,000 of them with their messages, and counts them all.

- NDJSON: one JSON object per line; blank lines are skipped.
- CSV: a header row naming the columns ``session_id``, ``external_id``, ``app_id``,
  ``started_at`` and optionally ``ended_at`` (any order; other columns are ignored, as
  unknown fields are by the API); an empty ``ended_at`` means absent; blank lines are
  skipped; a quoted field may span lines (its row is reported by its first line).
"""

from __future__ import annotations

import csv
import io
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import IO, TYPE_CHECKING, Any, Never
from zoneinfo import ZoneInfo

import orjson

from .errors import InvalidInput
from .ratelimit import RateDecision
from .service import Service
from .store.base import Store, Workspace
from .timeparse import parse_timestamp

if TYPE_CHECKING:
    from tqdm import tqdm

# Items per record_items call, each one transaction. Random session ids dirty about one
# page per row until a transaction's rows outnumber the table's pages, so larger
# transactions write each page fewer times; this size costs tens of MB of memory, the
# same whatever the file's size.
BATCH_SIZE = 50_000
MAX_LINE_BYTES = 1 << 20  # a longer line is rejected without being held in memory
KEPT_ERRORS = 1000  # rejections kept with their message (the count is always exact)
SHOWN_ERRORS = 20  # rejections listed in the text summary
FORMATS = ("ndjson", "csv")
EXTENSIONS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson", ".csv": "csv"}
CSV_COLUMNS = ("session_id", "external_id", "app_id", "started_at", "ended_at")
CSV_REQUIRED = CSV_COLUMNS[:4]
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How an import reads its lines: ``zone`` gives timestamps without an offset their
    wall time's offset in that zone (``import --time-zone``; without it they are refused,
    as the API refuses them); ``names`` maps a field to the column (CSV) or key (NDJSON)
    that holds it (``import --map field=column``)."""

    zone: ZoneInfo | None = None
    names: Mapping[str, str] = field(default_factory=dict)

    def renamed(self, item: Any) -> Any:
        """An NDJSON object with its keys mapped to fields (CSV columns are mapped at the
        header instead)."""
        if not self.names or not isinstance(item, dict):
            return item
        taken = {column: name for name, column in self.names.items()}
        return {taken.get(key, key): value for key, value in item.items()
                if key not in self.names or key in taken}

    def localized(self, item: Any) -> Any:
        """An item whose times without an offset get the zone's."""
        if self.zone is None or not isinstance(item, dict):
            return item
        for name in ("started_at", "ended_at"):
            value = item.get(name)
            if isinstance(value, str):
                item[name] = _with_offset(value, self.zone)
        return item


def _with_offset(text: str, zone: ZoneInfo) -> str:
    """``text`` with the offset its wall time has in ``zone`` when it has none (the first of
    two at a fall-back, as ``fold=0``); anything else as it is (validation reports it)."""
    try:
        parsed = parse_timestamp(text)
    except ValueError:
        return text
    if parsed.tzinfo is not None:
        return text
    return parsed.replace(tzinfo=zone).isoformat()


def parse_map(pairs: Sequence[str]) -> dict[str, str]:
    """``--map field=column`` options as {field: column}; UnreadableFile naming a bad one."""
    names: dict[str, str] = {}
    for pair in pairs:
        name, found, column = pair.partition("=")
        name, column = name.strip(), column.strip()
        if not found or not column or name not in CSV_COLUMNS:
            raise UnreadableFile(f"--map {pair!r}: give FIELD=COLUMN with FIELD one of "
                                 + ", ".join(CSV_COLUMNS))
        if name in names:
            raise UnreadableFile(f"--map names the field {name!r} twice")
        names[name] = column
    return names


class UnreadableFile(Exception):
    """The file cannot be opened or read as the format asked (the message says why)."""


class NoRateLimit:
    """The rate limiter of an import's Service: an operator's import is not an API request."""

    never_blocks = True
    dependency = "none"

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        raise RuntimeError("the importer does not count API requests")

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


@dataclass(slots=True)
class ImportSummary:
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    lines: int = 0  # lines read
    seconds: float = 0.0
    interrupted: bool = False
    errors: list[tuple[int, str]] = field(default_factory=list)  # the first KEPT_ERRORS, by line

    def reject(self, line: int, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append((line, message))

    @property
    def exit_status(self) -> int:
        """0 when the file was read; 1 when it held rejections and not one valid session."""
        return 1 if self.rejected and not (self.recorded or self.duplicates) else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": [{"line": line, "message": message} for line, message in self.errors],
        }

    def report(self) -> str:
        rate = f", {self.lines / self.seconds:,.0f} lines/s" if self.seconds > 0 else ""
        out = [
            f"recorded: {self.recorded:,}  duplicates: {self.duplicates:,}  rejected: {self.rejected:,}"
            f"  ({self.lines:,} lines in {self.seconds:.1f} s{rate})"
        ]
        out += [f"line {line}: {message}" for line, message in self.errors[:SHOWN_ERRORS]]
        if self.rejected > SHOWN_ERRORS:
            out.append(f"... and {self.rejected - SHOWN_ERRORS:,} more")
        if self.interrupted:
            out.append(f"interrupted near line {self.lines:,}; importing the file again is safe"
                       " (sessions already recorded count as duplicates)")
        return "\n".join(out)


# ------------------------------------------------------------------------ sources


def detect_format(path: str, override: str | None = None) -> str:
    """``ndjson`` or ``csv``: the override if given, else by the file's extension."""
    if override is not None:
        fmt = override.lower()
        if fmt not in FORMATS:
            raise UnreadableFile(f"unknown format {override!r}; use ndjson or csv")
        return fmt
    if path == "-":
        return "ndjson"
    told = EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if told is None:
        raise UnreadableFile(
            f"cannot tell the format of {path!r} from its extension"
            " (.ndjson, .jsonl, .json or .csv); give --format ndjson|csv"
        )
    return told


@dataclass(slots=True)
class Source:
    """An open binary stream, and its size when it is a regular file (for progress)."""

    name: str
    stream: IO[bytes]
    size: int | None
    owned: bool

    def close(self) -> None:
        if self.owned:
            self.stream.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: str, stdin: IO[bytes] | None = None) -> Source:
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:  # stdin redirected from a file: its size gives a progress in bytes
            info = os.fstat(stream.fileno())
            size = info.st_size if stat.S_ISREG(info.st_mode) and stream.tell() == 0 else None
        except (OSError, ValueError, io.UnsupportedOperation):
            size = None
        return Source("<stdin>", stream, size, owned=False)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by Source
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path!r}: {exc.strerror or exc}") from None
    info = os.fstat(stream.fileno())
    if stat.S_ISDIR(info.st_mode):  # pragma: no cover - open() already refuses on Linux
        stream.close()
        raise UnreadableFile(f"cannot read {path!r}: is a directory")
    return Source(path, stream, info.st_size if stat.S_ISREG(info.st_mode) else None, owned=True)


# ------------------------------------------------------------------------ import


class ImportAborted(Exception):
    """The store failed mid-import; ``summary`` tells what was recorded before that."""

    def __init__(self, message: str, summary: ImportSummary) -> None:
        super().__init__(message)
        self.summary = summary


class _Batcher:
    """Collects items with their line numbers and records each batch through the service.

    (Validating on a second thread while the previous batch is written does not help:
    the GIL makes the SQLite thread wait behind the validating one.)
    """

    def __init__(self, service: Service, workspace: Workspace, summary: ImportSummary,
                 on_flush: Callable[[int], None], options: ImportOptions | None = None) -> None:
        self.options = options or ImportOptions()
        self.service = service
        self.workspace = workspace
        self.summary = summary
        self.on_flush = on_flush
        self.items: list[Any] = []
        self.lines: list[int] = []
        self.pending: list[tuple[int, str]] = []  # rejections by the reader, in line order

    def add(self, item: Any, line: int) -> None:
        if self.options.zone is not None:
            item = self.options.localized(item)
        self.items.append(item)
        self.lines.append(line)
        if len(self.items) + len(self.pending) >= BATCH_SIZE:
            self.flush(line)

    def reject(self, line: int, message: str) -> None:
        self.pending.append((line, message))
        if len(self.items) + len(self.pending) >= BATCH_SIZE:
            self.flush(line)

    def flush(self, last_line: int) -> None:
        items, lines, rejected = self.items, self.lines, self.pending
        self.items, self.lines, self.pending = [], [], []
        if items:
            try:
                result = self.service.record_items(self.workspace, items)
                self.summary.recorded += result.recorded
                self.summary.duplicates += result.duplicates
                found = result.errors
            except InvalidInput as exc:  # not one valid item in the batch
                found = exc.errors or []
            if found:  # merge with the reader's rejections, by line
                rejected = rejected + [(lines[e["index"]], e["message"]) for e in found]
                rejected.sort(key=lambda pair: pair[0])
        for line, message in rejected:
            self.summary.reject(line, message)
        self.summary.lines = last_line
        self.on_flush(last_line)


def import_stream(
    store: Store,
    workspace: Workspace,
    source: Source,
    fmt: str,
    *,
    progress: bool = False,
    clock: Callable[[], float] = time.time,
    options: ImportOptions | None = None,
) -> ImportSummary:
    """Import every line of ``source``. Raises UnreadableFile when it cannot be read, and
    ImportAborted when the store fails (what was recorded before stays recorded)."""
    service = Service(store, NoRateLimit(), clock=clock)
    options = options or ImportOptions()
    summary = ImportSummary()
    started = time.perf_counter()
    bar = _progress_bar(source) if progress else None
    done = {"lines": 0, "bytes": 0}

    def on_flush(last_line: int) -> None:
        if bar is None:
            return
        if source.size is not None:
            position = source.stream.tell()
            bar.update(position - done["bytes"])
            done["bytes"] = position
        else:
            bar.update(last_line - done["lines"])
            done["lines"] = last_line
        bar.set_postfix_str(f"recorded {summary.recorded:,}, duplicates {summary.duplicates:,}, "
                            f"rejected {summary.rejected:,}", refresh=False)

    batcher = _Batcher(service, workspace, summary, on_flush, options)
    reader = _ndjson if fmt == "ndjson" else _csv
    try:
        last = reader(source, batcher)
        batcher.flush(last)
    except KeyboardInterrupt:
        summary.interrupted = True
    except OSError as exc:
        raise UnreadableFile(f"cannot read {source.name!r}: {exc.strerror or exc}") from None
    except UnreadableFile:
        raise
    except Exception as exc:
        raise ImportAborted(f"the import stopped near line {summary.lines + 1:,}: {exc}",
                            summary) from exc
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - started
    return summary


def import_file(
    store: Store,
    workspace: Workspace,
    path: str,
    fmt: str | None = None,
    *,
    progress: bool = False,
    stdin: IO[bytes] | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportSummary:
    fmt = detect_format(path, fmt)
    with open_source(path, stdin) as source:
        return import_stream(store, workspace, source, fmt, progress=progress, clock=clock)


def _progress_bar(source: Source) -> tqdm[Never]:  # a bar without an iterable
    from tqdm import tqdm

    if source.size is not None:
        return tqdm(total=source.size, unit="B", unit_scale=True, unit_divisor=1024,
                    file=sys.stderr, desc="import", dynamic_ncols=True)
    return tqdm(unit=" lines", unit_scale=True, file=sys.stderr, desc="import", dynamic_ncols=True)


def _raw_lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """Physical lines, each with its newline (a leading UTF-8 BOM removed); a line over
    MAX_LINE_BYTES comes out as None after being skipped in bounded chunks."""
    read = partial(stream.readline, MAX_LINE_BYTES + 1)
    first = True
    for raw in iter(read, b""):
        if first:
            first = False
            if raw.startswith(_BOM):
                raw = raw[len(_BOM):]
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            chunk = raw
            while chunk and not chunk.endswith(b"\n"):
                chunk = read()
            yield None
        else:
            yield raw


_TOO_LONG = f"line is longer than {MAX_LINE_BYTES:,} bytes"


def _ndjson(source: Source, batcher: _Batcher) -> int:
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    add = batcher.add
    renamed = batcher.options.renamed if batcher.options.names else None
    lineno = 0
    for lineno, raw in enumerate(_raw_lines(source.stream), 1):
        if raw is None:
            batcher.reject(lineno, _TOO_LONG)
            continue
        try:
            item = loads(raw)
        except decode_error as exc:
            if raw.strip():  # a blank line is skipped
                batcher.reject(lineno, _json_message(exc))
            continue
        add(item if renamed is None else renamed(item), lineno)
    return lineno


def _json_message(exc: orjson.JSONDecodeError) -> str:
    return f"not valid JSON ({exc.msg} at column {exc.colno})"


def _csv(source: Source, batcher: _Batcher) -> int:
    bad: dict[int, str] = {}  # lines that could not be decoded, until their row is reported

    def text_lines() -> Iterator[str]:
        for lineno, raw in enumerate(_raw_lines(source.stream), 1):
            if raw is None:
                bad[lineno] = _TOO_LONG
                yield "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad[lineno] = f"not valid UTF-8 (byte {exc.start + 1})"
                yield raw.decode("utf-8", "replace")

    rows = csv.reader(text_lines(), strict=True)
    try:
        header = next(rows)
    except StopIteration:
        return 0  # an empty file
    except csv.Error as exc:
        raise UnreadableFile(f"line 1: the CSV header is not valid CSV ({exc})") from None
    if bad:
        raise UnreadableFile(f"line 1: the CSV header is {bad[min(bad)]}")
    taken = {column: name for name, column in batcher.options.names.items()}
    names = [name.strip() for name in header]
    missing = [column for column in taken if column not in names]
    if missing:
        raise UnreadableFile("line 1: --map names columns the CSV header does not have: "
                             + ", ".join(missing))
    index = _header_index([taken.get(name, name if name not in batcher.options.names else "")
                           for name in names])
    width = len(header)
    i_sid, i_ext, i_app, i_start = (index[name] for name in CSV_REQUIRED)
    i_end = index.get("ended_at")
    add = batcher.add
    end = rows.line_num
    while True:
        start = end + 1
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            end = rows.line_num
            bad.clear()
            if "unexpected end of data" in str(exc) or "field larger than field limit" in str(exc):
                batcher.reject(start, f"not valid CSV: a quoted field opened on line {start} is "
                               f"never closed (lines {start} to {end} were read into it)")
            else:
                batcher.reject(start, f"not valid CSV ({exc})")
            continue
        end = rows.line_num
        if bad:
            reason = next((bad[n] for n in sorted(bad) if start <= n <= end), None)
            bad.clear()
            if reason is not None:
                batcher.reject(start, reason)
                continue
        if len(row) != width:
            if not row:
                continue  # a blank line
            batcher.reject(start, f"has {len(row)} fields; the header has {width}")
            continue
        item = {
            "session_id": row[i_sid],
            "external_id": row[i_ext],
            "app_id": row[i_app],
            "started_at": row[i_start],
        }
        if i_end is not None and row[i_end] != "":
            item["ended_at"] = row[i_end]
        add(item, start)
    return end


def _header_index(names: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in index and name in CSV_COLUMNS:
            raise UnreadableFile(f"line 1: the CSV header names the column {name!r} twice")
        index.setdefault(name, position)
    missing = [name for name in CSV_REQUIRED if name not in index]
    if missing:
        raise UnreadableFile(
            "line 1: the CSV header must name the columns " + ", ".join(CSV_REQUIRED)
            + " (and optionally ended_at); missing: " + ", ".join(missing)
        )
    return index
