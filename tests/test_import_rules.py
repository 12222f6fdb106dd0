"""Import rules: the layering of the stage packages, checked on the source and at run time.

The stages, lowest first (:data:`LAYERS`): a module may import its own stage and the
stages below it, never one above. The module graph has no cycle, not even through
``TYPE_CHECKING`` imports. ``orgtwin.agents`` imports from orgtwin only the declared
types and protocols it is handed; the dashboard only the public packages. Ray, Streamlit
and scikit-learn are imported only where they are used, and importing ``orgtwin`` loads
none of them and changes no global state.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    "errors", "units", "scenario", "behaviours", "telemetry", "agents", "world", "learn",
    "fidelity", "runs", "sweeps", "explore", "cli", "dashboard",
)  # fmt: skip
"""The stages in the order data flows through them; ``learn`` and ``fidelity`` are the
places of the next capabilities."""
CROSS_CUTTING = {"orgtwin.errors", "orgtwin.units", "orgtwin.cli"}
"""The only modules of orgtwin that are not in a stage package (besides the facade)."""
AGENTS_MAY_IMPORT = {
    "orgtwin.units",  # the clock, time constants
    "orgtwin.telemetry.series",  # the names of the figures a team counts
    "orgtwin.telemetry.recording",  # the event log's type
    "orgtwin.scenario.organisation",  # the specs agents are built from
    "orgtwin.behaviours",  # the behaviours' types
}
PUBLIC = {"orgtwin", "orgtwin.explore", "orgtwin.learn", "orgtwin.fidelity", "orgtwin.runs",
          "orgtwin.sweeps", "orgtwin.errors", "orgtwin.units"}  # fmt: skip
"""What the dashboard may import besides itself."""


def module_files() -> dict[str, Path]:
    """Every module of the installed package: dotted name -> file."""
    found = {}
    for path in sorted((ROOT / "orgtwin").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(p for p in parts if p != "__init__")] = path
    for path in sorted((ROOT / "agents").glob("*.py")):
        name = "orgtwin.agents" if path.stem == "__init__" else f"orgtwin.agents.{path.stem}"
        found[name] = path
    return found


MODULES = module_files()


def imports_of(name: str) -> set[str]:
    """The orgtwin modules a module imports, wherever the import sits (TYPE_CHECKING too)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {imported for imported in found if imported.split(".")[0] == "orgtwin"}


def third_party_of(path: Path) -> set[str]:
    """Top-level names of the non-orgtwin packages a file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots - {"orgtwin"}


def stage(name: str) -> str | None:
    """The stage of a module (``None`` for the facade, ``orgtwin`` itself)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_walk_finds_imports():
    assert "orgtwin.agents.teams" in imports_of("orgtwin.world.model")
    assert "orgtwin.scenario.interventions" in imports_of("orgtwin.world.effects")
    assert {"numpy", "mesa"} <= third_party_of(MODULES["orgtwin.agents.services"])


def test_every_module_sits_in_a_stage_package_or_is_cross_cutting():
    flat = {
        name
        for name, path in MODULES.items()
        if path.parent == ROOT / "orgtwin" and path.stem != "__init__"
    }
    assert flat <= CROSS_CUTTING, f"modules outside the stage packages: {flat - CROSS_CUTTING}"
    assert {stage(name) for name in MODULES} - {None} <= set(LAYERS)


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_a_stage_imports_only_its_own_and_lower_stages(name: str):
    here = stage(name)
    if here is None:
        return  # the facade re-exports the public names of every stage
    higher = {
        imported
        for imported in imports_of(name)
        if (stage(imported) is None and here not in ("cli", "dashboard"))
        or (stage(imported) is not None and LAYERS.index(stage(imported)) > LAYERS.index(here))
    }
    assert not higher, f"{name} ({here}) imports a higher stage: {sorted(higher)}"


def dynamic_imports_of(name: str) -> list[str]:
    """What a module imports by name (``importlib.import_module(...)``, ``__import__(...)``):
    the string given, or ``"<computed>"`` when the name is not a literal."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                arg = node.args[0]
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                found.append(arg.value if literal else "<computed>")
    return found


@pytest.mark.parametrize("name", [n for n in sorted(MODULES) if stage(n)], ids=str)
def test_no_stage_reaches_a_higher_one_by_name(name: str):
    """The rule holds for imports by name too: a literal of the module's own stage or below."""
    here = LAYERS.index(stage(name))  # type: ignore[arg-type]
    for imported in dynamic_imports_of(name):
        assert imported != "<computed>", f"{name} imports a module whose name it computes"
        there = stage(imported)
        if imported.split(".")[0] == "orgtwin" and there in LAYERS:
            assert LAYERS.index(there) <= here, f"{name} imports {imported} by name"


def test_the_walk_finds_imports_by_name():
    assert dynamic_imports_of("orgtwin.sweeps") == ["orgtwin.sweeps.analysis"]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of a directed graph (its nodes, in order), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> Iterator[list[str]]:
        for child in sorted(graph.get(node, ())):
            if child in path:
                yield path[path.index(child) :]
            elif child not in done:
                yield from visit(child, [*path, child])
        done.add(node)

    for root in sorted(graph):
        if root not in done:
            cycle = next(visit(root, [root]), None)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_not_even_through_type_checking():
    graph = {name: imports_of(name) - {name} for name in MODULES}
    graph = {
        name: {m for m in imported if not (m == "orgtwin" or name.startswith(f"{m}."))}
        for name, imported in graph.items()
    }  # a package's own __init__ is imported when a submodule is: not a cycle
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", [n for n in MODULES if stage(n) == "agents"], ids=str)
def test_agents_import_only_the_types_they_are_handed(name: str):
    allowed = {m for m in imports_of(name) if m.startswith(tuple(AGENTS_MAY_IMPORT))}
    assert imports_of(name) - {"orgtwin.agents"} == allowed
    assert not third_party_of(MODULES[name]) & {"polars", "ray", "streamlit", "sklearn"}


@pytest.mark.parametrize("name", [n for n in MODULES if stage(n) == "dashboard"], ids=str)
def test_the_dashboard_imports_only_public_packages(name: str):
    outside = {m for m in imports_of(name) if stage(m) != "dashboard"}
    assert outside <= PUBLIC, f"{name} reaches into {sorted(outside - PUBLIC)}"


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_ray_streamlit_and_scikit_learn_only_where_they_are_used(name: str):
    roots = third_party_of(MODULES[name])
    if name != "orgtwin.sweeps.runtime":  # Ray's one home: the runtime of sweeps
        assert "ray" not in roots
    if stage(name) != "dashboard":
        assert "streamlit" not in roots
    if name not in ("orgtwin.sweeps.analysis",) and stage(name) not in ("learn", "fidelity"):
        assert "sklearn" not in roots
    if stage(name) == "behaviours":
        assert not roots & {"mesa", "polars"}


def run_python(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_behaviours_load_without_mesa_or_scikit_learn():
    """orgtwin.behaviours alone: it works and neither mesa nor scikit-learn is loaded."""
    code = """
import json, sys
from orgtwin.behaviours import LatencyCurve
curve = LatencyCurve()
print(json.dumps({"mesa": "mesa" in sys.modules, "sklearn": "sklearn" in sys.modules,
                  "p50": float(curve.predict([0.0])[0])}))
"""
    assert run_python(code) == {"mesa": False, "sklearn": False, "p50": 20.0}


def test_importing_orgtwin_loads_no_ray_or_streamlit_and_keeps_global_state():
    """Import the dependencies first, snapshot the global state, then import the engine."""
    code = """
import json, multiprocessing, pkgutil, importlib, random, sys, warnings
import numpy as np
import mesa, polars, pydantic, yaml, sklearn.preprocessing  # sklearn loads rich: random draws
np_state, py_state = np.random.get_state(), random.getstate()
filters = list(warnings.filters)
start_method = multiprocessing.get_start_method(allow_none=True)  # mesa sets it on import
import orgtwin, orgtwin.agents
lazy = sorted(m for m in ("mesa", "sklearn", "orgtwin.world") if m in sys.modules)
modules = [m.name for p in (orgtwin, orgtwin.agents)
           for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")
           if not m.name.startswith("orgtwin.dashboard")]
for name in modules:
    importlib.import_module(name)
after = np.random.get_state()
print(json.dumps({
    "modules": modules,
    "loaded": sorted(m for m in ("ray", "streamlit", "app") if m in sys.modules),
    "numpy_random": bool(after[0] == np_state[0] and (after[1] == np_state[1]).all()
                         and after[2:] == np_state[2:]),
    "python_random": random.getstate() == py_state,
    "warnings": list(warnings.filters) == filters,
    "start_method": multiprocessing.get_start_method(allow_none=True) == start_method,
}))
"""
    out = run_python(code)
    assert "orgtwin.world.model" in out["modules"] and "orgtwin.agents.users" in out["modules"]
    assert out["loaded"] == []
    assert out["numpy_random"] and out["python_random"]
    assert out["warnings"], "importing orgtwin must not change warning filters"
    assert out["start_method"], "importing orgtwin must not change the start method"


def test_importing_orgtwin_alone_loads_only_its_errors():
    code = """
import json, sys
import orgtwin
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("orgtwin.", "mesa", "polars")))))
"""
    assert run_python(code) == ["orgtwin.errors"]


@pytest.mark.parametrize("layer", [s for s in LAYERS if s != "dashboard"])
def test_importing_a_stage_loads_no_higher_stage(layer: str):
    """Every module of a stage, imported in a fresh interpreter, loads none above it.

    (The dashboard is the top stage: nothing sits above it, and its pages run when loaded.)
    """
    names = sorted(n for n in MODULES if stage(n) == layer)
    code = f"""
import importlib, json, sys
for name in {names!r}:
    importlib.import_module(name)
print(json.dumps(sorted({{m.split(".")[1] for m in sys.modules if m.startswith("orgtwin.")}})))
"""
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    loaded = set(run_python(code))
    assert not loaded & above, f"importing orgtwin.{layer} loads {sorted(loaded & above)}"
