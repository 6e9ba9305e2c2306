"""The layering rules of docs/architecture.md, checked on the source: which package may
import which, no import cycles between modules, no use of another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom: a module may import from its own layer and the layers below it.
LAYERS: list[set[str]] = [
    {"gancc.cli", "gancc.__main__"},
    {"gancc.commands"},
    {"gancc.build", "gancc.checks", "gancc.validation"},
    {"gancc.stages", "gancc.cache", "gancc.diff", "gancc.data_io", "gancc.recipes",
     "gancc.tf_bigbigan"},
    {"gancc.passes", "gancc.rewrites"},
    {"gancc.graph", "gancc.archs", "gancc.aipp", "gancc.spec", "gancc.onnx_io"},
    {"gancc", "gancc.errors", "gancc.fsutil", "gancc.versions", "gancc.dtypes", "gancc.metrics",
     "gancc.console", "gancc.gcpause", "gancc.data"},
]
# the spec front end parses and lowers only: nothing of the engine, graph core or build
FRONT_END_MAY_IMPORT = {"gancc.spec", "gancc.errors", "gancc.aipp", "gancc.dtypes", "gancc"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "gancc").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(p for p in parts if p != "__init__")] = path
    for path in sorted((ROOT / "rewrites").glob("*.py")):
        name = path.stem
        found["gancc.rewrites" + ("" if name == "__init__" else f".{name}")] = path
    return found


MODULES = _modules()


def _package(module: str) -> str:
    """The layer key of a module: gancc.<first part>, or gancc itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _layer(module: str) -> int:
    key = _package(module)
    for i, members in enumerate(LAYERS):
        if key in members:
            return i
    raise AssertionError(f"{module}: not in any layer of tests/test_architecture.py")


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[str, list[str], int]]:
    """(imported gancc module, names imported from it, line) for each import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "gancc":
            # `from gancc.spec import lower` imports the submodule, not the package
            subs = [a.name for a in node.names if f"{node.module}.{a.name}" in MODULES]
            out += [(f"{node.module}.{name}", [], node.lineno) for name in subs]
            names = [a.name for a in node.names if a.name not in subs]
            if names:
                out.append((node.module, names, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("gancc")]
    return out


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    mine = _layer(module)
    for imported, _, line in _imports(MODULES[module]):
        assert _layer(imported) >= mine, (
            f"{MODULES[module].relative_to(ROOT)}:{line} imports {imported}, a layer above "
            f"{_package(module)} (docs/architecture.md)")


def test_spec_front_end_imports_no_engine():
    for module, path in MODULES.items():
        if _package(module) != "gancc.spec":
            continue
        for imported, _, line in _imports(path):
            assert _package(imported) in FRONT_END_MAY_IMPORT, (
                f"{path.relative_to(ROOT)}:{line}: the spec front end imports {imported}")


def test_no_module_uses_another_modules_private_names():
    for module, path in MODULES.items():
        for imported, names, line in _imports(path):
            if imported == module:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{path.relative_to(ROOT)}:{line} imports {private} from {imported}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {a.asname or a.name.split(".")[-1] for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.module
                   and node.module.startswith("gancc") for a in node.names
                   if f"{node.module}.{a.name}" in MODULES}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} uses "
                                     f"{node.value.id}.{node.attr}, a private name")


def test_no_import_cycles_between_modules():
    """Module-level imports only: a function-level import is the sanctioned way to load
    something heavy late, and does not make a cycle at import time."""
    graph = {m: {i for i, _, _ in _imports(p, top_level_only=True) if i in MODULES and i != m}
             for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


MAX_FUNCTION_LINES = 60


def test_no_function_in_gancc_runs_past_sixty_lines():
    """A function a reader takes in at once (docs/architecture.md); split a longer one into
    named steps."""
    long = []
    for module, path in MODULES.items():
        if not module.startswith("gancc.") or module.startswith("gancc.rewrites"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)
