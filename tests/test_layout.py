"""The layout ARCHITECTURE.md draws holds: `paymon/` has few top-level modules, its packages import
one way (no cycle, function-level imports included), and only the edges import the sandbox."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "paymon"

# Run order; a package may import only those listed before it (and itself). ARCHITECTURE.md's
# arrows. `errors` is the error tree everyone raises; the sandbox stands beside the run and may
# import only the expected setup and the rule model; the edges (`cli`) may import anything.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "clients": {"errors", "config"},
    "rules": {"errors", "config"},
    "findings": {"errors", "config", "clients", "rules"},
    "delivery": {"errors", "config", "clients", "rules"},
    "probes": {"errors", "config"},
    "reviews": {"errors", "config", "clients", "rules", "findings", "delivery", "probes"},
    "remedy": {"errors", "config", "clients", "rules", "findings"},
    "reporting": {"errors", "config", "clients", "rules", "findings", "delivery", "probes", "reviews"},
    "sandbox": {"errors", "config", "rules"},
    "cli": {"errors", "config", "clients", "rules", "findings", "delivery", "probes", "reviews", "remedy",
            "reporting", "sandbox"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every paymon module `name` imports, at any depth of the file (function-level included)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from paymon.x import func` names paymon.x
                target = target.rpartition(".")[0]
            if target and target != name and target != "paymon":
                found.add(target)
    return found


@cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "paymon"


def test_few_top_level_modules():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 8, f"paymon/ has {len(top)} top-level modules (at most 8): {top}"


def test_every_package_says_what_it_holds_and_may_import():
    missing = [str(init.relative_to(REPO)) for init in sorted(PACKAGE.glob("*/__init__.py"))
               if "import" not in (ast.get_docstring(ast.parse(init.read_text())) or "")]
    assert not missing, f"package docstrings that do not say what the package may import: {missing}"


def test_every_stage_is_placed():
    stages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")} | {
        path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    assert stages == set(ALLOWED), f"stages not in the layout: {sorted(stages ^ set(ALLOWED))}"


def test_imports_run_one_way():
    wrong = sorted(f"{module} imports {target}" for module, targets in _graph().items() for target in targets
                   if _stage(target) != _stage(module) and _stage(target) not in ALLOWED.get(_stage(module), set()))
    assert not wrong, "imports against ARCHITECTURE.md's arrows:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    # A package's __init__ importing its own modules is not a cycle of the code's design.
    modules = _modules()
    graph = {m: {t for t in ts if not (t.startswith(m + ".") and modules[m].name == "__init__.py")}
             for m, ts in _graph().items()}
    assert _cycles(graph) == []


def test_cycle_finder_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("library", sorted(set(ALLOWED) - {"cli", "sandbox"}))
def test_only_edges_import_the_sandbox(library):
    importers = sorted(module for module, targets in _graph().items()
                       if _stage(module) == library and any(_stage(t) == "sandbox" for t in targets))
    assert not importers, f"live modules that import the sandbox: {importers}"


def test_nothing_in_the_library_imports_pytest():
    users = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "pytest" for a in node.names):
                users.append(name)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pytest":
                users.append(name)
    assert not users, f"library modules that import pytest (only fixtures/ may): {sorted(set(users))}"


def test_no_warning_class_lives_in_a_checks_module():
    """Under xdist the controller imports a warning's class to show it; a checks module is not
    importable there, so a warning defined in one crashes the run (INTERNALERROR) the first time a
    check warns on a worker. The checks' warnings live in fixtures/outcome.py."""
    defined = []
    for path in sorted((REPO / "checks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(base, "id", getattr(base, "attr", "")).endswith("Warning") for base in node.bases):
                defined.append(f"{path.name}: {node.name}")
    assert not defined, defined
