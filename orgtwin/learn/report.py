"""The fit report of a learned twin: per behaviour, how well it was learned and from what.

A :class:`LearnReport` holds one :class:`~orgtwin.learn.base.Fit` per behaviour and
entity, the rows read and dropped per table (and why), and the warnings of the whole
learning. It is written beside the learned scenario as ``report.json`` (for tools) and
``report.md`` (for people), each atomically.

Example:
    >>> from orgtwin.learn.base import Estimate, Fit
    >>> fit = Fit("vendor_outages", "vendor stripe",
    ...           [Estimate("outage_rate_per_month", 0.5, 0.2, 1.1, "learned", "per month")])
    >>> report = LearnReport(scenario="acme", base="scenarios/baseline.yaml",
    ...                      telemetry="telemetry/", fits=[fit])
    >>> print(report.to_markdown().splitlines()[0])
    # Fit report: acme
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orgtwin.learn.base import Estimate, Fit

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
_SOURCE_WORDS = {"learned": "learned", "shrunk": "shrunk to prior", "prior": "prior (kept)"}


@dataclass
class LearnReport:
    """What learning found, for one telemetry folder against one base scenario.

    Attributes:
        scenario: the learned scenario's name.
        base: the base scenario it started from (path as given).
        telemetry: the telemetry folder (path as given).
        fits: one per behaviour and entity, in the order they were learned.
        rows: rows read per table.
        dropped: rows dropped per table and reason (``--drop-bad-rows``); empty otherwise.
        warnings: what concerns the learning as a whole (tables missing, …).
        applied: what was written into the learned scenario: dotted path → value (``None``
            for a call the data removed); estimates of entities the base lacks are
            reported but not applied.
    """

    scenario: str
    base: str
    telemetry: str
    fits: list[Fit] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    applied: dict[str, Any] = field(default_factory=dict)

    def estimates(self) -> dict[tuple[str, str, str], Estimate]:
        """Every estimate by ``(behaviour, entity, parameter)``."""
        return {(f.behaviour, f.entity, e.name): e for f in self.fits for e in f.estimates}

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "base": self.base,
            "telemetry": self.telemetry,
            "rows": dict(self.rows),
            "dropped": {t: dict(r) for t, r in self.dropped.items()},
            "warnings": list(self.warnings),
            "applied": dict(self.applied),
            "fits": [f.as_dict() for f in self.fits],
        }

    def to_json(self) -> str:
        """The report as JSON (NaN written as null)."""
        return json.dumps(_finite(self.to_dict()), indent=2, allow_nan=False)

    def to_markdown(self) -> str:
        """The report for people: data read, then one section per behaviour."""
        lines = [f"# Fit report: {self.scenario}", ""]
        lines += [f"Learned from `{self.telemetry}` over the base scenario `{self.base}`: "
                  f"{len(self.applied):,} values written into the scenario.", ""]  # fmt: skip
        lines += ["## Data", "", "| table | rows used | rows dropped | why dropped |",
                  "|---|---:|---:|---|"]  # fmt: skip
        for table in sorted(set(self.rows) | set(self.dropped)):
            dropped = self.dropped.get(table, {})
            why = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(dropped.items())) or "—"
            lines.append(
                f"| {table} | {self.rows.get(table, 0):,} | {sum(dropped.values()):,} | {why} |"
            )
        if self.warnings:
            lines += ["", "## Warnings", "", *[f"- {w}" for w in self.warnings]]
        for fit in self.fits:
            lines += ["", _fit_markdown(fit)]
        return "\n".join(lines) + "\n"

    def save(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``folder`` (each atomically)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = out / REPORT_JSON, out / REPORT_MARKDOWN
        write_atomically(paths[0], self.to_json())
        write_atomically(paths[1], self.to_markdown())
        return paths


def _fit_markdown(fit: Fit) -> str:
    title = fit.behaviour.replace("_", " ")
    lines = [f"## {title}" + (f" — {fit.entity}" if fit.entity else ""), ""]
    lines += [f"Rows used: {fit.rows_used:,}.", ""]
    lines += ["| parameter | value | 95% interval | unit | source | method | n |",
              "|---|---:|---|---|---|---|---:|"]  # fmt: skip
    for e in fit.estimates:
        interval = "—" if math.isnan(e.low) or math.isnan(e.high) else f"{e.low:.4g} – {e.high:.4g}"
        lines.append(
            f"| {e.name} | {e.value:.4g} | {interval} | {e.unit} | "
            f"{_SOURCE_WORDS[e.source]} | {e.method} | {e.n:,} |"
        )
    if fit.holdout is not None:
        h = fit.holdout
        verdict = "beats" if h.beats_baseline else "does not beat"
        split = f"time-ordered, {h.n_train:,} train / {h.n_test:,} test"
        score = f"{h.metric} {h.learned:.4g}, {verdict} {h.baseline_name} ({h.baseline:.4g})"
        lines += ["", f"Held out ({split}): {score}."]
    else:
        lines += ["", "Held out: no score (too few rows to split, or none for this behaviour)."]
    if fit.warnings:
        lines += ["", *[f"- ⚠ {w}" for w in fit.warnings]]
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, then rename."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
