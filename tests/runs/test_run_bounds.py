"""The bounds of a run's settings (orgtwin/runs/runner.py): days, seeds and seed.

``orgtwin.run`` and ``orgtwin.simulate`` take the bounds a scenario file's ``days``,
``seeds`` and ``seed`` declare, read from the fields themselves, and refuse a value out
of them with a :class:`RunError` before building anything: ``days=1_000_000_000`` once
tried to allocate 22 GiB, ``seeds=1_000_000`` ran for ever.
"""

from __future__ import annotations

import annotated_types
import pytest

from orgtwin.errors import RunError
from orgtwin.runs import runner
from orgtwin.scenario.spec import Scenario


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a model fails the test: a refused setting must stop before it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was built for settings out of bounds")

    monkeypatch.setattr(runner, "OrgModel", refuse)


def test_the_bounds_are_the_scenario_fields() -> None:
    assert runner.setting_bounds("days") == (1, 3650)
    assert runner.setting_bounds("seeds") == (1, 1000)
    assert runner.setting_bounds("seed") == (0, None)
    assert runner.check_setting("days", 3650) == 3650
    assert runner.check_setting("seed", 2**62) == 2**62


def test_the_bounds_follow_the_declarations(monkeypatch: pytest.MonkeyPatch) -> None:
    field = Scenario.model_fields["days"]
    monkeypatch.setattr(field, "metadata", [annotated_types.Gt(2), annotated_types.Lt(9)])
    assert runner.setting_bounds("days") == (3, 8)
    with pytest.raises(RunError, match="days must be a whole number between 3 and 8, got 9"):
        runner.check_setting("days", 9)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("days", 1_000_000_000, "days must be a whole number between 1 and 3650, got 1000000000"),
        ("days", 3651, "days must be a whole number between 1 and 3650, got 3651"),
        ("days", 0, "days must be a whole number between 1 and 3650, got 0"),
        ("days", 2.5, "days must be a whole number between 1 and 3650, got 2.5"),
        ("seeds", 1_000_000, "seeds must be a whole number between 1 and 1000, got 1000000"),
        ("seeds", 0, "seeds must be a whole number between 1 and 1000, got 0"),
        ("seeds", True, "seeds must be a whole number between 1 and 1000, got True"),
        ("seed", -1, "seed must be a whole number >= 0, got -1"),
    ],
)
def test_run_refuses_settings_out_of_bounds_before_building_anything(
    small_scenario: Scenario, no_model: None, setting: str, value: object, message: str
) -> None:
    with pytest.raises(RunError) as info:
        runner.run(small_scenario, **{"days": 1, "seeds": 1, setting: value})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": 1, "days": 100_000}, "days must be a whole number between 1 and 3650"),
        ({"seed": -5, "days": 1}, "seed must be a whole number >= 0, got -5"),
    ],
)
def test_simulate_refuses_settings_out_of_bounds(
    small_scenario: Scenario, no_model: None, options: dict[str, int], message: str
) -> None:
    with pytest.raises(RunError, match=message):
        runner.simulate(small_scenario, **options)
