"""Fixtures for reading telemetry: folders of small CSV files, and the shared real data.

- ``make_folder(files)`` writes ``{relative path: text, bytes or DataFrame}`` into a
  fresh folder and returns it (text as is, ``.csv.gz`` compressed; bytes raw; a
  DataFrame as Parquet);
- ``real_data(name)`` is ``../shared/data/<name>`` beside the repository, or skips the
  test with the reason when it is absent (the data is never copied into the project).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[[dict[str, str | bytes | pl.DataFrame]], Path]:
    def make(files: dict[str, str | bytes | pl.DataFrame]) -> Path:
        folder = tmp_path / f"telemetry{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        for name, text in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, pl.DataFrame):
                text.write_parquet(path)
                continue
            if isinstance(text, bytes):
                path.write_bytes(text)
                continue
            data = text.encode()
            path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return folder

    return make


@pytest.fixture
def real_data() -> Callable[[str], Path]:
    def find(name: str) -> Path:
        folder = SHARED_DATA / name
        if not folder.is_dir():
            pytest.skip(f"real data {folder} is absent (it lives beside the project, not in it)")
        return folder

    return find
