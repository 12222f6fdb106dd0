"""Designs: which lever values a sweep runs, one row per point.

:func:`grid` takes every combination of every lever's levels; :func:`latin_hypercube`
takes ``n`` points, each lever's range cut into ``n`` strata and each stratum used once.
A design is a polars frame: ``point`` and one column per lever path. Levers themselves
(their paths and values) are part of the scenario format: :mod:`orgtwin.scenario.levers`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from orgtwin.errors import LeverError
from orgtwin.scenario.levers import Lever, apply_levers, parse_levers, targets
from orgtwin.scenario.spec import Scenario

Design = Literal["grid", "lhs"]


MAX_POINTS = 1_000_000


def _column(lever: Lever, values: list[Any]) -> pl.Series:
    if lever.is_range:
        dtype = pl.Int64 if lever.integer else pl.Float64
        return pl.Series(lever.path, values, dtype=dtype)
    if all(isinstance(v, bool) for v in values):
        return pl.Series(lever.path, values, dtype=pl.Boolean)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pl.Series(lever.path, values, dtype=pl.Int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pl.Series(lever.path, [float(v) for v in values], dtype=pl.Float64)
    return pl.Series(lever.path, [str(v) for v in values], dtype=pl.String)


def grid(levers: Sequence[Lever]) -> pl.DataFrame:
    """Every combination of every lever's levels: one row per point.

    Example:
        >>> from orgtwin.scenario.levers import parse_lever
        >>> grid([parse_lever("a.b.c=1..2"), parse_lever("d.e.f=x,y")]).shape
        (4, 3)
    """
    check_grid_size(levers)
    levels = [lv.levels() for lv in levers]
    rows = list(itertools.product(*levels))
    columns = [_column(lv, [r[i] for r in rows]) for i, lv in enumerate(levers)]
    return pl.DataFrame([pl.Series("point", range(len(rows)), dtype=pl.Int64), *columns])


def latin_hypercube(levers: Sequence[Lever], n: int, *, seed: int) -> pl.DataFrame:
    """``n`` points: each lever's range cut into ``n`` equal strata, each stratum used once.

    Args:
        levers: the levers.
        n: number of points.
        seed: seed of the sampling (the same seed gives the same design).
    """
    if not 1 <= n <= MAX_POINTS:
        raise LeverError("n", f"must be an integer between 1 and {MAX_POINTS:,}, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4C4853]))
    columns = []
    for lever in levers:
        u = (rng.permutation(n) + rng.random(n)) / n
        columns.append(_column(lever, lever.at(u)))
    return pl.DataFrame([pl.Series("point", range(n), dtype=pl.Int64), *columns])


def make_design(levers: Sequence[Lever], design: Design = "grid", *, n: int | None = None,
                seed: int = 0) -> pl.DataFrame:  # fmt: skip
    """The design table: ``point`` plus one column per lever, one row per point."""
    if design == "grid":
        return grid(levers)
    if design == "lhs":
        if n is None:
            raise LeverError("n", "a Latin hypercube needs n, the number of points")
        return latin_hypercube(levers, n, seed=seed)
    raise LeverError("design", f"must be 'grid' or 'lhs', got {design!r}")


def point_values(design: pl.DataFrame, point: int) -> dict[str, Any]:
    """Lever path → value at one point of a design."""
    row = design.row(point, named=True)
    row.pop("point")
    return row


def validate_design(scenario: Scenario, levers: Sequence[Lever], design: pl.DataFrame) -> None:
    """Check every lever against the scenario and every level against its bounds.

    Checks each lever's extreme and listed values once (not every point), so that a
    sweep fails before it starts, not halfway through.
    """
    for lever in levers:
        targets(scenario, lever.path)
        for value in _distinct(design[lever.path]):
            apply_levers(scenario, {lever.path: value})


def _distinct(column: pl.Series) -> Iterator[Any]:
    values = column.unique(maintain_order=True)
    if values.dtype.is_numeric() and values.len() > 2:
        yield from (values.min(), values.max())
    else:
        yield from values.to_list()


def grid_size(levers: Sequence[str | Lever]) -> int:
    """Points of the grid that ``levers`` span: the product of their counts of levels.

    The levers are parsed only: nothing is loaded, run or built, so a grid of any size is
    counted at once (:func:`grid` refuses one past :data:`MAX_POINTS`).

    Example:
        >>> grid_size(["teams.*.oncall_size=2..4", "services.*.spot_share=0..0.5:3"])
        9
    """
    return math.prod(lever.size for lever in parse_levers(list(levers)))


def check_grid_size(levers: Sequence[Lever]) -> None:
    """Refuse a grid of more than :data:`MAX_POINTS` points before building any of it.

    Raises:
        LeverError: the levers' counts of levels multiply past :data:`MAX_POINTS`.
    """
    size = math.prod(lever.size for lever in levers)
    if size > MAX_POINTS:
        raise LeverError(", ".join(lv.path for lv in levers),
                         f"grid must have at most {MAX_POINTS:,} points, got {size:,}",
                         "use design='lhs' with n points")  # fmt: skip


def check_levers(scenario: Scenario, levers: Sequence[str | Lever]) -> None:
    """Check every lever and every level of its grid against ``scenario``.

    Raises:
        LeverError: a lever does not fit the scenario, or a level is out of bounds.
    """
    parsed = parse_levers(list(levers))
    validate_design(scenario, parsed, grid(parsed))
