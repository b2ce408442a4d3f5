"""Imports: no module imports itself back through a chain (function-level imports count, imports
under TYPE_CHECKING do not); outside the command modules (`cli.py`, which compose stages) the
packages form one-way layers; package exports load on first use, and registering the CLI (what
`robot-irl --help` does) loads neither torch nor open_clip."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAZY_PACKAGES = ("robot_irl.retrieval", "robot_irl.irl", "robot_irl.models")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_export_resolves(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert getattr(pkg, name) is value  # kept on the package after the first read
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        pkg.not_a_name  # noqa: B018


def test_cli_registration_loads_no_torch():
    code = ("import sys; from robot_irl.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'open_clip', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_without_ray_nothing_imports_ray():
    """Ray is imported only when a command asks for --ray (here where Ray may be installed or not)."""
    code = ("import sys; from robot_irl.cli import build_parser; build_parser(); "
            "import robot_irl.record.sim_batch, robot_irl.keypoints.cli, robot_irl.core.cluster; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "False"


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("robot_irl", "sim"):
        for p in (ROOT / top).rglob("*.py"):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = p
    return mods


def _runtime_imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> project modules it imports at run time (anywhere in the file, not under
    TYPE_CHECKING); a name read from a lazy package counts as an import of the module behind it."""
    def target(base: str, name: str) -> str:
        if f"{base}.{name}" in mods:
            return f"{base}.{name}"
        exports = getattr(importlib.import_module(base), "_EXPORTS", {})
        return f"{base}.{exports[name]}" if name in exports else base

    edges: dict[str, set[str]] = {}
    for mod, path in mods.items():
        out: set[str] = set()

        def visit(node: ast.AST) -> None:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                nodes = node.orelse
            else:
                if isinstance(node, ast.Import):
                    out.update(a.name for a in node.names if a.name in mods)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in mods:
                    out.update(target(node.module, a.name) for a in node.names)
                nodes = list(ast.iter_child_nodes(node))
            for child in nodes:
                visit(child)

        visit(ast.parse(path.read_text()))
        edges[mod] = out - {mod}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles_between_modules():
    assert _cycles(_runtime_imports(_modules())) == []


def test_packages_form_one_way_layers_outside_the_command_modules():
    def package(mod: str) -> str:
        parts = mod.split(".")
        return "sim" if parts[0] == "sim" else ".".join(parts[:2])

    layers: dict[str, set[str]] = defaultdict(set)
    for mod, deps in _runtime_imports(_modules()).items():
        if mod.rsplit(".", 1)[-1] == "cli":
            continue
        layers[package(mod)].update(package(d) for d in deps if package(d) != package(mod))
    assert _cycles(layers) == []
    # the ground floor: the simulator and the shared types stand on nothing but each other and errors
    assert layers["sim"] <= {"robot_irl.core", "robot_irl.errors"}
    assert layers["robot_irl.core"] <= {"robot_irl.errors"}


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
