"""Which back end a sweep runs on (orgtwin/sweeps/choice.py and the sweep's use of it).

``runner="auto"`` picks Ray only when Ray, start-up included, should finish the work left
sooner than this process alone; ``runner="ray"`` and a cluster address always use Ray.
The choice is tested as a function and through a sweep whose Ray back end is a stand-in,
so no Ray starts here (``test_runtime.py`` and ``test_executors.py`` run the real one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps import api
from orgtwin.sweeps.choice import RAY_START_S, choose_runner
from orgtwin.sweeps.executors import RayBackend, SerialBackend


def test_a_twelve_run_sweep_of_seconds_runs_serially():
    # The sweep: 12 runs of about 1.2 s took 14 s serially and 24 s on Ray. After
    # the pilot 11 runs are left: 13 s serially against 25 s of Ray's start-up alone.
    for workers in (2, 16):
        choice = choose_runner(n_runs=11, run_s=1.2, workers=workers)
        assert choice.runner == "serial", choice.reason
        assert choice.serial_s == pytest.approx(13.2)
        assert choice.ray_s > RAY_START_S
    assert choose_runner(n_runs=11, run_s=1.2, workers=2).reason.startswith("serial: Ray: 25 s")


def test_a_large_sweep_runs_on_ray():
    choice = choose_runner(n_runs=400, run_s=1.2, workers=2)
    assert choice.runner == "ray", choice.reason
    assert choice.ray_s == pytest.approx(RAY_START_S + 200 * 1.2)
    assert choice.ray_s < choice.serial_s == pytest.approx(480.0)


def test_one_worker_never_picks_ray():
    assert choose_runner(n_runs=100_000, run_s=5.0, workers=1).runner == "serial"


def test_the_break_even_is_where_ray_saves_its_start_up():
    # 2 workers halve the work: Ray wins once half the work exceeds its start-up.
    assert choose_runner(n_runs=40, run_s=1.0, workers=2).runner == "serial"  # 25 + 20 >= 40
    assert choose_runner(n_runs=60, run_s=1.0, workers=2).runner == "ray"  # 25 + 30 < 60


def test_auto_after_the_pilot_picks_ray_only_for_large_work(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    small, why = api._backend("auto", 2, n_runs=11, run_s=1.2)
    assert isinstance(small, SerialBackend) and why.startswith("serial: ")
    large, why = api._backend("auto", 2, n_runs=400, run_s=1.2)  # not entered: no Ray starts
    if isinstance(large, RayBackend):
        assert why.startswith("ray: ")
    else:  # Ray not installed: serial, and said so
        assert why == "serial: Ray is not installed"
    forced, why = api._backend("serial", 2, n_runs=400, run_s=1.2)
    assert isinstance(forced, SerialBackend) and why == "serial: asked for"


class _StandInRay(SerialBackend):
    """A Ray back end that runs its chunks here: records that the sweep chose Ray."""

    name = "ray"
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.workers = 2
        self.made.append(options)


@pytest.fixture
def stand_in_ray(monkeypatch: pytest.MonkeyPatch) -> type[_StandInRay]:
    _StandInRay.made = []
    monkeypatch.setattr(api, "RayBackend", _StandInRay)
    return _StandInRay


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"runner": "ray"}, "ray: asked for"),
        ({"address": "127.0.0.1:6379"}, "ray: a cluster was given (127.0.0.1:6379)"),
    ],
)
def test_an_explicit_ray_is_obeyed_however_small_the_sweep(
    small_scenario: Scenario, tmp_path: Path, stand_in_ray: type[_StandInRay],
    options: dict[str, Any], why: str,
):  # fmt: skip
    result = api.sweep(small_scenario, {"teams.platform.oncall_size": "1..2"}, seeds=1,
                       days=2, series="none", out=tmp_path, **options)  # fmt: skip
    assert result.runner == "ray" and result.why == why and result.runs.height == 2
    assert stand_in_ray.made == [{"address": options.get("address"), "workers": None}]


def test_auto_says_why_it_ran_a_small_sweep_serially(
    small_scenario: Scenario, tmp_path: Path, stand_in_ray: type[_StandInRay],
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = api.sweep(small_scenario, {"teams.platform.oncall_size": "1..3"}, seeds=4,
                       days=2, series="none", out=tmp_path)  # fmt: skip
    assert result.runner == "serial" and not stand_in_ray.made
    assert result.why.startswith("serial: Ray: 25 s to start")
