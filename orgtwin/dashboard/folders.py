"""The three folders the dashboard reads: scenarios in (and learned twins out), sweep
results in and out, telemetry in.

The dashboard lists and opens files only inside these folders. A name picked on a page
is joined to its folder, resolved (symbolic links and ``..`` followed) and refused unless
it still lies inside the folder. Results are read as Parquet and JSON only, never pickle.

- scenarios: ``./scenarios`` or ``$ORGTWIN_SCENARIOS``; ``*.yaml``/``*.yml`` files in it.
- results: ``./results`` or ``$ORGTWIN_RESULTS``; a sweep is a sub-folder holding a
  ``manifest.json`` (see :mod:`orgtwin.sweeps.store`).
- telemetry: ``./telemetry`` or ``$ORGTWIN_TELEMETRY``; each sub-folder is a telemetry
  folder (see :mod:`orgtwin.telemetry.folder`), each ``*.yaml`` file in it a mapping file.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from orgtwin.errors import OrgTwinError

SCENARIOS_ENV = "ORGTWIN_SCENARIOS"
RESULTS_ENV = "ORGTWIN_RESULTS"
TELEMETRY_ENV = "ORGTWIN_TELEMETRY"
SCENARIO_SUFFIXES = (".yaml", ".yml")
MANIFEST = "manifest.json"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class FolderError(OrgTwinError, ValueError):
    """A file or folder outside the dashboard's folders was asked for, or one it may not
    overwrite."""


def scenarios_folder() -> Path:
    """The scenarios folder: ``$ORGTWIN_SCENARIOS``, else ``./scenarios``, resolved."""
    return Path(os.environ.get(SCENARIOS_ENV) or "scenarios").resolve()


def results_folder() -> Path:
    """The results folder: ``$ORGTWIN_RESULTS``, else ``./results``, resolved."""
    return Path(os.environ.get(RESULTS_ENV) or "results").resolve()


def telemetry_folder() -> Path:
    """The telemetry data root: ``$ORGTWIN_TELEMETRY``, else ``./telemetry``, resolved."""
    return Path(os.environ.get(TELEMETRY_ENV) or "telemetry").resolve()


def inside(folder: Path, name: str) -> Path:
    """``folder / name`` resolved, if it lies inside ``folder``.

    Raises:
        FolderError: the path leaves the folder (``..``, an absolute path, a link out).

    Example:
        >>> inside(Path("/srv/scenarios"), "price.yaml").name
        'price.yaml'
        >>> inside(Path("/srv/scenarios"), "../secrets.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        orgtwin.dashboard.folders.FolderError: ../secrets.yaml must be inside ...
    """
    root = folder.resolve()
    path = (root / name).resolve()
    if path != root and root not in path.parents:
        raise FolderError(f"{name} must be inside {root}, got a path outside it")
    return path


def list_scenarios(folder: Path) -> list[str]:
    """Names of the scenario files directly in ``folder`` (sorted; none if it is missing)."""
    if not folder.is_dir():
        return []
    names = []
    for path in sorted(folder.iterdir()):
        if path.suffix in SCENARIO_SUFFIXES and path.is_file():
            try:
                inside(folder, path.name)
            except FolderError:
                continue  # a link pointing out of the folder
            names.append(path.name)
    return names


def scenario_path(folder: Path, name: str) -> str:
    """The path of a listed scenario file, as a string for the library.

    Raises:
        FolderError: ``name`` is not a scenario file inside ``folder``.
    """
    path = inside(folder, name)
    if path.suffix not in SCENARIO_SUFFIXES or not path.is_file():
        raise FolderError(f"{name} must be a .yaml scenario file in {folder}, got none there")
    return str(path)


def folder_stamp(folder: Path) -> int:
    """Latest modification time of the scenario files in ``folder``, ns (0 if none).

    Part of every cache key, so editing a scenario (or a base it extends) re-runs it.
    """
    if not folder.is_dir():
        return 0
    times = [p.stat().st_mtime_ns for p in folder.iterdir() if p.suffix in SCENARIO_SUFFIXES]
    return max(times, default=0)


def list_sweeps(folder: Path) -> list[str]:
    """Sub-folders of ``folder`` that hold a sweep (a ``manifest.json``), newest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.is_dir() and (path / MANIFEST).is_file():
            try:
                inside(folder, path.name)
            except FolderError:
                continue
            found.append(path)
    found.sort(key=lambda p: (p / MANIFEST).stat().st_mtime_ns, reverse=True)
    return [p.name for p in found]


def sweep_folder(folder: Path, name: str) -> Path:
    """The path of a listed sweep folder.

    Raises:
        FolderError: ``name`` is not a sweep folder inside ``folder``.
    """
    path = inside(folder, name)
    if not (path / MANIFEST).is_file():
        raise FolderError(
            f"{name} must be a sweep folder (with {MANIFEST}) in {folder}, got none there"
        )
    return path


def sweep_stamp(path: Path) -> int:
    """Modification time of a sweep folder's runs, ns: changes when runs are added."""
    runs = path / "runs"
    stamps = [path / MANIFEST, runs] if runs.is_dir() else [path / MANIFEST]
    return max(p.stat().st_mtime_ns for p in stamps)


MAX_CLAIMS = 100
"""Names :func:`claim_sweep_folder` tries for one scenario and second."""


def new_sweep_name(scenario: str, when: datetime | None = None) -> str:
    """A fresh, safe folder name for a sweep launched from the dashboard.

    Example:
        >>> new_sweep_name("spot instances.yaml", datetime(2026, 1, 5, 9, 30, 0))
        'spot_instances-20260105-093000'
    """
    stem = _SAFE_NAME.sub("_", Path(scenario).stem).strip("._") or "sweep"
    return f"{stem}-{(when or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def claim_sweep_folder(folder: Path, scenario: str, when: datetime | None = None) -> Path:
    """A new, empty folder in ``folder`` for a sweep launched from the dashboard.

    The folder is made here, so two sessions launching the same scenario in the same
    second get two folders (the second named ``...-2``), never one between them.

    Raises:
        FolderError: no free name (after :data:`MAX_CLAIMS` tries).
    """
    base = new_sweep_name(scenario, when)
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, MAX_CLAIMS + 1):
        path = inside(folder, base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FolderError(
        f"a new sweep folder must be free in {folder}, got {base}-1..{MAX_CLAIMS} taken"
    )


# --------------------------------------------------------------------------- telemetry


def list_telemetry(root: Path) -> tuple[list[str], list[str]]:
    """The telemetry folders (sub-folders) and mapping files (``*.yaml``) directly in
    ``root``, each sorted; none if it is missing. Hidden entries and links leading out of
    ``root`` are left out."""
    if not root.is_dir():
        return [], []
    found: list[str] = []
    mappings: list[str] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        try:
            inside(root, path.name)
        except FolderError:
            continue
        if path.is_dir():
            found.append(path.name)
        elif path.is_file() and path.suffix in SCENARIO_SUFFIXES:
            mappings.append(path.name)
    return found, mappings


def telemetry_path(root: Path, name: str) -> Path:
    """The path of a listed telemetry folder.

    Raises:
        FolderError: ``name`` is not a folder inside ``root``.
    """
    path = inside(root, name)
    if path == root.resolve() or not path.is_dir():
        raise FolderError(f"{name} must be a telemetry folder in {root}, got none there")
    return path


def mapping_path(root: Path, name: str) -> Path:
    """The path of a listed mapping file.

    Raises:
        FolderError: ``name`` is not a ``.yaml`` file inside ``root``.
    """
    path = inside(root, name)
    if path.suffix not in SCENARIO_SUFFIXES or not path.is_file():
        raise FolderError(f"{name} must be a .yaml mapping file in {root}, got none there")
    return path


def tree_stamp(path: Path) -> int:
    """Latest modification time of ``path`` and every file under it, ns (0 if missing).

    Part of the learning cache key, so new or edited telemetry is learned again.
    """
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_mtime_ns
    times = [path.stat().st_mtime_ns]
    times += [p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()]
    return max(times)


def safe_name(name: str, fallback: str = "twin") -> str:
    """``name`` as a file-name stem: letters, digits, ``_``, ``.`` and ``-`` only.

    Example:
        >>> safe_name("acme twin/../x")
        'acme_twin_.._x'
        >>> safe_name("  ")
        'twin'
    """
    stem = _SAFE_NAME.sub("_", name.strip()).strip("._")
    return stem or fallback


def claim_file(folder: Path, name: str) -> Path:
    """A new, empty file ``name`` in ``folder``, made here with an exclusive create.

    Raises:
        FolderError: ``name`` leaves the folder, or a file of that name exists already
            (it is never overwritten).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = inside(folder, name)
    try:
        with path.open("x", encoding="utf-8"):
            pass
    except FileExistsError:
        raise FolderError(
            f"{name} must be a new file in {folder.name}, got one of that name already: "
            "choose another name"
        ) from None
    return path
