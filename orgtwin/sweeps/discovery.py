"""Scenario discovery: where in a sweep's lever space a condition on the KPIs mostly holds.

This is PRIM, the Patient Rule Induction Method (Friedman & Fisher 1999), as scenario
discovery uses it (Bryant & Lempert 2010; the EMA Workbench's ``prim``). The runs where a
condition holds (``"availability_pct < 99.9"``) are the *cases*. PRIM looks for a *box*
(a range per numeric lever, a set of categories per categorical lever) that holds most
of the cases and few other runs. It starts from the box of all runs and, step by step,
peels the thin slice whose removal leaves the densest box: ``peel_alpha`` of the box at
one end of one numeric lever, or one category of a categorical lever. It stops when every
further peel would leave less than ``min_support`` of the runs, or when the box holds only
cases. Each peel trades one measure for another:

- coverage: share of the cases inside the box (how much of the condition it explains);
- density: share of the runs in the box that are cases (how reliably it predicts it);
- support: share of all runs inside the box (how large it is).

The choice rule: of the boxes on the peeling trajectory, :func:`discover` returns the
densest one that keeps at least ``min_coverage`` of the cases (ties: the larger coverage;
the box of all runs when none qualifies). The whole trajectory comes with it, for those who
prefer another trade-off. There is one box and no pasting step. A bound is reported as the
roundest number between the values kept and those peeled, so a rule on a grid of whole
numbers reads ``oncall_size < 4``.

The input is the ``runs`` frame of a sweep: one row per run, one column per lever (named
by its path), the KPIs, and ``error`` (null when the run succeeded). Failed runs, runs
with a lever left null and runs where a column of the condition is null or ``NaN`` are
left out. Numeric levers are ordered; string and boolean levers are categorical. The
small helpers at the end are shared with :mod:`orgtwin.sweeps.analysis`.

:meth:`Discovery.in_words` says the box for people ("Availability misses its SLO mostly
when spot share (every service) is above 0.6 and on-call size (every team) is below 3:
it holds in 80% of those runs, 25% of all runs"); :meth:`Discovery.describe` and
:meth:`Discovery.rules` say it with the KPI and lever paths.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from orgtwin.errors import ResultsError, did_you_mean, in_brackets
from orgtwin.scenario.wording import lever_words
from orgtwin.units import format_value, in_sentence, with_unit
from orgtwin.world.kpis import KPIS

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_CLAUSE = re.compile(
    r"([A-Za-z_][\w.*]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
)


def parse_condition(text: str, *, columns: Sequence[str] | None = None) -> pl.Expr:
    """A condition on KPIs as a polars expression, without evaluating any code.

    Args:
        text: clauses ``<column> <op> <number>`` joined by ``" and "``; ``op`` is one of
            ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``.
        columns: the columns a clause may name; any name when None.

    Returns:
        The conjunction of the clauses.

    Raises:
        ResultsError: the text is not of that shape, or names an unknown column.

    Example:
        >>> runs = pl.DataFrame({"availability_pct": [99.5, 99.95], "pages": [4.0, 1.0]})
        >>> runs.filter(parse_condition("availability_pct < 99.9 and pages >= 3")).height
        1
    """
    clauses = [_CLAUSE.fullmatch(part.strip()) for part in re.split(r"\s+and\s+", str(text))]
    terms = []
    for clause in clauses:
        if clause is None:
            raise ResultsError(
                f"condition must be clauses '<kpi> <op> <number>' joined by ' and ' "
                f"(op one of <, <=, >, >=, ==, !=), got {text!r}"
            )
        name, op, number = clause.groups()
        if columns is not None and name not in columns:
            raise ResultsError(
                f"condition must name columns of runs, got {name!r}"
                + in_brackets(did_you_mean(name, columns))
            )
        terms.append(_OPERATORS[op](pl.col(name), float(number)))
    return pl.all_horizontal(terms)


SLO_MISSED = "error_budget_used > 1"
"""The condition that a run missed its SLO: it used more than its whole error budget."""


def default_condition(runs: pl.DataFrame, *, kpi: str = "availability_pct") -> str:
    """A condition to start discovery from that holds in some runs and not in others.

    Missing the SLO (:data:`SLO_MISSED`) when some successful runs miss it and others do
    not. Otherwise (every run meets its SLO, or none does) ``kpi`` on the bad side of its
    median over the runs: below it when higher is better, above it otherwise (or at it,
    when ties leave no run strictly beyond the median), so that about half the runs hold.
    A condition that holds everywhere or nowhere has no lever ranges to find.

    Args:
        runs: a sweep's runs (see :attr:`orgtwin.sweeps.SweepResult.runs`).
        kpi: the KPI of the fallback condition.

    Returns:
        The condition, as :func:`parse_condition` reads it; :data:`SLO_MISSED` when no
        condition on ``kpi`` splits the runs either.

    Example:
        >>> runs = pl.DataFrame({"error_budget_used": [0.4, 1.3, 0.8],
        ...                      "availability_pct": [99.96, 99.87, 99.92]})
        >>> default_condition(runs)
        'error_budget_used > 1'
        >>> default_condition(runs.with_columns(error_budget_used=pl.lit(0.5)))
        'availability_pct < 99.92'
    """
    ok = runs.filter(pl.col("error").is_null()) if "error" in runs.columns else runs
    if _splits(ok, SLO_MISSED):
        return SLO_MISSED
    values = ok[kpi].drop_nulls() if kpi in ok.columns else pl.Series([], dtype=pl.Float64)
    if values.n_unique() < 2:
        return SLO_MISSED
    bad = "<" if KPIS[kpi].higher_is_better is not False else ">"
    median = f"{float(values.median()):.6g}"  # type: ignore[arg-type]
    for op in (bad, bad + "="):
        condition = f"{kpi} {op} {median}"
        if _splits(ok, condition):
            return condition
    return SLO_MISSED


def _splits(runs: pl.DataFrame, condition: str) -> bool:
    """Whether ``condition`` holds in some of ``runs`` and not in others."""
    name = condition.split()[0]
    if name not in runs.columns:
        return False
    held = runs.select(parse_condition(condition).fill_null(False).sum()).item()
    return 0 < held < runs.height


_OPERATOR_WORDS = {"<": "is below", "<=": "is at most", ">": "is above", ">=": "is at least",
                   "==": "is", "!=": "is not"}  # fmt: skip


def condition_words(condition: str) -> str:
    """A condition on KPIs in words, from the KPIs' labels and units.

    Example:
        >>> condition_words("error_budget_used > 1")
        'Availability misses its SLO'
        >>> condition_words("availability_pct < 99.9 and pages >= 40")
        'Availability is below 99.9% and pages is at least 40'
    """
    if condition.strip() == SLO_MISSED:
        return "Availability misses its SLO"
    clauses = []
    for part in re.split(r"\s+and\s+", condition.strip()):
        clause = _CLAUSE.fullmatch(part.strip())
        if clause is None:
            return condition
        name, op, number = clause.groups()
        kpi = KPIS.get(name)
        label = kpi.label if kpi is not None else name
        text = _threshold(float(number), kpi.unit if kpi else "", label)
        clauses.append(f"{in_sentence(label)} {_OPERATOR_WORDS[op]} {text}")
    words = " and ".join(clauses)
    return words[:1].upper() + words[1:]


def _threshold(value: float, unit: str, label: str) -> str:
    """A number from a condition as typed (``99.9%``, ``$1,000``, ``6 h``, ``40``)."""
    if unit == "%":
        return f"{value:g}%"
    if unit == "USD":
        return format_value(value, unit)
    return f"{value:g}" if not unit or unit in label.lower() else with_unit(f"{value:g}", unit)


class Limit(NamedTuple):
    """How a box restricts one lever: ``lower < lever < upper``, or ``lever in categories``.

    Bounds are the simplest round numbers that separate the runs kept from those peeled
    (``oncall_size < 4`` on a grid of whole numbers); None where a side is open.
    """

    lower: float | None = None
    upper: float | None = None
    categories: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()

    def rule(self, lever: str) -> str:
        """This limit as readable text: ``"teams.platform.oncall_size < 4"``."""
        if self.categories is not None:
            if len(self.excluded) == 1 and len(self.categories) > 1:
                return f"{lever} != {self.excluded[0]!r}"
            if len(self.categories) == 1:
                return f"{lever} == {self.categories[0]!r}"
            return f"{lever} in {{{', '.join(map(repr, self.categories))}}}"
        lower, upper = _number(self.lower), _number(self.upper)
        if self.lower is not None and self.upper is not None:
            return f"{lower} < {lever} < {upper}"
        return f"{lever} > {lower}" if self.lower is not None else f"{lever} < {upper}"

    def words(self, lever: str) -> str:
        """This limit in words: ``"on-call size (every team) is below 4 engineers"``."""
        said = lever_words(lever)
        name = in_sentence(str(said))
        if self.categories is not None:
            if len(self.excluded) == 1 and len(self.categories) > 1:
                return f"{name} is not {self.excluded[0]}"
            if len(self.categories) == 1:
                return f"{name} is {self.categories[0]}"
            return f"{name} is one of {', '.join(self.categories)}"
        lower, upper = (with_unit(_number(v), said.unit) for v in (self.lower, self.upper))
        if self.lower is not None and self.upper is not None:
            return f"{name} is between {_number(self.lower)} and {upper}"
        return f"{name} is above {lower}" if self.lower is not None else f"{name} is below {upper}"


@dataclass(frozen=True, eq=False)
class Discovery:
    """A box of lever ranges where a condition on the KPIs mostly holds (PRIM).

    Attributes:
        condition: the condition, as text.
        limits: lever -> its :class:`Limit`, only for levers the box restricts.
        coverage: share of the runs where the condition holds that lie in the box, 0..1.
        density: share of the runs in the box where the condition holds, 0..1.
        support: share of all runs that lie in the box, 0..1.
        n_cases: runs where the condition holds.
        n_in_box: runs in the box.
        n_runs: runs analysed (successful, with the condition defined).
        trajectory: one row per peeling step: ``step``, ``coverage``, ``density``,
            ``support``, ``n_in_box``, ``box`` (its rules joined by ``" and "``; empty
            at step 0, the box of all runs).
        chosen_step: the step of the trajectory this box is.
    """

    condition: str
    limits: dict[str, Limit]
    coverage: float
    density: float
    support: float
    n_cases: int
    n_in_box: int
    n_runs: int
    trajectory: pl.DataFrame
    chosen_step: int

    def rules(self) -> list[str]:
        """The box as readable conditions, one per restricted lever."""
        return [limit.rule(lever) for lever, limit in self.limits.items()]

    def in_words(self) -> str:
        """The box for people, one sentence with labels instead of paths.

        "Availability misses its SLO mostly when spot share (every service) is above 0.6:
        it holds in 80% of those runs (25% of all runs), which have 90% of the runs where
        it holds."
        """
        said = condition_words(self.condition) if isinstance(self.condition, str) else ""
        said = said or self.condition
        if self.n_cases == 0:
            return f"{said} in none of the {self.n_runs} runs."
        if self.n_cases == self.n_runs:
            return f"{said} in all {self.n_runs} runs."
        if not self.limits:
            return (
                f"{said} in {self.density:.0%} of the {self.n_runs} runs, and no range of the "
                "levers concentrates it."
            )
        where = " and ".join(limit.words(lever) for lever, limit in self.limits.items())
        mostly = "mostly" if self.density >= 0.5 else "most often"
        return (
            f"{said} {mostly} when {where}: it holds in {self.density:.0%} of those runs "
            f"({self.support:.0%} of all runs), which have {self.coverage:.0%} of the runs "
            "where it holds."
        )

    def describe(self) -> str:
        """One sentence: where the condition holds, how well the box captures it."""
        if self.n_cases == 0:
            return f"{self.condition} holds in none of the {self.n_runs} runs"
        if self.n_cases == self.n_runs:
            return f"{self.condition} holds in all {self.n_runs} runs"
        if not self.limits:
            return (
                f"{self.condition} holds in {self.density:.0%} of the {self.n_runs} runs; "
                "no box of lever ranges concentrates it"
            )
        where = " and ".join(self.rules())
        return (
            f"{self.condition} holds in {self.density:.0%} of runs where {where} "
            f"(coverage {self.coverage:.0%}, density {self.density:.0%}, "
            f"{self.n_in_box} of {self.n_runs} runs)"
        )


class _Box(NamedTuple):
    mask: np.ndarray  # runs inside
    lower: dict[str, float]  # lever -> largest value peeled from below
    upper: dict[str, float]  # lever -> smallest value peeled from above
    dropped: dict[str, frozenset[str]]  # lever -> categories peeled


def discover(
    runs: pl.DataFrame,
    levers: Sequence[str],
    *,
    condition: str | pl.Expr,
    min_coverage: float = 0.8,
    peel_alpha: float = 0.05,
    min_support: float = 0.05,
) -> Discovery:
    """Find lever ranges where ``condition`` mostly holds: PRIM (Friedman & Fisher 1999).

    Starting from the box of all runs, each step peels the slice that leaves the densest
    box: for a numeric lever the runs at or below its ``peel_alpha`` quantile or at or
    above its ``1 - peel_alpha`` quantile inside the box (at least one distinct value, so
    a grid loses a level at a time), for a categorical lever one category. Peeling stops
    when every further peel would leave less than ``min_support`` of the runs, or the box
    holds only cases. The box returned is the densest on that trajectory among those that
    keep at least ``min_coverage`` of the cases (ties: the larger coverage). No pasting.

    Args:
        runs: the sweep's runs (see the module docstring); runs where the condition's
            columns are ``NaN`` or null are left out.
        levers: lever columns the box may restrict.
        condition: which runs are of interest: text parsed by :func:`parse_condition`
            (``"availability_pct < 99.9 and pages > 40"``; never evaluated as code) or a
            boolean polars expression.
        min_coverage: least share of the cases the chosen box keeps, 0..1.
        peel_alpha: share of the box peeled per step, 0..0.5 exclusive.
        min_support: least share of all runs a box keeps, 0..1 exclusive.

    Returns:
        The chosen box; when the condition holds in no run or in every run, a box of all
        runs whose :meth:`Discovery.describe` says so.

    Raises:
        ResultsError: a bad condition, column or option.

    Example:
        >>> runs = pl.DataFrame({"oncall": [1, 2, 3, 4, 5, 6, 7, 8] * 5})
        >>> runs = runs.with_columns(pages=10.0 - pl.col("oncall"))
        >>> discover(runs, ["oncall"], condition="pages > 6").rules()
        ['oncall < 4']
    """
    _check_options(min_coverage=min_coverage, peel_alpha=peel_alpha, min_support=min_support)
    frame, cases, label = _cases(runs, levers, condition)
    if frame.is_empty():
        raise ResultsError(
            f"cannot discover: runs must have successful runs where {label} is defined, got none"
        )
    data = {lever: _peel_values(frame[lever]) for lever in levers}
    path = [_Box(np.ones(frame.height, dtype=bool), {}, {}, {})]
    while 0 < cases.sum() < cases.size and not cases[path[-1].mask].all():
        box = _best_peel(path[-1], data, cases, peel_alpha, min_support)
        if box is None:
            break
        path.append(box)
    stats = [_stats(box.mask, cases) for box in path]
    kept = [i for i, (coverage, _, _) in enumerate(stats) if coverage >= min_coverage - 1e-12]
    chosen = max(kept or [0], key=lambda i: (stats[i][1], stats[i][0]))
    limits = [_limits(box, data) for box in path]
    trajectory = pl.DataFrame(
        {
            "step": range(len(path)),
            "coverage": [s[0] for s in stats],
            "density": [s[1] for s in stats],
            "support": [s[2] for s in stats],
            "n_in_box": [int(box.mask.sum()) for box in path],
            "box": [" and ".join(v.rule(k) for k, v in box.items()) for box in limits],
        },
        schema_overrides={"step": pl.Int64, "n_in_box": pl.Int64},
    )
    coverage, density, support = stats[chosen]
    return Discovery(
        condition=label,
        limits=limits[chosen],
        coverage=coverage,
        density=density,
        support=support,
        n_cases=int(cases.sum()),
        n_in_box=int(path[chosen].mask.sum()),
        n_runs=cases.size,
        trajectory=trajectory,
        chosen_step=chosen,
    )


def _check_options(**options: float) -> None:
    """PRIM's options are shares: coverage in (0, 1], alpha in (0, 0.5), support in (0, 1)."""
    for name, value in options.items():
        high = 0.5 if name == "peel_alpha" else 1.0
        closed = name == "min_coverage"
        if not (0.0 < value <= high if closed else 0.0 < value < high):
            bracket = "]" if closed else ")"
            raise ResultsError(f"{name} must be in (0, {high:g}{bracket}, got {value!r}")


def _cases(
    runs: pl.DataFrame, levers: Sequence[str], condition: str | pl.Expr
) -> tuple[pl.DataFrame, np.ndarray, str]:
    """The runs analysed, whether each is a case of interest, and the condition's text."""
    if isinstance(condition, str):
        expr, label = parse_condition(condition, columns=runs.columns), condition.strip()
    elif isinstance(condition, pl.Expr):
        expr, label = condition, str(condition)
    else:
        raise ResultsError(f"condition must be a string or a polars expression, got {condition!r}")
    names = expr.meta.root_names()
    frame = successful_runs(runs, levers, names).drop_nulls(names)
    floats = [pl.col(n).is_finite() for n in names if frame.schema[n].is_float()]
    frame = frame.filter(*floats) if floats else frame
    hit = frame.select(expr.alias("case"))["case"]
    if hit.dtype != pl.Boolean:
        raise ResultsError(f"condition must be true or false per run, got {hit.dtype} values")
    frame = frame.filter(hit.is_not_null())
    return frame, hit.drop_nulls().to_numpy().astype(bool), label


def _peel_values(column: pl.Series) -> np.ndarray:
    """A lever's values for peeling: floats, or strings for a categorical lever."""
    if is_categorical(column.dtype):
        return column.cast(pl.String).to_numpy().astype(object)
    return column.cast(pl.Float64).to_numpy()


def _best_peel(
    box: _Box, data: dict[str, np.ndarray], cases: np.ndarray, alpha: float, min_support: float
) -> _Box | None:
    """The peel leaving the densest box (ties: the larger one) of at least min_support."""
    best, best_key = None, (-1.0, -1.0)
    for candidate in _peels(box, data, alpha):
        support = candidate.mask.mean()
        if support < min_support:
            continue
        key = (float(cases[candidate.mask].mean()), float(support))
        if key > best_key:
            best, best_key = candidate, key
    return best


def _peels(box: _Box, data: dict[str, np.ndarray], alpha: float) -> list[_Box]:
    """Every box one peel smaller than ``box``."""
    out = []
    for lever, column in data.items():
        inside = column[box.mask]
        if column.dtype == object:
            present = sorted(set(inside))
            for category in present if len(present) > 1 else []:
                dropped = {**box.dropped, lever: box.dropped.get(lever, frozenset()) | {category}}
                out.append(box._replace(mask=box.mask & (column != category), dropped=dropped))
            continue
        low = float(np.quantile(inside, alpha, method="lower"))
        high = float(np.quantile(inside, 1.0 - alpha, method="higher"))
        out.append(box._replace(mask=box.mask & (column > low), lower={**box.lower, lever: low}))
        out.append(box._replace(mask=box.mask & (column < high), upper={**box.upper, lever: high}))
    return out


def _stats(mask: np.ndarray, cases: np.ndarray) -> tuple[float, float, float]:
    """Coverage, density and support of a box."""
    inside = int(mask.sum())
    hits = int(cases[mask].sum())
    coverage = hits / cases.sum() if cases.sum() else 0.0
    return coverage, (hits / inside if inside else 0.0), inside / mask.size


def _limits(box: _Box, data: dict[str, np.ndarray]) -> dict[str, Limit]:
    """The box's restriction of each lever it peeled, in lever order."""
    limits = {}
    for lever, column in data.items():
        inside = column[box.mask]
        if lever in box.dropped:
            kept = tuple(sorted(set(inside)))
            limits[lever] = Limit(categories=kept, excluded=tuple(sorted(box.dropped[lever])))
        elif lever in box.lower or lever in box.upper:
            lower, upper = box.lower.get(lever), box.upper.get(lever)
            limits[lever] = Limit(
                lower=None if lower is None else _round_cut(lower, float(inside.min()), up=True),
                upper=None if upper is None else _round_cut(upper, float(inside.max()), up=False),
            )
    return limits


def _round_cut(peeled: float, kept: float, *, up: bool) -> float:
    """The roundest number from ``peeled`` towards (not reaching) ``kept``."""
    for decimals in range(-6, 13):
        scale = 10.0**decimals
        steps = round(peeled * scale, 6)
        steps = math.ceil(steps) if up else math.floor(steps)
        cut = steps * 10 ** (-decimals) if decimals <= 0 else steps / 10**decimals
        if (peeled <= cut < kept) if up else (kept < cut <= peeled):
            return float(cut)
    return peeled


def _number(value: float | None) -> str:
    return np.format_float_positional(value, trim="-") if value is not None else ""


# -------------------------------------------------------------- helpers shared with analysis


def successful_runs(runs: pl.DataFrame, levers: Sequence[str], kpis: Sequence[str]) -> pl.DataFrame:
    """The runs of a sweep without an error and with every lever set.

    Args:
        runs: a sweep's runs (see :mod:`orgtwin.sweeps.analysis`).
        levers: lever columns.
        kpis: KPI columns that must exist.

    Raises:
        ResultsError: ``levers`` is empty or a column is missing (with a suggestion).
    """
    if isinstance(levers, str) or not levers:
        raise ResultsError(f"levers must be a non-empty sequence of column names, got {levers!r}")
    for name in [*levers, *kpis]:
        if name not in runs.columns:
            raise ResultsError(
                f"{name} must be a column of runs, got no such column"
                + in_brackets(did_you_mean(name, runs.columns))
            )
    ok = runs.filter(pl.col("error").is_null()) if "error" in runs.columns else runs
    return ok.drop_nulls(list(levers))


def is_categorical(dtype: pl.DataType) -> bool:
    """Whether a lever column is categorical (strings, booleans) rather than ordered."""
    return not dtype.is_numeric()
