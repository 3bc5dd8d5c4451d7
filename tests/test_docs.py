"""The documentation: docs/api.md covers every endpoint the service serves, and README.md and
docs/ link nothing outside the repository.

Endpoints are read from the OpenAPI document and from the routes of an app built by
``create_app``, not from a list kept here, so that a new route without documentation fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessiontally.api.app import create_app
from sessiontally.api.openapi import openapi_document
from sessiontally.config import Settings

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # answered for every GET route; not endpoints of their own


def _api_text() -> str:
    return API_MD.read_text(encoding="utf-8")


def _headings(text: str) -> list[tuple[int, str, int]]:
    """(level, heading text, line index) of every Markdown ATX heading outside code blocks."""
    found = []
    fenced = False
    for index, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"(#{1,6})\s+(.*)", line)
        if match and not fenced:
            found.append((len(match.group(1)), match.group(2), index))
    return found


def _names(path: str) -> re.Pattern[str]:
    """``path`` as a whole token (``/docs`` must not match ``/docs/x`` or ``/healthz/docs``)."""
    return re.compile(r"(?<![\w/.])" + re.escape(path) + r"(?![\w/.])")


def _section(text: str, method: str, path: str) -> str | None:
    """The text under the heading that names ``METHOD path``, up to the next heading of the
    same or a higher level; None when no heading names it."""
    lines = text.splitlines()
    headings = _headings(text)
    pattern = re.compile(re.escape(method) + r"\s+" + _names(path).pattern)
    for position, (level, heading, start) in enumerate(headings):
        if pattern.search(heading):
            end = next((line for lvl, _, line in headings[position + 1:] if lvl <= level), len(lines))
            return "\n".join(lines[start:end])
    return None


def _operations() -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
    ]


def _served_routes(routes: list) -> Iterator[tuple[str | None, str]]:
    for route in routes:
        path = getattr(route, "path", None)
        children = getattr(route, "routes", None)
        if children:  # a Mount: its own routes, under its prefix
            for method, child in _served_routes(list(children)):
                yield method, (path or "") + child
            continue
        if path is None:
            continue
        methods = set(getattr(route, "methods", None) or ()) - IGNORED_METHODS
        if not methods:
            yield None, path
        for method in sorted(methods):
            yield method, path


@pytest.mark.parametrize(("method", "path", "operation"), _operations(),
                         ids=[f"{m} {p}" for m, p, _ in _operations()])
def test_every_operation_of_the_openapi_document_has_a_section(method, path, operation) -> None:
    section = _section(_api_text(), method, path)
    assert section is not None, f"docs/api.md has no heading naming `{method} {path}`"
    for parameter in operation.get("parameters", []):
        assert f"`{parameter['name']}`" in section, (method, path, parameter["name"])
    for status in operation["responses"]:
        assert re.search(rf"\b{status}\b", section), f"{method} {path}: status {status} not mentioned"


def test_every_served_route_has_a_heading(tmp_path: Path) -> None:
    app = create_app(Settings(database=str(tmp_path / "docs.sqlite3"), redis_url=None, log_level="WARNING"))
    try:
        served = sorted(set(_served_routes(list(app.routes))), key=lambda pair: (pair[1], pair[0] or ""))
    finally:
        app.state.service.close()
    assert served, "the app serves no routes?"
    text = _api_text()
    headings = [heading for _, heading, _ in _headings(text)]
    for method, path in served:
        if method is None:
            assert any(_names(path).search(h) for h in headings), f"no heading names {path}"
        else:
            assert _section(text, method, path) is not None, f"docs/api.md has no heading `{method} {path}`"


def _documentation() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted(p for p in (ROOT / "docs").rglob("*") if p.is_file())
    return files


_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _relative_links(text: str) -> list[str]:
    targets = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text) + _HTML_LINK.findall(text)
    return [t for t in targets if not t.startswith("#") and not _SCHEME.match(t)]


@pytest.mark.parametrize("document", _documentation(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8", errors="replace")
    for target in _relative_links(text):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not file_part:
            continue
        base = ROOT if file_part.startswith("/") else document.parent
        resolved = (base / file_part.lstrip("/")).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name}: {target!r} leaves the repository"
        assert resolved.exists(), f"{document.name}: {target!r} points to nothing"


@pytest.mark.parametrize("document", _documentation(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_to_files_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8", errors="replace")
    assert "contract.md" not in text.lower(), f"{document.name} mentions CONTRACT.md"
    assert "../shared" not in text, f"{document.name} refers to ../shared"


# A file mentioned in plain text (``bench/RESULTS.md``, ``store/sql.py``): resolved against
# the repository, the document's folder and the package, it must be one of the repository.
_FILE_MENTION = re.compile(
    r"(?<![\w/.:-])((?:~/|\.{1,2}/|/)?(?:[\w.-]+/)+[\w.-]+"
    r"\.(?:md|py|txt|json|toml|lock|ya?ml|sh|png|js|css|html|sql|cfg|ini))\b"
)
_PACKAGE = ROOT / "src" / "sessiontally"
# Folders of a machine, never of the repository: a document must not send readers there.
_MACHINE_FOLDERS = re.compile(r"(?<![\w.-])(?:~|/(?:home|work|root|Users|tmp|mnt|shared))/[\w.-]")


def _outside_mentions(document: Path, text: str) -> list[str]:
    found = []
    for mention in _FILE_MENTION.findall(text):
        if mention.startswith("/") or re.match(r"[\w-]+\.[a-z]{2,}/", mention):
            continue  # a path the server serves (/js/sessiontally.js), or a web address
        if mention.startswith("~/"):
            found.append(mention)
            continue
        bases = (ROOT, document.parent, _PACKAGE)
        inside = [(base / mention).resolve() for base in bases]
        if not any(path.is_relative_to(ROOT) and path.exists() for path in inside):
            found.append(mention)
    found += [match.group(0) for match in _MACHINE_FOLDERS.finditer(text)]
    found += re.findall(r"\bCONTRACT\b", text)  # the brief the project was built from
    return found


@pytest.mark.parametrize("document", _documentation(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_plain_text_mention_of_a_file_outside_the_repository(document: Path) -> None:
    if document.suffix != ".md":
        return
    text = document.read_text(encoding="utf-8")
    assert not _outside_mentions(document, text), f"{document.name}: {_outside_mentions(document, text)}"


def test_the_mention_checker_sees_mentions() -> None:
    """The check above must not pass because it finds nothing."""
    sample = ("see ../shared/NOTES.md, ~/notes/x.md, /work/main/docs/x.md, CONTRACT section 4, "
              "docs/nothing-here.md; but docs/api.md, store/sql.py, /js/sessiontally.js and "
              "sqlite.org/walformat.html are fine")
    assert _outside_mentions(ROOT / "docs" / "cli.md", sample) == [
        "../shared/NOTES.md", "~/notes/x.md", "docs/nothing-here.md", "~/n", "/work/m", "CONTRACT"]


def test_api_reference_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/api.md" in _relative_links(readme)


def test_the_link_checker_sees_links() -> None:
    """The checks above must not pass because they find nothing."""
    sample = (
        '[a](../shared/X.md) [b](docs/api.md#x) ![i](img.png "t") [d](https://e.org) [e](#top)\n'
        '[c]: ../up.md\n<a href="../y">y</a>\n'
    )
    expected = ["../shared/X.md", "../up.md", "../y", "docs/api.md#x", "img.png"]
    assert sorted(_relative_links(sample)) == expected
