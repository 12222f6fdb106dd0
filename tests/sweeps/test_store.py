"""A sweep's results folder (orgtwin/sweeps/store.py): written atomically, reopened, guarded.

A file is written under a temporary name and renamed into place, so a failed write
leaves nothing; a folder reopens with the runs and design it was written with; a folder
that holds another sweep (other options, scenario or levers) or other files is refused
with the differing field named; a series shard whose runs shard never came (the driver
died between the two) is removed when the folder is opened again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orgtwin import load_scenario
from orgtwin.errors import SweepError
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.api import SweepResult, sweep
from orgtwin.sweeps.store import TEMP_MARK, SweepStore, write_parquet_atomic


def test_an_atomic_write_that_fails_leaves_nothing(tmp_path: Path):
    class Broken(pl.DataFrame):
        def write_parquet(self, file: Any, *args: Any, **kwargs: Any) -> None:
            Path(file).write_bytes(b"half a file")
            raise OSError("disk full")

    target = tmp_path / "part-0-0.parquet"
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(Broken({"a": [1]}), target)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_reopens_with_its_runs_and_design(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    result = tiny_sweep(small_scenario, tmp_path)
    manifest = (tmp_path / "manifest.json").read_text()
    assert result.manifest["scenario_sha256"] in manifest
    assert result.manifest["seed_scheme"].startswith("crn")
    loaded = SweepResult.load(tmp_path)
    assert loaded.levers == result.levers
    assert loaded.design.equals(result.design)
    assert tiny_sweep.rows(loaded).equals(tiny_sweep.rows(result))
    assert not tiny_sweep.temp_files(tmp_path)


def test_no_series_kept_means_no_scan(small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any):
    result = tiny_sweep(small_scenario, tmp_path, series="none")
    assert not (tmp_path / "series").exists()
    with pytest.raises(SweepError, match="series must be kept"):
        result.series()


def test_an_orphan_series_shard_and_temporary_files_are_removed_on_reopening(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    tiny_sweep(small_scenario, tmp_path)
    store = SweepStore(tmp_path)
    manifest, design = store.load()
    shards = store.shards("series")
    assert [p.name for p in shards] == [p.name for p in store.shards("runs")]
    orphan = store.series_dir / "part-99-0.parquet"
    orphan.write_bytes(shards[0].read_bytes())
    stray = store.runs_dir / f".part-98-0.parquet{TEMP_MARK}12345"
    stray.write_bytes(b"half a file")

    SweepStore(tmp_path).open(manifest, design)

    assert not orphan.exists() and not stray.exists()
    assert [p.name for p in store.shards("series")] == [p.name for p in shards]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seeds": 3}, "seeds"),
        ({"days": 2}, "days"),
        ({"series": "none"}, "series"),
        ({"common_random_numbers": False}, "seed_scheme"),
        ({"seed": 99}, "seed"),
    ],
)
def test_another_sweep_in_the_same_folder_is_refused(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any, change: dict[str, Any], field: str
):
    first = {"series": "daily"} if field == "series" else {"series": "none"}
    tiny_sweep(small_scenario, tmp_path, **first)
    with pytest.raises(SweepError, match=rf"its {field} must be .*delete the folder"):
        tiny_sweep(small_scenario, tmp_path, **({"series": "none"} | change))


def test_another_scenario_or_levers_in_the_same_folder_is_refused(
    small_spec: dict[str, Any], tmp_path: Path, tiny_sweep: Any
):
    original = load_scenario(small_spec)
    tiny_sweep(original, tmp_path, series="none")
    with pytest.raises(SweepError, match="its levers must be"):
        sweep(original, {"teams.web.oncall_size": "1..2"}, out=tmp_path)
    small_spec["teams"]["web"]["headcount"] = 7
    with pytest.raises(SweepError, match="its scenario_sha256 must be"):
        tiny_sweep(load_scenario(small_spec), tmp_path, series="none")


def test_a_folder_of_other_files_is_refused(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="empty folder or a sweep's results folder"):
        tiny_sweep(small_scenario, tmp_path)
