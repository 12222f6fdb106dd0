"""The built wheel installs exactly one top-level import name, ``orgtwin``, and every module.

The ``agents/`` folder at the repository's top installs as ``orgtwin.agents`` (setuptools
``package-dir``), so orgtwin never claims a generic name such as ``agents``, which other
packages use too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "orgtwin", "agents")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file names inside the wheel built from a copy of the sources."""
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--quiet", "--wheel-dir", str(out), str(tree)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = out.glob("orgtwin-*.whl")
    return zipfile.ZipFile(wheel).namelist()


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name(wheel_names: list[str]):
    tops = {name.split("/")[0] for name in wheel_names}
    tops = {top for top in tops if not top.endswith(".dist-info")}
    assert tops == {"orgtwin"}


@pytest.mark.slow
def test_the_agents_install_as_orgtwin_agents(wheel_names: list[str]):
    agents = {Path(n).name for n in wheel_names if n.startswith("orgtwin/agents/")}
    assert agents == {p.name for p in (ROOT / "agents").glob("*.py")}


@pytest.mark.slow
def test_every_module_of_the_source_tree_is_in_the_wheel(wheel_names: list[str]):
    files = (ROOT / "orgtwin").rglob("*")
    expected = {
        str(p.relative_to(ROOT))
        for p in files
        if p.suffix in (".py", ".svg") and "__pycache__" not in p.parts
    }
    assert expected <= set(wheel_names), sorted(expected - set(wheel_names))
