"""The apps import each other in one direction only (meet → rooms → sfu / chat / accounts), and
no module hides a cycle behind an import inside a function.

A small AST walk over the apps' non-test modules: each module's imports, wherever they stand,
except those under `if TYPE_CHECKING:` (never executed, so they form no cycle at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("meet", "accounts", "rooms", "chat", "sfu")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT).parts
            if "tests" in relative or "migrations" in relative:
                continue
            modules[module_name(path)] = path
    return modules


def _is_type_checking_block(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(fully qualified name, line) of every import executed at some point."""
    found: list[tuple[str, int]] = []
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking_block(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, node.lineno))
            # `from rooms import presence` imports the module rooms.presence.
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = product_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for name, _line in imported_names(tree, module, path.name == "__init__.py"):
            if name in modules and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), as a list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_the_apps_modules_import_each_other_without_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles among product modules: " + "; ".join(
        " ↔ ".join(cycle) for cycle in cycles
    )


def test_the_cycle_finder_sees_a_cycle_through_a_function_local_import(tmp_path: Path) -> None:
    source = "def later():\n    from rooms import models\n"
    imports = imported_names(ast.parse(source), "rooms.recurrence", is_package=False)
    graph = {
        "rooms.models": {"rooms.recurrence"},
        "rooms.recurrence": {name for name, _ in imports if name == "rooms.models"},
    }
    assert find_cycles(graph) == [["rooms.models", "rooms.recurrence"]]


def test_imports_only_for_type_checking_are_not_counted() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rooms import models\n"
    imports = imported_names(ast.parse(source), "rooms.recurrence", is_package=False)
    assert ("rooms.models", 3) not in imports


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from . import presence", "rooms.moderation", "rooms.presence"),
        ("from .protocol import check", "rooms.signaling.context", "rooms.signaling.protocol"),
        ("from .. import events", "rooms.signaling.context", "rooms.events"),
    ],
)
def test_relative_imports_resolve_to_the_module_they_name(
    source: str, module: str, expected: str
) -> None:
    names = {name for name, _ in imported_names(ast.parse(source), module, is_package=False)}
    assert expected in names
