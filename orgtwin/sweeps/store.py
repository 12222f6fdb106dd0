"""A sweep's results folder: manifest, design and Parquet shards, written atomically.

Layout of a folder::

    manifest.json                 what the sweep is (scenario hash, levers, design, seeds…)
    design.parquet                one row per point: ``point`` and one column per lever
    runs/part-<point>-<replicate>.parquet     one row per run of a chunk
    series/part-<point>-<replicate>.parquet   the chunk's series (unless series is "none")

A shard is named by the first unit of its chunk. Every file is written under a temporary
name in its own folder and renamed into place (``os.replace``), so a file is either
complete or absent. A chunk's series shard is written before its runs shard: the runs
shards alone say which runs are done, and a series shard without its runs shard (the
driver died between the two) is removed when the folder is opened again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from orgtwin.errors import SweepError
from orgtwin.scenario.spec import Scenario

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DESIGN = "design.parquet"
RUNS = "runs"
SERIES = "series"
TEMP_MARK = ".tmp-"
COMPARED = (
    "format_version",
    "scenario_sha256",
    "levers",
    "design",
    "n",
    "seeds",
    "seed",
    "seed_scheme",
    "days",
    "series",
)
"""Manifest fields that must agree for a sweep to resume into an existing folder."""
_SHARD = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


def scenario_sha256(scenario: Scenario) -> str:
    """SHA-256 of the canonical JSON of a scenario (what it simulates, not where it came from)."""
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True,
                           separators=(",", ":"))  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_atomic(path: Path, write: Any) -> None:
    """Write a file by ``write(temp_path)`` then rename it to ``path`` (same folder)."""
    temp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` as Parquet, atomically."""
    write_atomic(path, frame.write_parquet)


class SweepStore:
    """The results folder of one sweep.

    Args:
        out: the folder.

    Attributes:
        out: the folder.
        manifest: the manifest read or written (empty until :meth:`open` or :meth:`load`).
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.manifest: dict[str, Any] = {}

    @property
    def runs_dir(self) -> Path:
        """``<out>/runs``."""
        return self.out / RUNS

    @property
    def series_dir(self) -> Path:
        """``<out>/series``."""
        return self.out / SERIES

    # ----------------------------------------------------------------- open / create

    def open(self, manifest: Mapping[str, Any], design: pl.DataFrame) -> SweepStore:
        """Start a new sweep in the folder, or check that it holds this very sweep.

        Raises:
            SweepError: the folder holds another sweep (the first differing manifest
                field is named), or files that are not a sweep's.
        """
        path = self.out / MANIFEST
        if path.is_file():
            self._check_same(self._read_manifest(), manifest)
        else:
            self._check_empty()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        if manifest["series"] != "none":
            self.series_dir.mkdir(exist_ok=True)
        if not path.is_file():
            write_parquet_atomic(design, self.out / DESIGN)
            text = json.dumps(dict(manifest), indent=2) + "\n"
            write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))
        self.manifest = dict(manifest)
        self._tidy()
        return self

    def load(self) -> tuple[dict[str, Any], pl.DataFrame]:
        """Read an existing folder's manifest and design.

        Raises:
            SweepError: the folder is not a sweep's results folder.
        """
        self.manifest = self._read_manifest()
        return self.manifest, pl.read_parquet(self.out / DESIGN)

    def _read_manifest(self) -> dict[str, Any]:
        path = self.out / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SweepError(
                f"{path}: must be the manifest of a sweep, got an unreadable file ({exc})"
            ) from None
        if not isinstance(manifest, dict) or not (self.out / DESIGN).is_file():
            raise SweepError(f"{self.out}: must be a sweep's folder with {MANIFEST} and "
                             f"{DESIGN}, got an incomplete folder")  # fmt: skip
        return manifest

    def _check_same(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        for key in COMPARED:
            if old.get(key) != new.get(key):
                raise SweepError(
                    f"{self.out}: holds another sweep: its {key} must be {new.get(key)!r} "
                    f"to resume this one, got {old.get(key)!r} (use another --out, or delete "
                    "the folder to start over)"
                )

    def _check_empty(self) -> None:
        if not self.out.exists():
            self.out.mkdir(parents=True)
            return
        if not self.out.is_dir():
            raise SweepError(f"{self.out}: out must be a folder, got a file")
        strays = [p.name for p in self.out.iterdir()
                  if p.name not in (DESIGN, RUNS, SERIES) and TEMP_MARK not in p.name]  # fmt: skip
        if strays:
            raise SweepError(
                f"{self.out}: out must be an empty folder or a sweep's results folder, got "
                f"a folder with {', '.join(sorted(strays)[:3])} (use another --out)"
            )

    def _tidy(self) -> None:
        """Remove temporary files of an interrupted write and orphan series shards."""
        for folder in (self.out, self.runs_dir, self.series_dir):
            if folder.is_dir():
                for path in folder.glob(f".*{TEMP_MARK}*"):
                    path.unlink(missing_ok=True)
        if self.series_dir.is_dir():
            done = {p.name for p in self.runs_dir.glob("part-*.parquet")}
            for path in self.series_dir.glob("part-*.parquet"):
                if path.name not in done:
                    path.unlink()

    # ----------------------------------------------------------------- shards

    def shards(self, kind: str = RUNS) -> list[Path]:
        """The finished shards of ``kind`` (``"runs"`` or ``"series"``), by first unit."""
        folder = self.out / kind
        keyed = []
        for path in folder.glob("part-*.parquet"):
            match = _SHARD.match(path.name)
            if match:
                keyed.append(((int(match[1]), int(match[2])), path))
        return [path for _, path in sorted(keyed)]

    def done(self) -> pl.DataFrame:
        """``point`` and ``replicate`` of every run saved so far."""
        files = self.shards(RUNS)
        if not files:
            return pl.DataFrame(schema={"point": pl.Int64, "replicate": pl.Int64})
        return pl.scan_parquet(files).select("point", "replicate").collect()

    def write_chunk(self, runs: pl.DataFrame, series: pl.DataFrame | None) -> None:
        """Save one finished chunk: its series shard first, then its runs shard."""
        point, replicate = runs["point"][0], runs["replicate"][0]
        name = f"part-{point}-{replicate}.parquet"
        if series is not None:
            write_parquet_atomic(series, self.series_dir / name)
        write_parquet_atomic(runs, self.runs_dir / name)

    def read_runs(self) -> pl.DataFrame:
        """Every saved run, sorted by point and replicate."""
        files = self.shards(RUNS)
        if not files:
            raise SweepError(f"{self.out}: has no finished runs yet")
        return pl.read_parquet(files).sort("point", "replicate")

    def scan_series(self) -> pl.LazyFrame:
        """A lazy scan of every saved series shard.

        Raises:
            SweepError: the sweep kept no series, or none is saved yet.
        """
        if self.manifest.get("series") == "none":
            raise SweepError(
                f"{self.out}: series must be kept to scan them, got a sweep run with "
                "series='none' (rerun into another folder with series='daily' or 'hourly')"
            )
        files = self.shards(SERIES)
        if not files:
            raise SweepError(f"{self.out}: has no finished series yet")
        return pl.scan_parquet(files)
