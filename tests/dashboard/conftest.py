"""Fixtures the dashboard's AppTest files share: the bundled scenarios with an empty
results folder, and a small sweep in it."""

from __future__ import annotations

from pathlib import Path

import pytest

import orgtwin
from orgtwin.dashboard import folders

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty results folder, and the bundled scenarios, as the dashboard's folders."""
    out = tmp_path / "results"
    out.mkdir()
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(SCENARIOS))
    monkeypatch.setenv(folders.RESULTS_ENV, str(out))
    return out


@pytest.fixture
def small_sweep(results_dir: Path) -> Path:
    """A 3 × 2 grid × 2 seeds sweep of the baseline (12 runs of 3 days) in the results."""
    out = results_dir / "oncall-spot"
    orgtwin.sweep(
        SCENARIOS / "baseline.yaml",
        ["teams.*.oncall_size=2..4", "services.*.spot_share=0,0.6"],
        seeds=2,
        days=3,
        runner="serial",
        series="none",
        out=out,
    )
    return out
