"""The scorecard: how far the twin mirrors production over a window it did not learn from.

:func:`validate` replays the twin over the window fed what production was fed
(:func:`orgtwin.fidelity.shadow.replay`) and scores, per behaviour, KPI and entity,
what it simulated against what production did, each line against a naive baseline,
**persistence** (the value a week before where the telemetry holds the week before the
window, else a day before, else the last hour before the window carried forward). Each
kind of line is declared once in :data:`CHECKS`:

- ``service`` lines, per service and KPI (``requests``, ``errors``, ``latency_p50_ms``,
  ``latency_p95_ms`` per hour): MAPE over the hours whose observed value is above 0, and
  bias (the mean simulated over the mean observed, less 1), the simulated value being
  the mean over seeds; persistence's MAPE on the same hours (the requests of entry
  services the replay was fed are not scored: it reproduces them). Errors are scored on the
  hours without an incident open on the service, in production or in any seed (the
  incidents are random in the twin and have lines of their own);
- ``incidents``, per team and in all: incidents a week, the observed count against the
  simulated counts across seeds (``z``: the difference over the spread, Poisson at
  least, plus the mean's own error); persistence: the count of the period before;
- ``restore``, per team with enough incidents and in all: restore-time distributions
  (resolved − started, hours), observed against the seeds' pooled: the two-sample KS
  statistic (its p-value decides) and the Wasserstein distance;
- ``churn``, per segment: users who left per user-day (``user_days``), observed against
  simulated (``z`` binomial over both); calibration: simulated over observed;
- ``dora``: change failure rate (failed deploys over deploys, ``z`` binomial) and time
  to restore (mean hours); deploy frequency and lead time are driven by the observed
  deploys, so the replay reproduces them and they are not scored.

Each line has a plain **verdict** (:func:`verdict`): ``mirrors`` (the twin's error is
within noise, or no worse than persistence), ``biased`` (off by a consistent offset: the
level is wrong, re-learn it) or ``off``. The scorecard's **trust** level sums them up:
``high`` (at least 80% of lines mirror and none is off), ``low`` (a third or more off, or
fewer than half mirror), ``medium`` otherwise.

A :class:`Scorecard` is saved as ``scorecard.parquet`` (the lines), ``scorecard.json``
and ``scorecard.md``, by default beside the scenario it scores (the learned scenario's
report folder), where :func:`scorecard_of` finds it for ``compare`` and the dashboard.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from orgtwin.fidelity.shadow import Replay, replay
from orgtwin.scenario import Scenario
from orgtwin.telemetry.folder import Telemetry
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_WEEK

SCORECARD: dict[str, pl.DataType] = {
    "behaviour": pl.String(),
    "kpi": pl.String(),
    "entity": pl.String(),
    "unit": pl.String(),
    "n": pl.Int64(),
    "observed": pl.Float64(),
    "twin": pl.Float64(),
    "persistence": pl.Float64(),
    "score": pl.String(),
    "twin_score": pl.Float64(),
    "persistence_score": pl.Float64(),
    "bias": pl.Float64(),
    "verdict": pl.String(),
    "words": pl.String(),
}
"""The scorecard's lines: one per behaviour, KPI and entity."""
SCORECARD_COLUMNS = {
    "behaviour": "The behaviour scored: service, incidents, restore, churn or dora",
    "kpi": "The KPI (requests, latency_p95_ms, incidents_per_week, restore_hours…)",
    "entity": "The service, team or segment (all: the organisation)",
    "unit": "The unit of observed, twin and persistence",
    "n": "Points compared (hours, incidents, user-days, deploys)",
    "observed": "What production did (mean over the window)",
    "twin": "What the replayed twin did (mean over the window and the seeds)",
    "persistence": "What persistence predicted (the value one period earlier), if any",
    "score": "How the line is scored: mape, z, ks",
    "twin_score": "The twin's score (MAPE as a share, |z|, or the KS statistic)",
    "persistence_score": "Persistence's score on the same points (lower is better)",
    "bias": "Twin over observed, less 1 (a share; 0: unbiased)",
    "verdict": "mirrors, biased or off",
    "words": "The line in a sentence",
}
VERDICTS = ("mirrors", "biased", "off")
"""The plain verdicts of a line, best first."""
MAPE_TOLERANCE = 0.10
"""A MAPE at or below this (10%) mirrors, whatever persistence does."""
Z_MIRRORS = 2.0
"""A count within this many sd of the observed mirrors."""
Z_OFF = 4.0
"""A count beyond this many sd is off (between: biased)."""
KS_P_MIRRORS = 0.05
"""A restore-time distribution whose KS p-value is at least this mirrors."""
MIN_RESTORES = 3
"""Fewest restores on each side for a restore line."""
COUNT_KPIS = frozenset({"requests", "errors"})
"""Service KPIs that are counts per hour (their noise is at least Poisson)."""
SCORECARD_FILES = ("scorecard.parquet", "scorecard.json", "scorecard.md")
"""What :meth:`Scorecard.save` writes."""
TRUST_WORDS = {
    "high": "the twin mirrors production: trust its what-ifs within their intervals",
    "medium": "the twin mirrors production in part: read the lines marked biased or off "
    "before trusting a what-if that goes through them",
    "low": "the twin does not mirror production: re-learn it before trusting its what-ifs",
}


@dataclass(frozen=True, eq=False)
class Scorecard:
    """The scorecard of one replay.

    Attributes:
        scenario: the scenario's name.
        window: ``(start, end)`` replayed.
        seeds: seeds run.
        driven_by: what drove the replay, in words.
        lines: one row per line (schema :data:`SCORECARD`).
    """

    scenario: str
    window: tuple[datetime, datetime]
    seeds: int
    driven_by: list[str]
    lines: pl.DataFrame

    @property
    def trust(self) -> str:
        """``high``, ``medium`` or ``low`` (see the module's documentation)."""
        return trust(self.lines["verdict"].to_list())

    def counts(self) -> dict[str, int]:
        """Lines per verdict."""
        found = self.lines["verdict"].to_list()
        return {v: found.count(v) for v in VERDICTS}

    def summary(self) -> str:
        """The scorecard in a sentence: its trust level and its lines by verdict."""
        return f"trust {self.trust} ({self._counted()}): {TRUST_WORDS[self.trust]}"

    def _counted(self) -> str:
        parts = ", ".join(f"{n} {v}" for v, n in self.counts().items() if n)
        return parts or "no line"

    def to_json(self) -> str:
        """The scorecard as JSON: its summary and every line."""
        return json.dumps(
            {
                "scenario": self.scenario,
                "window": [self.window[0].isoformat(), self.window[1].isoformat()],
                "seeds": self.seeds,
                "driven_by": self.driven_by,
                "trust": self.trust,
                "counts": self.counts(),
                "summary": self.summary(),
                "lines": [_finite(row) for row in self.lines.iter_rows(named=True)],
            },
            indent=2,
        )

    def to_markdown(self) -> str:
        """The scorecard for people: the summary, then a table per behaviour."""
        start, end = self.window
        out = [
            f"# Scorecard: {self.scenario}",
            "",
            f"Replayed {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} over {self.seeds} seeds, "
            f"driven by what production was fed ({'; '.join(self.driven_by)}).",
            "",
            f"**Trust: {self.trust}** ({self._counted()}): {TRUST_WORDS[self.trust]}.",
            "",
        ]
        for (behaviour,), rows in self.lines.group_by("behaviour", maintain_order=True):
            out += [
                f"## {behaviour}",
                "",
                "| KPI | entity | observed | twin | persistence | score (twin / persistence) "
                "| verdict |",
                "|---|---|---|---|---|---|---|",
            ]
            for row in rows.iter_rows(named=True):
                out.append(
                    f"| {row['kpi']} | {row['entity']} | {_num(row['observed'])} {row['unit']} "
                    f"| {_num(row['twin'])} | {_num(row['persistence'])} | {row['score']} "
                    f"{_num(row['twin_score'])} / {_num(row['persistence_score'])} "
                    f"| {row['verdict']} |"
                )
            out.append("")
        return "\n".join(out)

    def save(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write :data:`SCORECARD_FILES` into ``folder``, each whole or not at all (a
        temporary file beside it, renamed); returns them by name."""
        from orgtwin.learn.report import write_atomically

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in SCORECARD_FILES}
        temporary = out / f".scorecard.parquet.{os.getpid()}.tmp"
        try:
            self.lines.write_parquet(temporary)
            os.replace(temporary, paths["scorecard.parquet"])
        finally:
            temporary.unlink(missing_ok=True)
        write_atomically(paths["scorecard.json"], self.to_json())
        write_atomically(paths["scorecard.md"], self.to_markdown())
        return paths


def validate(
    scenario: str | os.PathLike[str] | Scenario,
    telemetry: str | os.PathLike[str] | Telemetry,
    *,
    start: datetime,
    end: datetime,
    seeds: int = 5,
    seed: int = 0,
    mapping: str | os.PathLike[str] | None = None,
) -> Scorecard:
    """Replay the twin over ``[start, end)`` and score it against production.

    Args:
        scenario: the twin (a learned scenario, usually).
        telemetry: the telemetry folder (or one already read) holding the window, and
            ideally the period before it (for persistence).
        start, end: the window, one the twin did not learn from.
        seeds: seeds of the replay.
        seed: its base seed (the same inputs give the same scorecard).
        mapping: a mapping file, where the folder's files are not in the twin's shapes.

    Returns:
        The :class:`Scorecard`.

    Raises:
        TelemetryError: the window or the telemetry cannot be replayed (see
            :func:`~orgtwin.fidelity.shadow.replay`).
    """
    ran = replay(scenario, telemetry, start=start, end=end, seeds=seeds, seed=seed,
                 mapping=mapping)  # fmt: skip
    return score(ran)


def score(ran: Replay) -> Scorecard:
    """The scorecard of a replay: every check of :data:`CHECKS` that its tables feed."""
    rows = [row for check in CHECKS for row in check(ran)]
    lines = pl.DataFrame(rows, schema=SCORECARD) if rows else pl.DataFrame(schema=SCORECARD)
    return Scorecard(ran.scenario.name, ran.window, len(ran.simulated), ran.driven_by, lines)


def trust(verdicts: list[str]) -> str:
    """``high``, ``medium`` or ``low`` from the lines' verdicts (no line: ``low``)."""
    if not verdicts:
        return "low"
    n = len(verdicts)
    mirrors, off = verdicts.count("mirrors") / n, verdicts.count("off") / n
    if mirrors >= 0.8 and off == 0:
        return "high"
    if off >= 1 / 3 or mirrors < 0.5:
        return "low"
    return "medium"


def verdict(
    score: str, twin: float, persistence: float | None, bias: float, z: float | None = None
) -> str:
    """A line's verdict from its score.

    - ``mape``: mirrors at or below :data:`MAPE_TOLERANCE`, no worse than persistence, or
      with the window's mean within :data:`Z_MIRRORS` sd of the seeds' (``z``: a
      behaviour as random as incidents is not expected to fall on the same hours);
      else biased when the bias is at least half the MAPE (a consistent offset), else off;
    - ``z`` (counts and rates): mirrors within :data:`Z_MIRRORS`, off beyond
      :data:`Z_OFF`, biased between;
    - ``ks``: ``twin`` is the KS p-value here: mirrors at or above :data:`KS_P_MIRRORS`;
      else biased when the bias (of the means) is at least half the relative Wasserstein
      distance (a shift), else off (passed as ``persistence``, the shift share).
    """
    if score == "mape":
        if twin <= MAPE_TOLERANCE or (persistence is not None and twin <= persistence):
            return "mirrors"
        if z is not None and z <= Z_MIRRORS:
            return "mirrors"
        return "biased" if abs(bias) >= 0.5 * twin else "off"
    if score == "z":
        if twin <= Z_MIRRORS:
            return "mirrors"
        return "off" if twin > Z_OFF else "biased"
    if twin >= KS_P_MIRRORS:
        return "mirrors"
    return "biased" if persistence is not None and persistence >= 0.5 else "off"


# --------------------------------------------------------------------------- the checks


def persistence(
    ran: Replay, observed: pl.DataFrame, kpis: list[str]
) -> tuple[pl.DataFrame, str | None]:
    """What persistence predicts for each service and hour of the window, and how.

    The observed value a week before where the telemetry holds the week before the
    window, else a day before; else the last hour observed before the window, carried
    forward (a forecast that sees nothing of the window); None without earlier telemetry.
    """
    before = ran.before.get("requests")
    if before is None or before.height == 0:
        return observed.clear().select("time", "service", *kpis), None
    span = (ran.window[0] - before["time"].min()).total_seconds() / 3600.0
    history = pl.concat([before, observed]).select("time", "service", *kpis)
    for period, words in ((HOURS_PER_WEEK, "a week before"), (HOURS_PER_DAY, "a day before")):
        if span >= period:
            return history.with_columns(pl.col("time") + timedelta(hours=period)), words
    last = (
        before.sort("time")
        .group_by("service", maintain_order=True)
        .agg([pl.col(k).drop_nulls().last() for k in kpis])
    )
    return observed.select("time", "service").join(last, on="service", how="left"), (
        "the last hour before the window"
    )


def _services(ran: Replay) -> Iterator[dict[str, Any]]:
    """Per service and KPI: MAPE and bias of the hourly series against persistence."""
    observed = ran.observed.get("requests")
    if observed is None or observed.height == 0:
        return
    kpis = {"requests": "requests per hour", "errors": "failed requests per hour",
            "latency_p50_ms": "ms", "latency_p95_ms": "ms"}  # fmt: skip
    runs = pl.concat(
        [t["requests"].with_columns(seed=pl.lit(r)) for r, t in enumerate(ran.simulated)]
    )
    simulated = (
        runs.sort("service", "time", "seed")  # a fixed order of summing
        .group_by("time", "service", maintain_order=True)
        .agg([pl.col(k).mean() for k in kpis])
    )
    earlier, how = persistence(ran, observed, list(kpis))
    entry = ran.drive.entry_rps
    names = list(ran.scenario.services)
    driven = (
        set() if entry is None
        else {names[i] for i in np.flatnonzero(np.isfinite(entry).any(axis=0))}
    )  # fmt: skip
    for service in ran.scenario.services:
        seen = observed.filter(pl.col("service") == service)
        if seen.height == 0:
            continue
        joined = seen.join(
            simulated.filter(pl.col("service") == service), on="time", suffix="_twin"
        ).join(earlier.filter(pl.col("service") == service), on="time", how="left",
               suffix="_persist").sort("time")  # fmt: skip
        quiet = ~_incident_hours(ran, service, joined["time"])
        for kpi, unit in kpis.items():
            if kpi == "requests" and service in driven:
                continue  # imposed on the replay: the twin reproduces it
            o = joined[kpi].to_numpy().astype(float)
            s = joined[f"{kpi}_twin"].to_numpy().astype(float)
            p = joined[f"{kpi}_persist"].to_numpy().astype(float)
            ok = np.isfinite(o) & np.isfinite(s) & (o > 0)
            if kpi == "errors":
                ok &= quiet
            if ok.sum() < 3:
                continue
            twin_mape = float(np.mean(np.abs(s[ok] - o[ok]) / o[ok]))
            with_p = ok & np.isfinite(p)
            persist_mape = (
                float(np.mean(np.abs(p[with_p] - o[with_p]) / o[with_p])) if with_p.any() else None
            )
            bias = float(s[ok].mean() / o[ok].mean() - 1.0)
            hours = joined["time"].filter(pl.Series(ok))
            per_seed = (
                runs.filter((pl.col("service") == service) & pl.col("time").is_in(hours.to_list()))
                .sort("seed", "time").group_by("seed", maintain_order=True)
                .agg(pl.col(kpi).mean())[kpi].to_numpy()
            )  # fmt: skip
            spread = float(per_seed.var(ddof=1)) if per_seed.size > 1 else 0.0
            if kpi in COUNT_KPIS:  # a count's mean over n hours varies at least as Poisson
                spread = max(spread, float(s[ok].mean()) / ok.sum())
            z = (
                abs(s[ok].mean() - o[ok].mean()) / math.sqrt(spread * (1 + 1 / per_seed.size))
                if spread > 0 else None
            )  # fmt: skip
            line = verdict("mape", twin_mape, persist_mape, bias, z)
            than = (
                "" if persist_mape is None
                else f" (persistence {persist_mape:.1%}: {how})"
            )  # fmt: skip
            yield _line(
                "service", kpi, service, unit, int(ok.sum()), o[ok].mean(), s[ok].mean(),
                float(np.nanmean(p[with_p])) if with_p.any() else None, "mape", twin_mape,
                persist_mape, bias, line,
                f"{service} {kpi.replace('_', ' ')}: the twin is {twin_mape:.1%} off hour by "
                f"hour{than}, {bias:+.1%} on average: {line}",
            )  # fmt: skip


def _incident_hours(ran: Replay, service: str, times: pl.Series) -> np.ndarray:
    """Whether an incident was open on ``service`` at each time, in production or in
    any seed: from its start to the hour after it was resolved (to the end while open).
    The errors of those hours are the incidents' (scored by the incidents and restore
    lines, and random in the twin), not the service's own."""
    out = np.zeros(times.len(), dtype=bool)
    frames = [ran.observed.get("incidents"), *(t["incidents"] for t in ran.simulated)]
    for frame in frames:
        if frame is None or frame.height == 0:
            continue
        for began, ended in (
            frame.filter(pl.col("service") == service).select("started", "resolved").iter_rows()
        ):
            open_ = (times >= began).to_numpy()
            if ended is not None:
                open_ &= (times <= ended + timedelta(hours=1)).to_numpy()
            out |= open_
    return out


def _count_z(observed: float, simulated: np.ndarray) -> tuple[float, float]:
    """The simulated mean and ``|z|`` of an observed count against counts across seeds:
    the spread at least Poisson, plus the mean's own error."""
    mean = float(simulated.mean())
    spread = max(float(simulated.var(ddof=1)) if simulated.size > 1 else 0.0, mean, 1.0)
    return mean, abs(observed - mean) / math.sqrt(spread * (1 + 1 / simulated.size))


def _incidents(ran: Replay) -> Iterator[dict[str, Any]]:
    """Incidents a week, per team and in all, against the seeds' counts."""
    observed = ran.observed.get("incidents")
    if observed is None:
        return
    weeks = ran.hours / HOURS_PER_WEEK
    before = ran.before.get("incidents")
    span = ran.hours
    for team in ["all", *ran.scenario.teams]:
        count = float(_of_team(observed, team).height)
        counts = np.array(
            [_of_team(t["incidents"], team).height for t in ran.simulated], dtype=float
        )
        if count == 0 and counts.sum() == 0:
            continue
        mean, z = _count_z(count, counts)
        previous = None
        if before is not None and before.height:
            since = ran.window[0] - timedelta(hours=span)
            if before["started"].min() <= since:
                previous = float(_of_team(before, team).filter(pl.col("started") >= since).height)
        p_score = None if previous is None else _count_z(count, np.array([previous] * 2))[1]
        bias = mean / count - 1.0 if count else math.inf
        line = verdict("z", z, p_score, bias)
        yield _line(
            "incidents", "incidents_per_week", team, "incidents per week", int(count),
            count / weeks, mean / weeks, None if previous is None else previous / weeks,
            "z", z, p_score, bias, line,
            f"{team}: {count / weeks:.3g} incidents a week observed, the twin "
            f"{mean / weeks:.3g} ({z:.1f} sd): {line}",
        )  # fmt: skip


def _of_team(frame: pl.DataFrame, team: str) -> pl.DataFrame:
    """The rows of ``team`` (``all``: every row)."""
    return frame if team == "all" else frame.filter(pl.col("team") == team)


def _restore_hours(incidents: pl.DataFrame) -> np.ndarray:
    done = incidents.filter(pl.col("resolved").is_not_null())
    return ((done["resolved"] - done["started"]).dt.total_seconds() / 3600.0).to_numpy()


def _restore(ran: Replay) -> Iterator[dict[str, Any]]:
    """Restore-time distributions, per team and in all: KS and Wasserstein."""
    from scipy import stats

    observed = ran.observed.get("incidents")
    if observed is None:
        return
    for team in ["all", *ran.scenario.teams]:
        o = _restore_hours(_of_team(observed, team))
        s = np.concatenate([_restore_hours(_of_team(t["incidents"], team)) for t in ran.simulated])
        if o.size < MIN_RESTORES or s.size < MIN_RESTORES:
            continue
        test = stats.ks_2samp(o, s)
        distance = float(stats.wasserstein_distance(o, s))
        shift = abs(s.mean() - o.mean()) / distance if distance > 0 else 0.0
        bias = float(s.mean() / o.mean() - 1.0) if o.mean() > 0 else 0.0
        line = verdict("ks", float(test.pvalue), shift, bias)
        yield _line(
            "restore", "restore_hours", team, "hours", int(o.size), float(np.median(o)),
            float(np.median(s)), None, "ks", float(test.statistic), None, bias, line,
            f"{team}: restores take {np.median(o):.3g} h (median) observed, the twin "
            f"{np.median(s):.3g} h (KS {test.statistic:.2f}, p {test.pvalue:.2g}; "
            f"Wasserstein {distance:.3g} h): {line}",
        )  # fmt: skip


def _binomial_z(k_obs: float, n_obs: float, k_sim: float, n_sim: float) -> float:
    """``|z|`` of two proportions (pooled)."""
    pooled = (k_obs + k_sim) / (n_obs + n_sim)
    spread = pooled * (1 - pooled) * (1 / n_obs + 1 / n_sim)
    return abs(k_sim / n_sim - k_obs / n_obs) / math.sqrt(spread) if spread > 0 else 0.0


def _churn(ran: Replay) -> Iterator[dict[str, Any]]:
    """Users who left per user-day, per segment: calibration against the observed."""
    observed = ran.observed.get("user_days")
    if observed is None or observed.height == 0:
        return
    for segment in ran.scenario.segments:
        seen = observed.filter(pl.col("segment") == segment)
        if seen.height == 0:
            continue
        k_obs, n_obs = float(seen["churned"].sum()), float(seen.height)
        sims = [t["user_days"].filter(pl.col("segment") == segment) for t in ran.simulated]
        k_sim = float(sum(s["churned"].sum() for s in sims))
        n_sim = float(sum(s.height for s in sims))
        if n_sim == 0:
            continue
        z = _binomial_z(k_obs, n_obs, k_sim, n_sim)
        rate_obs, rate_sim = k_obs / n_obs, k_sim / n_sim
        bias = rate_sim / rate_obs - 1.0 if rate_obs > 0 else (0.0 if rate_sim == 0 else math.inf)
        line = verdict("z", z, None, bias)
        per_k = 1000.0
        yield _line(
            "churn", "churn_per_1000_user_days", segment, "users per 1,000 user-days",
            int(n_obs), rate_obs * per_k, rate_sim * per_k, None, "z", z, None, bias, line,
            f"{segment}: {rate_obs * per_k:.3g} of 1,000 users leave a day observed, the "
            f"twin {rate_sim * per_k:.3g} (calibration "
            f"{rate_sim / rate_obs if rate_obs else math.nan:.2f}, {z:.1f} sd): {line}",
        )  # fmt: skip


def _dora(ran: Replay) -> Iterator[dict[str, Any]]:
    """Change failure rate (binomial) and mean time to restore of the organisation."""
    observed = ran.observed.get("deploys")
    if observed is not None and observed.height:
        k_obs, n_obs = float(observed["failed"].sum()), float(observed.height)
        k_sim = float(sum(t["deploys"]["failed"].sum() for t in ran.simulated))
        n_sim = float(sum(t["deploys"].height for t in ran.simulated))
        if n_sim:
            z = _binomial_z(k_obs, n_obs, k_sim, n_sim)
            rate_obs, rate_sim = k_obs / n_obs, k_sim / n_sim
            bias = rate_sim / rate_obs - 1.0 if rate_obs > 0 else 0.0
            line = verdict("z", z, None, bias)
            yield _line(
                "dora", "change_failure_rate", "all", "share of deploys", int(n_obs), rate_obs,
                rate_sim, None, "z", z, None, bias, line,
                f"change failure rate {rate_obs:.1%} observed, the twin {rate_sim:.1%} "
                f"({z:.1f} sd): {line}",
            )  # fmt: skip
    incidents = ran.observed.get("incidents")
    if incidents is not None:
        o = _restore_hours(incidents)
        s = np.concatenate([_restore_hours(t["incidents"]) for t in ran.simulated])
        if o.size >= MIN_RESTORES and s.size >= MIN_RESTORES:
            error = math.sqrt(o.var(ddof=1) / o.size + s.var(ddof=1) / s.size)
            z = abs(s.mean() - o.mean()) / error if error > 0 else 0.0
            bias = float(s.mean() / o.mean() - 1.0) if o.mean() > 0 else 0.0
            line = verdict("z", z, None, bias)
            yield _line(
                "dora", "mttr_hours", "all", "hours", int(o.size), float(o.mean()),
                float(s.mean()), None, "z", z, None, bias, line,
                f"mean time to restore {o.mean():.3g} h observed, the twin {s.mean():.3g} h "
                f"({z:.1f} sd): {line}",
            )  # fmt: skip


CHECKS: tuple[Callable[[Replay], Iterator[dict[str, Any]]], ...] = (
    _services, _incidents, _restore, _churn, _dora,
)  # fmt: skip
"""Every kind of scorecard line, in the order they are listed."""


# --------------------------------------------------------------------------- helpers


def _line(behaviour: str, kpi: str, entity: str, unit: str, n: int, observed: float,
          twin: float, persistence: float | None, score: str, twin_score: float,
          persistence_score: float | None, bias: float, verdict: str,
          words: str) -> dict[str, Any]:  # fmt: skip
    return dict(behaviour=behaviour, kpi=kpi, entity=entity, unit=unit, n=n,
                observed=float(observed), twin=float(twin), persistence=persistence,
                score=score, twin_score=float(twin_score),
                persistence_score=persistence_score, bias=float(bias), verdict=verdict,
                words=words)  # fmt: skip


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """A line for JSON: infinities and NaN as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}  # fmt: skip


def read_scorecard(folder: str | os.PathLike[str]) -> Scorecard | None:
    """The scorecard saved in ``folder`` (:meth:`Scorecard.save`), or None if there is
    none or it does not read."""
    path = Path(folder)
    try:
        meta = json.loads((path / "scorecard.json").read_text(encoding="utf-8"))
        lines = pl.read_parquet(path / "scorecard.parquet")
        window = tuple(datetime.fromisoformat(t) for t in meta["window"])
        return Scorecard(str(meta["scenario"]), (window[0], window[1]), int(meta["seeds"]),
                         list(meta["driven_by"]), lines)  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError):
        return None


def scorecard_of(
    scenario_path: str | os.PathLike[str], name: str | None = None
) -> Scorecard | None:
    """The scorecard saved beside a scenario file (in its report folder), or None.

    Args:
        scenario_path: the scenario file.
        name: the scenario's name: a scorecard saved there for another scenario (a
            folder holding several) is not this one's.
    """
    found = read_scorecard(Path(scenario_path).parent)
    if found is None or (name is not None and found.scenario != name):
        return None
    return found


__all__ = [
    "CHECKS",
    "SCORECARD",
    "SCORECARD_COLUMNS",
    "SCORECARD_FILES",
    "VERDICTS",
    "Scorecard",
    "persistence",
    "read_scorecard",
    "score",
    "scorecard_of",
    "trust",
    "validate",
    "verdict",
]  # fmt: skip
