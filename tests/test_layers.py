"""The layout's arrows point one way: no import circle between modules or between sub-packages."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "search_spaces", "controllers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each module of ours -> the modules of ours it imports anywhere (top level or inside a function)."""
    modules = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [f"{node.module}.{alias.name}" for alias in node.names]
                targets |= {t if t in modules else node.module for t in found}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _layer(module: str) -> str:
    """The sub-package a module belongs to: ``nas.search``, ``nas.engine``...; ``nas.errors`` is ``nas``."""
    parts = module.split(".")
    if parts[0] != "nas":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 2 or (ROOT / "nas" / parts[-1]).is_dir() else "nas"


def test_no_import_circle_between_modules():
    assert _cycle(_imports()) is None


def test_no_import_circle_between_layers():
    layers: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        layers.setdefault(_layer(module), set()).update(_layer(t) for t in targets if _layer(t) != _layer(module))
    assert _cycle(layers) is None


def test_the_lower_layers_import_nothing_of_nas():
    """search_spaces/ and controllers/ know nothing of nas/ (the spec format lives in search_spaces)."""
    for module, targets in _imports().items():
        if module.split(".")[0] in ("search_spaces", "controllers"):
            assert not [t for t in targets if t.split(".")[0] == "nas"], module


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
