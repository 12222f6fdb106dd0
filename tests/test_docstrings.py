"""The examples in the docstrings run and print what they say (SimPy-style executable docs).

Examples use paths relative to the repository root, so every module's doctests run there.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import orgtwin.agents
import pytest

import orgtwin

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    module.name
    for package in (orgtwin, orgtwin.agents)
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if not module.name.startswith("orgtwin.dashboard.pages")
)
WITH_EXAMPLES = [
    "orgtwin",
    "orgtwin.scenario.load",
    "orgtwin.world.model",
    "orgtwin.runs.runner",
    "orgtwin.runs.comparison",
    "orgtwin.behaviours.users",
]
"""Main entry points whose docstrings must carry a runnable example."""


def run_doctests(name: str) -> doctest.TestResults:
    module = importlib.import_module(name)
    return doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)


@pytest.mark.parametrize("name", ["orgtwin", *MODULES])
def test_doctests_pass(name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)
    result = run_doctests(name)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_entry_points_have_examples(name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)
    assert run_doctests(name).attempted > 0


MAIN = [
    "load_scenario", "Scenario", "OrgModel", "simulate", "run", "RunSet", "compare",
    "compare_scenarios", "sweep", "SweepResult",
]  # fmt: skip
"""The public names of the main story: each carries a runnable example."""


@pytest.mark.parametrize("name", MAIN)
def test_the_main_story_has_runnable_examples_none_skipped(name: str):
    doc = getattr(orgtwin, name).__doc__ or ""
    assert ">>>" in doc, f"orgtwin.{name} has no example"
    assert "+SKIP" not in doc, f"orgtwin.{name} skips its example"


def test_no_example_of_the_package_is_skipped():
    skipped = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "orgtwin").rglob("*.py")
        if "doctest: +SKIP" in path.read_text(encoding="utf-8")
    ]
    assert not skipped


def test_every_module_is_collected():
    assert {"orgtwin.world.model", "orgtwin.cli", "orgtwin.agents.users"} <= set(MODULES)
