"""The import contract of src/alblake, read from the source (AST): no import cycles, a core that knows nothing of
AWS, the command line or the deployed use cases, and service modules that touch the boto3 adapters only in their
wiring. Also: test modules do not import each other, and scripts do not import tests.

Edges of the graph: every ``import`` of an alblake module, at module level or inside a function (a lazy import
closes a loop as surely as any other once it runs), except those under ``if TYPE_CHECKING:`` (never run).
Importing ``alblake.a.b`` runs the package ``alblake.a`` first, so that is an edge too, unless the importer is
inside that package (it is already being imported then).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

CORE = (
    "alblake.errors",
    "alblake.schema",
    "alblake.schema_render",
    "alblake.parse",
    "alblake.native",
    "alblake.keys",
    "alblake.s3_urls",
    "alblake.ports",
    "alblake.convert",
    "alblake.lake",
    "alblake.ingest.core",
    "alblake.ingest.selection",
    "alblake.ingest.filters",
    "alblake.ingest.planning",
    "alblake.ingest.pool",
)
NOT_IN_THE_CORE = ("alblake.aws", "alblake.service", "alblake.cli", "alblake.locations", "boto3", "botocore")
# Pure AWS shapes a service module may import at module level: dictionaries in, records out (no boto3).
PURE_AWS_MODULES = {"alblake.aws.events"}


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (alblake.x.y) or a third-party top-level name (boto3)
    function: str | None  # the function whose body holds the import; None at module level


@dataclass
class Module:
    name: str
    path: Path
    imports: list[Import] = field(default_factory=list)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _under_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, known: set[str], function: str | None = None) -> Iterator[Import]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _under_type_checking(node):
            continue
        if isinstance(node, ast.Import):
            yield from (Import(_target(alias.name, known), function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield Import(submodule if submodule in known else _target(node.module, known), function)
        inner = node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else function
        yield from _imports(node, known, inner)


def _target(name: str, known: set[str]) -> str:
    return name if name in known or name.startswith("alblake.") else name.split(".")[0]


def project_modules(root: Path = SRC) -> dict[str, Module]:
    paths = sorted((root / "alblake").rglob("*.py"))
    modules = {_module_name(p, root): Module(_module_name(p, root), p) for p in paths}
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        module.imports = list(_imports(tree, set(modules)))
    return modules


def graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the alblake modules importing it runs (each import, and the packages it runs first)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for module in modules.values():
        for target in (i.target for i in module.imports if i.target in modules):
            edges[module.name].add(target)
            parts = target.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if not (module.name + ".").startswith(package + "."):  # the importer's own packages are running
                    edges[module.name].add(package)
    for name in edges:
        edges[name].discard(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen = {start}
    pending = [start]
    while pending:
        for successor in edges[pending.pop()] - seen:
            seen.add(successor)
            pending.append(successor)
    return seen


def _in(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return project_modules()


def test_the_graph_reads_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "alblake"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("import alblake.b\n")
    (package / "sub" / "inner.py").write_text("from alblake.sub import other\n")
    (package / "sub" / "other.py").write_text("")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nimport boto3.session\nif TYPE_CHECKING:\n    import alblake.a\n"
        "def f():\n    from alblake.sub.inner import x\n"
    )
    (package / "a.py").write_text("from alblake import b\n")
    found = project_modules(tmp_path)
    assert found["alblake.b"].imports == [
        Import("typing", None), Import("boto3", None), Import("alblake.sub.inner", "f")
    ]
    edges = graph(found)
    assert edges["alblake.a"] == {"alblake.b"}
    assert edges["alblake.b"] == {"alblake.sub.inner", "alblake.sub"}  # the lazy import runs alblake.sub first
    assert edges["alblake.sub.inner"] == {"alblake.sub.other"}  # its own package is already running
    assert cycles(edges) == {frozenset({"alblake.b", "alblake.sub"})}


def test_no_import_cycles(modules: dict[str, Module]) -> None:
    assert cycles(graph(modules)) == set()


def test_the_core_imports_nothing_of_aws_the_cli_or_the_use_cases(modules: dict[str, Module]) -> None:
    edges = graph(modules)
    core = [name for name in modules if _in(name, CORE)]
    assert "alblake.lake.generational" in core and "alblake.ingest.core" in core
    for name in core:
        closure = reachable(edges, name)
        assert not [m for m in closure if _in(m, NOT_IN_THE_CORE)], name
        third_party = {i.target for m in closure for i in modules[m].imports}
        assert not [t for t in third_party if _in(t, NOT_IN_THE_CORE)], name


def test_service_modules_use_the_boto3_adapters_only_in_their_wiring(modules: dict[str, Module]) -> None:
    service = [m for name, m in modules.items() if _in(name, ("alblake.service",))]
    assert len(service) >= 5
    for module in service:
        for imported in module.imports:
            if _in(imported.target, ("alblake.aws",)) and imported.target not in PURE_AWS_MODULES:
                assert imported.function is not None, (module.name, imported.target)
                assert imported.function.startswith(("build_", "open_deployed_")), (module.name, imported)
            assert not _in(imported.target, ("boto3", "botocore", "alblake.cli")), (module.name, imported)


def test_tests_do_not_import_each_other_and_scripts_do_not_import_tests() -> None:
    def imported(path: Path) -> set[str]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        assert not [m for m in imported(path) if m.split(".")[-1].startswith("test_")], path
    found = {(path.name, m) for path in sorted((ROOT / "scripts").rglob("*.py")) for m in imported(path)
             if _in(m, ("tests",))}
    assert found == set()
