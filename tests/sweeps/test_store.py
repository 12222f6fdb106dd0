"""A sweep's results folder (orgtwin/sweeps/store.py): written atomically, reopened, guarded.

A file is written under a temporary name and renamed into place, so a failed write
leaves nothing; a folder reopens with the runs and design it was written with; a folder
that holds another sweep (other options, scenario or levers) or other files is refused
with the differing field named; a series shard whose runs shard never came (the driver
died between the two) is removed when the folder is opened again.

One writer at a time: a second sweep into a folder that a sweep is writing to (in this
process or another) is refused with the holder's pid, and the first one finishes; the
lock of a process that died is taken over. Every file carries its sweep's fingerprint:
without the manifest, a folder of another sweep is refused, never adopted. Every shard
is checked on resume and on load: a truncated, corrupt, foreign or incomplete file, or
a run saved twice, is an error naming the file, and ``repair=True`` moves it to
``quarantine/`` and reruns its runs, ending with the rows of an uninterrupted sweep.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orgtwin import load_scenario
from orgtwin.errors import SweepError
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps import store as store_module
from orgtwin.sweeps.api import SweepResult, sweep
from orgtwin.sweeps.store import (
    FINGERPRINT_KEY,
    LOCK,
    TEMP_MARK,
    FolderLock,
    SweepStore,
    write_parquet_atomic,
)


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


# --------------------------------------------------------------------------- one writer


def test_a_second_sweep_while_one_writes_is_refused_and_the_first_finishes(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    refusals: list[str] = []

    def start_another(done: int, total: int, elapsed: float, eta: Any) -> None:
        if done and not refusals:  # the first chunk is saved: the folder is being written
            with pytest.raises(SweepError) as caught:
                tiny_sweep(small_scenario, tmp_path)
            refusals.append(str(caught.value))

    first = tiny_sweep(small_scenario, tmp_path, progress=start_another)
    assert refusals and f"pid {os.getpid()} on " in refusals[0]
    assert refusals[0].startswith(f"{tmp_path / LOCK}: the results folder must be free")
    assert "wait for it to finish" in refusals[0]
    assert first.runs.height == 18 and first.n_ran == 18
    assert first.runs.select("point", "replicate").is_duplicated().sum() == 0
    assert not (tmp_path / LOCK).exists(), "the lock is released when the sweep ends"
    assert tiny_sweep(small_scenario, tmp_path).n_ran == 0


def _hold_lock_in_another_process(out: Path) -> subprocess.Popen[str]:
    code = (
        "import sys; from orgtwin.sweeps.store import FolderLock; "
        "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_lock_held_by_another_process_refuses_and_a_dead_ones_is_taken_over(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    holder = _hold_lock_in_another_process(tmp_path)
    try:
        with pytest.raises(SweepError, match=rf"must be free, .*\(pid {holder.pid} on "):
            tiny_sweep(small_scenario, tmp_path, series="none")
    finally:
        holder.kill()  # dies without releasing: its lock file stays, with its pid
        holder.wait()
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == holder.pid
    result = tiny_sweep(small_scenario, tmp_path, series="none")
    assert result.n_ran == 18 and not (tmp_path / LOCK).exists()


def test_without_flock_the_pid_in_the_lock_file_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(store_module, "fcntl", None)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock = tmp_path / LOCK
    lock.write_text(json.dumps({"pid": int(done.stdout), "host": os.uname().nodename}))
    with FolderLock(tmp_path):  # a dead pid's lock is taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(SweepError, match=rf"\(pid {os.getpid()} on "):
            FolderLock(tmp_path).acquire()  # a live pid's lock is not
    assert not lock.exists()


# --------------------------------------------------------------------------- fingerprints


def test_every_file_carries_the_fingerprint_of_its_sweep(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    result = tiny_sweep(small_scenario, tmp_path)
    expected = result.manifest["fingerprint"]
    assert expected == json.loads((tmp_path / "manifest.json").read_text())["fingerprint"]
    files = [tmp_path / "design.parquet", *tmp_path.glob("runs/*"), *tmp_path.glob("series/*")]
    assert len(files) > 3
    assert {pl.read_parquet_metadata(f)[FINGERPRINT_KEY] for f in files} == {expected}
    other = tiny_sweep(small_scenario, tmp_path / "other", days=2, series="none")
    assert other.manifest["fingerprint"] != expected


def test_without_its_manifest_a_folder_of_another_sweep_is_refused_not_adopted(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    tiny_sweep(small_scenario, tmp_path)
    (tmp_path / "manifest.json").unlink()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SweepError, match="without manifest.json holding another sweep's files "
                       r"\(.*fingerprint must be .*use another --out"):  # fmt: skip
        tiny_sweep(small_scenario, tmp_path, days=2, seed=99)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing is touched"


def test_without_its_manifest_the_same_sweep_keeps_its_own_runs(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    first = tiny_sweep(small_scenario, tmp_path)
    (tmp_path / "manifest.json").unlink()
    again = tiny_sweep(small_scenario, tmp_path)
    assert again.n_ran == 0 and (tmp_path / "manifest.json").is_file()
    assert tiny_sweep.rows(again).equals(tiny_sweep.rows(first))


def test_a_folder_of_format_1_still_loads_but_does_not_resume(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    rows = tiny_sweep.rows(tiny_sweep(small_scenario, tmp_path, series="none"))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = 1
    del manifest["fingerprint"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for path in [tmp_path / "design.parquet", *tmp_path.glob("runs/*")]:
        pl.read_parquet(path).write_parquet(path)  # no fingerprint, as format 1 wrote them
    assert tiny_sweep.rows(SweepResult.load(tmp_path)).equals(rows)
    with pytest.raises(SweepError, match="its format_version must be 2 to resume this one, got 1"):
        tiny_sweep(small_scenario, tmp_path, series="none")


# --------------------------------------------------------------------------- bad files


def _rewrite(path: Path, change: Callable[[pl.DataFrame], pl.DataFrame],
             fingerprint: str | None = None) -> None:  # fmt: skip
    """Rewrite a Parquet file through ``change``, keeping (or replacing) its fingerprint."""
    metadata = {FINGERPRINT_KEY: fingerprint or pl.read_parquet_metadata(path)[FINGERPRINT_KEY]}
    change(pl.read_parquet(path)).write_parquet(path, metadata=metadata)


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


UNREADABLE = r"file must be readable Parquet, got a truncated or corrupt file \(parquet: "
DAMAGES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "runs cut in half": ("runs", _cut_in_half, UNREADABLE),
    "runs of a few bytes": (
        "runs", lambda p: p.write_bytes(p.read_bytes()[:7]), UNREADABLE
    ),
    "runs of garbage": (
        "runs", lambda p: p.write_bytes(os.urandom(3000)), UNREADABLE
    ),
    "runs without a KPI": (
        "runs", lambda p: _rewrite(p, lambda f: f.drop("availability_pct")),
        r"columns must include 'availability_pct' \(Float64\), got none",
    ),
    "runs with a column's type changed": (
        "runs", lambda p: _rewrite(p, lambda f: f.with_columns(pl.col("seed").cast(pl.String))),
        "column 'seed' must be Int64, got String",
    ),
    "runs of another sweep": (
        "runs", lambda p: _rewrite(p, lambda f: f, fingerprint="f" * 64),
        r"fingerprint must be .* got ffffffffffff… \(a file of another sweep\)",
    ),
    "runs missing a run": (  # found by its series shard, which holds that run too
        "runs", lambda p: _rewrite(p, lambda f: f.head(1).vstack(f.tail(-2))),
        r"runs must be the 4 successful runs of runs/part-0-1.parquet, got 5, with \(point 1, "
        r"replicate 0\)",
    ),
    "series cut in half": ("series", _cut_in_half, UNREADABLE),
    "series without its values": (
        "series", lambda p: _rewrite(p, lambda f: f.drop("value")),
        r"columns must include 'value' \(Float64\), got none",
    ),
    "series of a run less": (
        "series", lambda p: _rewrite(p, lambda f: f.filter(pl.col("replicate") == 0)),
        r"runs must be the 5 successful runs of runs/part-0-1.parquet, got 2, without \(point 0, "
        r"replicate 1\)",
    ),
    "design cut in half": ("design", _cut_in_half, UNREADABLE),
    "design of a few bytes": (
        "design", lambda p: p.write_bytes(b"PAR1"), UNREADABLE
    ),
}  # fmt: skip
"""Damage done to one file of a finished sweep: the file's folder, the damage, the error
(about that file, or about its series shard for a damage only the two together show)."""


def _target(out: Path, kind: str) -> Path:
    """The damaged file: the design, or a shard of several runs (``part-0-1``)."""
    return out / "design.parquet" if kind == "design" else out / kind / "part-0-1.parquet"


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_file_is_named_and_repair_reruns_its_runs(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any, damage: str
):
    kind, harm, problem = DAMAGES[damage]
    clean = tiny_sweep(small_scenario, tmp_path / "clean")
    out = tmp_path / "damaged"
    shutil.copytree(clean.out, out)
    path = _target(out, kind)
    assert pl.read_parquet(out / "runs" / "part-0-1.parquet").height == 5
    harm(path)

    named = re.escape(str(path)).replace("runs", "(runs|series)")
    hint = f"rerun the same sweep with --repair .* to move bad files to {re.escape(str(out))}"
    with pytest.raises(SweepError, match=rf"^{named}: {problem}.*{hint}/quarantine/") as on_load:
        loaded = SweepResult.load(out)
        _ = loaded.runs
        loaded.series()
    assert "Traceback" not in str(on_load.value)
    with pytest.raises(SweepError, match=rf"^{named}: {problem}.*{hint}"):
        tiny_sweep(small_scenario, out)

    repaired = tiny_sweep(small_scenario, out, repair=True)
    quarantined = out / "quarantine" / path.relative_to(out)
    assert quarantined in repaired.quarantined and quarantined.is_file()
    assert repaired.n_ran == (0 if kind == "design" else 5)
    assert tiny_sweep.rows(repaired).equals(tiny_sweep.rows(clean))
    key = ["point", "replicate"]
    series = repaired.series().collect().sort(key, maintain_order=True)
    assert series.equals(clean.series().collect().sort(key, maintain_order=True))
    assert tiny_sweep(small_scenario, out).n_ran == 0, "the repaired folder is whole"


def test_a_run_saved_twice_is_an_error_naming_both_shards(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    clean = tiny_sweep(small_scenario, tmp_path / "clean")
    out = tmp_path / "twice"
    shutil.copytree(clean.out, out)
    for kind in ("runs", "series"):  # part-1-0 repeats the last four runs of part-0-1
        copy = out / kind / "part-1-0.parquet"
        shutil.copy(out / kind / "part-0-1.parquet", copy)
        _rewrite(copy, lambda f: f.filter(pl.col("point") > 0))
    twice = r"run \(point 1, replicate 0\) must be in one shard only, got it in runs/"
    with pytest.raises(SweepError, match=rf"{out}/runs/part-0-1.parquet: {twice}part-1-0"):
        _ = SweepResult.load(out).runs
    with pytest.raises(SweepError, match="1 more bad file; rerun the same sweep with --repair"):
        tiny_sweep(small_scenario, out)
    repaired = tiny_sweep(small_scenario, out, repair=True)
    assert repaired.n_ran == 5 and len(repaired.quarantined) == 4
    assert tiny_sweep.rows(repaired).equals(tiny_sweep.rows(clean))


def test_a_corrupt_manifest_is_named_and_repair_rewrites_it(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    clean = tiny_sweep(small_scenario, tmp_path)
    (tmp_path / "manifest.json").write_text('{"format_version": 2, "sce')
    with pytest.raises(SweepError, match=r"manifest.json: must be the manifest of a sweep, got "
                       r"an unreadable file \(.*--repair"):  # fmt: skip
        tiny_sweep(small_scenario, tmp_path)
    repaired = tiny_sweep(small_scenario, tmp_path, repair=True)
    assert repaired.n_ran == 0 and (tmp_path / "quarantine" / "manifest.json").is_file()
    assert SweepResult.load(tmp_path).manifest == clean.manifest
