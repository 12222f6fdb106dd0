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


def test_every_module_is_collected():
    assert {"orgtwin.world.model", "orgtwin.cli", "orgtwin.agents.users"} <= set(MODULES)
