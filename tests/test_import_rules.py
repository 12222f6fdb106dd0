"""Import rules: the dependency direction of the design, checked on the source and at run time.

``agents`` sits below the engine: it never imports ``orgtwin``, polars, ray or streamlit.
Learned behaviours do not import mesa. Importing ``orgtwin`` pulls in neither Ray nor
Streamlit and changes no global state.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AGENTS = sorted((ROOT / "agents").glob("*.py"))
ENGINE = sorted(p for p in (ROOT / "orgtwin").rglob("*.py") if "dashboard" not in p.parts)
AGENTS_MUST_NOT_IMPORT = {"polars", "ray", "streamlit", "app"}


def imported_roots(path: Path) -> set[str]:
    """Top-level package of every import in a module, wherever the import sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside the module's own package
                roots.add(path.parent.name)
            elif node.module:
                roots.add(node.module.split(".")[0])
        elif _is_import_module_call(node):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def _is_import_module_call(node: ast.AST) -> bool:
    """``importlib.import_module("name")`` with a literal name."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "import_module"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
    )


def test_the_walk_finds_imports():
    assert {"numpy", "mesa"} <= imported_roots(ROOT / "agents" / "services.py")
    assert "orgtwin" in imported_roots(ROOT / "orgtwin" / "world" / "model.py")


@pytest.mark.parametrize("path", AGENTS, ids=lambda p: p.name)
def test_agents_import_no_engine_ui_or_sweep(path: Path):
    assert not imported_roots(path) & AGENTS_MUST_NOT_IMPORT


@pytest.mark.parametrize("path", sorted((ROOT / "orgtwin" / "behaviours").glob("*.py")), ids=str)
def test_behaviours_do_not_import_mesa_or_agents(path: Path):
    roots = imported_roots(path)
    assert not roots & {"mesa", "agents", "polars", "ray", "streamlit", "sklearn"}


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_engine_imports_no_ui_and_ray_only_where_sweeps_run(path: Path):
    roots = imported_roots(path)
    assert not roots & {"streamlit", "app"}
    if path.parent.name != "sweeps":
        assert "ray" not in roots


def run_python(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_behaviours_load_without_mesa():
    """orgtwin.behaviours alone: it works and neither mesa nor scikit-learn is loaded."""
    code = """
import json, sys
from orgtwin.behaviours import LatencyCurve
curve = LatencyCurve()
print(json.dumps({"mesa": "mesa" in sys.modules, "sklearn": "sklearn" in sys.modules,
                  "p50": float(curve.predict([0.0])[0])}))
"""
    out = run_python(code)
    assert out == {"mesa": False, "sklearn": False, "p50": 20.0}


def test_importing_orgtwin_loads_no_ray_or_streamlit_and_keeps_global_state():
    """Import the dependencies first, snapshot the global state, then import the engine."""
    code = """
import json, multiprocessing, pkgutil, importlib, random, sys, warnings
import numpy as np
import mesa, polars, pydantic, sklearn, yaml
np_state, py_state = np.random.get_state(), random.getstate()
filters = list(warnings.filters)
start_method = multiprocessing.get_start_method(allow_none=True)  # mesa sets it on import
import orgtwin, orgtwin.agents
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
