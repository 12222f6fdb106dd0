"""A learned twin is a scenario: the base scenario with the learned values written in.

:func:`learned_scenario` sets learned values on the base (by their dotted paths in the
scenario format, ``teams.web.incidents.restore_median_hours``) and validates the result
like any scenario file; :func:`write_scenario` writes it as plain YAML, standalone (no
``extends:``), with a comment block saying where each learned value came from. No
pickle: the file loads, runs, sweeps and shows in the dashboard like any other.

Example:
    >>> from orgtwin.scenario import load_scenario
    >>> base = load_scenario("scenarios/baseline.yaml")
    >>> twin = learned_scenario(base, {"vendors.stripe.outage_rate_per_month": 0.8},
    ...                         name="acme")
    >>> twin.vendors["stripe"].outage_rate_per_month, twin.name
    (0.8, 'acme')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from orgtwin.learn.report import LearnReport, write_atomically
from orgtwin.scenario import Scenario, load_scenario


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted paths to a nested mapping: ``{"a.b": 1}`` → ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for path, value in values.items():
        node = out
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def learned_scenario(
    base: Scenario, values: Mapping[str, Any], *, name: str, description: str | None = None
) -> Scenario:
    """The base scenario with ``values`` (dotted path → value) set, validated.

    Raises:
        ScenarioError: a learned value falls outside its field's declared range, or a
            path names nothing (a learner's bug, or data far from any sane organisation).
    """
    data = base.model_dump(mode="json", exclude_defaults=True)
    data["name"] = name
    data["description"] = description or f"Learned from telemetry over {base.name}"
    return load_scenario(data, overrides=nested(values))


def write_scenario(
    path: str | os.PathLike[str], scenario: Scenario, report: LearnReport | None = None
) -> Path:
    """Write ``scenario`` as a standalone YAML file, atomically, with a comment block
    listing each learned value, its 95% interval and its source. Returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    write_atomically(out, _header(scenario, report) + body)
    load_scenario(out)  # what was written loads as written
    return out


def _header(scenario: Scenario, report: LearnReport | None) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {scenario.name}: a twin learned by `orgtwin learn` on {when}."]
    if report is not None:
        lines += [
            f"# Telemetry: {report.telemetry}; base scenario: {report.base}.",
            "# Learned values (95% interval, source); everything else is the base's.",
            "# The fit report (report.md, report.json) beside this file says how well.",
        ]
        for fit in report.fits:
            for e in fit.estimates:
                if e.source == "prior":
                    continue
                entity = f" [{fit.entity}]" if fit.entity else ""
                lines.append(
                    f"#   {fit.behaviour}{entity} {e.name} = {e.value:.4g} "
                    f"({e.low:.4g} – {e.high:.4g}, {e.source}) {e.unit}".rstrip()
                )
    return "\n".join(lines) + "\n\n"
