"""The package's shape: no import cycle in qa/, counting imports inside functions, and a
docstring that says each module's concern. Pure `ast`, nothing is imported or run."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qa"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The qa modules that `name` imports anywhere in its file (module level, in functions, under
    TYPE_CHECKING): `import qa.x`, `from qa.x import y`, `from .x import y`, `from . import x`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            modules_named = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            # `from . import render` imports the module qa.render; the package itself is already there
            targets = modules_named if len(modules_named) == len(node.names) else [base, *modules_named]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]  # `qa.ingest.files.read_text` -> qa.ingest.files
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path a -> ... -> a, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "qa.errors" in graph["qa.cli"]  # imported inside main(), relatively
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_in_qa():
    found = cycle(import_graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_every_module_says_its_concern():
    for name, path in modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc.strip(), f"{name} has no module docstring"
        assert len(doc.splitlines()[0]) <= 100, f"{name}: the first docstring line is its concern, in one line"


# The layers and what each may import besides itself. The foundation modules everyone shares
# (errors, paths, text, fileops, records) import only each other. The model and the engines
# depend on each other in one place each: the engines read the model folder's layout and
# resolve models (qa.model), and two qa.model modules run engines: the ONNX export checks its
# parity against the torch engine, `qa model` reports which engine runs the model.
FOUNDATION = {"qa.errors", "qa.paths", "qa.text", "qa.fileops", "qa.records"}
LAYERS = {
    "qa.ingest": set(),  # files into passages: no model, no engine, no index
    "qa.model": set(),  # which model and its files (but MODULE_ALLOWED)
    "qa.engines": {"qa.model", "qa.stores.location"},  # text into vectors; Ray needs the scale-extra check
    "qa.stores": set(),  # vector stores: ids and vectors, nothing of the model or the ranking
    "qa.index": {"qa.ingest", "qa.engines", "qa.stores"},
    "qa.ranking": {"qa.engines", "qa.model", "qa.stores", "qa.index"},
}
MODULE_ALLOWED = {"qa.model.export": {"qa.engines"}, "qa.model.check": {"qa.engines"}}
# The edges: only the command line, the REPL and the public API's lazy names reach them.
EDGES = {"qa.cli": {"qa.__main__"}, "qa.repl": {"qa.cli"}, "qa.render": {"qa.cli", "qa.repl"},
         "qa.evaluate": {"qa.cli"}}


def layer_of(module: str) -> str | None:
    return next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), None)


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a layer's (or a foundation) module that its place does not allow."""
    wrong = []
    for name, targets in graph.items():
        if name in FOUNDATION:
            wrong += [f"{name} imports {target}" for target in sorted(targets - FOUNDATION)]
            continue
        layer = layer_of(name)
        if layer is None:
            continue
        allowed = LAYERS[layer] | MODULE_ALLOWED.get(name, set())
        for target in sorted(targets - FOUNDATION):
            home = layer_of(target)
            if home != layer and target not in allowed and home not in allowed:
                wrong.append(f"{name} imports {target}")
    return wrong


def test_layers_import_only_what_is_below_them():
    wrong = layering_violations(import_graph())
    assert not wrong, "layering broken: " + "; ".join(wrong)


def test_the_library_never_imports_its_interfaces():
    graph = import_graph()
    for edge, importers in EDGES.items():
        found = {name for name, targets in graph.items()
                 if any(within(target, edge) for target in targets) and not within(name, edge)}
        wrong = {name for name in found if not any(within(name, importer) for importer in importers)}
        assert not wrong, f"{edge} is imported by {sorted(wrong)}"


def within(module: str, package: str) -> bool:
    """Whether `module` is `package` or one of its submodules."""
    return module == package or module.startswith(package + ".")


def test_the_layering_test_sees_a_wrong_import():
    graph = {"qa.engines.onnx_engine": {"qa.index.tokens", "qa.errors", "qa.engines.base"},
             "qa.ingest.files": {"qa.engines"}, "qa.index.reading": {"qa.stores.base"}, "qa.cli": {"qa.index"},
             "qa.records": {"qa.text", "qa.index"}, "qa.model.resolve": {"qa.engines"},
             "qa.model.export": {"qa.engines.onnx_engine"}}
    assert layering_violations(graph) == ["qa.engines.onnx_engine imports qa.index.tokens",
                                          "qa.ingest.files imports qa.engines", "qa.records imports qa.index",
                                          "qa.model.resolve imports qa.engines"]


def test_top_level_holds_only_the_interfaces_and_the_foundation():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__", "cli", "render", "evaluate", "embedding",
                   *(name.removeprefix("qa.") for name in FOUNDATION)}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == {"repl", *(name.removeprefix("qa.") for name in LAYERS)}
