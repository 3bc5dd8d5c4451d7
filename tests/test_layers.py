"""The import table of docs/architecture.md, enforced: each module of ``sessiontally`` sits in
one layer, imports only its own layer and the layers below, and stays out of the packages
named as foreign to its layer (the HTTP layer never touches a database driver, say).

The check reads every module's imports with ``ast`` (no module is imported). Imports under
``if TYPE_CHECKING:`` are left out: they exist for the type checker only.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sessiontally"
DRIVERS = frozenset({"sqlite3", "psycopg", "psycopg_pool", "redis"})
WEB = frozenset({"starlette", "uvicorn", "httptools", "anyio"})


class Layer(NamedTuple):
    name: str
    units: frozenset[str]  # top-level modules or packages of sessiontally ("" is its __init__)
    independent: bool  # units of this layer may not import one another
    foreign: frozenset[str]  # third-party packages this layer must not import
    bypassed: frozenset[str] = frozenset()  # lower units it reaches only through another


# Top first, as in docs/architecture.md.
LAYERS = (
    Layer("entry points", frozenset({"__main__", "cli"}), False, frozenset()),
    Layer("HTTP", frozenset({"api"}), False, DRIVERS, frozenset({"store", "ratelimit"})),
    Layer("use cases", frozenset({"service", "audience", "admin", "importer", "demo", "answers",
                           "intake", "insights", "members", "overview", "erasure",
                           "retention"}),
          False, DRIVERS | WEB),
    Layer("adapters", frozenset({"store", "ratelimit"}), True, WEB),
    Layer("pure", frozenset({"timeparse", "buckets", "series_query", "ingest", "attributes",
                             "segments", "ipallow", "keys", "limits", "sessionize",
                             "tracking", "kpi", "passwords"}), False, DRIVERS | WEB),
    Layer("foundation", frozenset({"", "config", "errors"}), True, DRIVERS | WEB),
)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    """The top-level unit of a file: ``store`` for store/sqlite.py, ``cli`` for cli.py."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts == ("__init__",):
        return ""
    return parts[0]


def _layer_of(unit: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if unit in layer.units:
            return rank
    raise LookupError(unit)


def _package_of(path: Path) -> list[str]:
    """The dotted package a file's relative imports start from, as a list of names."""
    parts = ["sessiontally", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1]


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, source: str) -> list[str]:
    """The dotted names the file at ``path`` holding ``source`` imports at run time
    (``from a import b`` gives ``a.b``)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path)
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.extend(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source, str(path)))
    return found


def _imported_unit(name: str) -> str | None:
    """The sessiontally unit a dotted name belongs to (None for other packages)."""
    parts = name.split(".")
    if parts[0] != "sessiontally":
        return None
    if len(parts) == 1:
        return ""
    candidate = parts[1]
    if candidate in {unit for layer in LAYERS for unit in layer.units}:
        return candidate
    return ""  # a name defined in sessiontally/__init__.py, e.g. __version__


def violations(sources: dict[Path, str]) -> list[str]:
    """Every import of ``sources`` (file path: its text) that breaks the table."""
    problems = []
    for path, source in sources.items():
        unit = _unit(path)
        rank = _layer_of(unit)
        layer = LAYERS[rank]
        for name in imports_of(path, source):
            where = path.relative_to(PACKAGE.parent)
            target = _imported_unit(name)
            if target is None:
                if name.split(".")[0] in layer.foreign:
                    problems.append(f"{where}: the {layer.name} layer imports {name}")
                continue
            if target == unit:
                continue
            target_rank = _layer_of(target)
            if target_rank < rank:
                problems.append(f"{where}: {name} is in a higher layer ({LAYERS[target_rank].name})")
            elif target in layer.bypassed:
                problems.append(f"{where}: the {layer.name} layer reaches {target} only through the service")
            elif target_rank == rank and layer.independent:
                problems.append(f"{where}: {name} is an independent unit of the same layer")
    return problems


def test_every_module_is_in_a_layer() -> None:
    placed = {unit for layer in LAYERS for unit in layer.units}
    assert sorted({_unit(path) for path in _modules()} - placed) == []


def test_no_import_breaks_the_layers() -> None:
    assert violations({path: path.read_text() for path in _modules()}) == []


def documented_layers(doc: str) -> dict[str, str]:
    """Each unit's layer as the table under "## Layers" in docs/architecture.md gives it:
    rows ``| layer | `unit` | module | job |``, the layer cell left empty below its first row."""
    section = doc.split("## Layers", 1)[1].split("\n## ", 1)[0]
    placed: dict[str, str] = {}
    layer = ""
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] == "layer" or (cells[0] and set(cells[0]) <= {"-"}):
            continue
        layer = cells[0] or layer
        unit = cells[1].strip("`")
        if unit:
            placed[unit] = layer
    return placed


def test_the_table_is_the_one_in_the_architecture_doc() -> None:
    doc = (PACKAGE.parent.parent / "docs" / "architecture.md").read_text()
    expected = {unit: layer.name for layer in LAYERS for unit in layer.units if unit}
    documented = documented_layers(doc)
    assert {unit: documented.get(unit) for unit in expected} == expected


def test_a_unit_in_the_wrong_row_of_the_doc_is_caught() -> None:
    doc = "## Layers\n\n| layer | unit | module | job |\n|---|---|---|---|\n" \
          "| HTTP | `api` | `api/app.py` | x |\n| | `store` | `store/base.py` | y |\n## Next\n"
    assert documented_layers(doc) == {"api": "HTTP", "store": "HTTP"}


@pytest.mark.parametrize(
    ("relative", "source", "problem"),
    [
        ("store/fake.py", "from ..ratelimit import decide\n", "independent unit"),
        ("store/fake.py", "from ..service import Service\n", "higher layer"),
        ("config.py", "from .store import open_store\n", "higher layer"),
        ("api/fake.py", "import sqlite3\n", "imports sqlite3"),
        ("service.py", "from starlette.responses import Response\n", "imports starlette"),
        ("api/fake.py", "from ..store import open_store\n", "only through the service"),
    ],
)
def test_a_planted_break_is_caught(relative: str, source: str, problem: str) -> None:
    """The check itself can fail: each planted import is reported."""
    found = violations({PACKAGE / relative: source})
    assert any(problem in line for line in found), found


def test_type_checking_imports_are_left_out() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..service import Service\n"
    assert violations({PACKAGE / "store" / "fake.py": source}) == []
