"""The examples in the docstrings run and print what they say (SimPy-style executable docs).

Examples use paths relative to the repository root, so every module's doctests run there.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import agents
import orgtwin

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    module.name
    for package in (orgtwin, agents)
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
)
WITH_EXAMPLES = ["orgtwin.loading", "orgtwin.model", "orgtwin.runner", "orgtwin.behaviours"]
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
    assert {"orgtwin.model", "orgtwin.cli", "agents.users", "agents.services"} <= set(MODULES)
