"""The real data sets of ``../shared/data``, read through the example mapping files.

The tests read every data set with :func:`~orgtwin.telemetry.folder.read_telemetry` and the
mapping files of ``examples/telemetry/`` (:func:`read_example`), so what they prove is
that those mappings make tables the learners take. Nothing is copied into the project: the
files are read where they lie, and a test that needs one skips with a clear reason when it
is absent (:func:`require`). ``benchmarks/bench_learn.py`` uses these helpers too, after
checking that the data are there.

What is left here is what a mapping file cannot say, because it is not a telemetry table
or not a per-value conversion:

- :func:`telco_split`: Telco's stratified 70/30 split with the churn hazard and the
  plain logistic regression it is measured against, fitted on the same columns;
- Nezha's ground truth: the injected faults (``fault_list.json``) and the service call
  graph (``dependency.csv``), which the learned figures are checked against;
- :func:`nezha_fault_free`: the latency the Nezha tests fit (:func:`time_split` splits it
  as the tests and the benchmark score it). The pod metrics carry server
  latency p90/p95/p99 but no median; the mapping maps p95 (``latency_p95_ms``) and keeps
  ``PodServerLatencyP90(s)`` as an extra column, as text, since the ``requests`` schema has
  no p90 field and ``scale:`` applies to schema fields only. This function converts it to
  ``latency_p90_ms``, cuts each time to its minute, and leaves out the minutes around the
  injected faults (a filter on rows that depends on another file).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import pytest

from orgtwin.telemetry.folder import Telemetry, read_telemetry

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data"
MAPPINGS = REPO_ROOT / "examples" / "telemetry"
TWINS = REPO_ROOT / "examples" / "twins"
"""Base twins of the real data sets (scenario files the learners start from)."""
NEZHA = "nezha_onlineboutique"
NEEDS_DROP = {NEZHA}
"""Data sets read with ``drop_bad_rows=True``: Nezha's one-minute trace files overlap, so
a few hundred spans come twice (duplicate ids, the second copy dropped and counted)."""


def require(relative: str) -> Path:
    """The path of ``relative`` under the shared data folder, or skip the test."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (see ../shared/data/README.md)")
    return path


def read_example(name: str) -> Telemetry:
    """Data set ``name`` read through ``examples/telemetry/<name>.yaml`` (skips when absent)."""
    return read_telemetry(
        require(name), mapping=MAPPINGS / f"{name}.yaml", drop_bad_rows=name in NEEDS_DROP
    )


def nezha_faults() -> list[tuple[datetime, str]]:
    """Nezha's injected faults: (time, pod), from ``fault_list.json``."""
    data = json.loads(require(f"{NEZHA}/fault/fault_list.json").read_text())
    return [
        (datetime.fromisoformat(f["inject_time"]), f["inject_pod"])
        for faults in data.values()
        for f in faults
    ]


def nezha_fault_free(requests: pl.DataFrame, *, after_fault_minutes: int = 10) -> pl.DataFrame:
    """Nezha's mapped ``requests`` with ``latency_p90_ms``, on fault-free minutes.

    ``latency_p90_ms`` is ``PodServerLatencyP90(s)`` × 1000; ``time`` is cut to the minute;
    the minutes from 2 minutes before each injected fault to ``after_fault_minutes`` after
    it are left out, as are rows without a positive p90. Sorted by service and time.
    """
    out = requests.with_columns(
        pl.col("time").dt.truncate("1m"),
        (pl.col("PodServerLatencyP90(s)").cast(pl.Float64) * 1000.0).alias("latency_p90_ms"),
    ).filter(pl.col("latency_p90_ms") > 0)
    for when, _pod in nezha_faults():
        start, end = when - timedelta(minutes=2), when + timedelta(minutes=after_fault_minutes)
        out = out.filter(~pl.col("time").is_between(start, end))
    return out.sort("service", "time")


def time_split(
    requests: pl.DataFrame, train_share: float = 0.7
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each service's earlier ``train_share`` of rows (by time) and the rest, concatenated."""
    parts = [rows.sort("time") for _, rows in requests.group_by("service", maintain_order=True)]
    cuts = [round(rows.height * train_share) for rows in parts]
    train = pl.concat([rows[:c] for rows, c in zip(parts, cuts, strict=True)])
    test = pl.concat([rows[c:] for rows, c in zip(parts, cuts, strict=True)])
    return train, test


def nezha_dependencies() -> set[tuple[str, str]]:
    """Nezha's service call graph (``dependency.csv``), service → service edges only
    (edges to node IP addresses are left out)."""
    raw = pl.read_csv(require(f"{NEZHA}/fault/metric/dependency.csv"))
    return {(a, b) for a, b in zip(raw["Source"], raw["Target"], strict=True) if not b[0].isdigit()}


class TelcoSplit(NamedTuple):
    """Telco's churn, split 70/30 (stratified), the two models fitted on the 70.

    Attributes:
        test: the held-out customers; ``y`` whether each churned.
        covariates: the columns besides the twin's (not ``TotalCharges``).
        learner: the churn hazard (contract as segment, monthly charge as price, the
            covariates shifting the log-hazard, each customer watched over the last
            month: the snapshot says who left then).
        logistic: the logistic regression's churn probability of each held-out customer,
            on the same columns (one-hot, price and tenure standardised).
    """

    test: pl.DataFrame
    y: np.ndarray
    covariates: tuple[str, ...]
    learner: Any
    logistic: np.ndarray


def telco_split(seed: int = 42) -> TelcoSplit:
    """Telco read through its example mapping, split and fitted (see :class:`TelcoSplit`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from orgtwin.learn.churn import ChurnLearner
    from orgtwin.telemetry.schemas import CUSTOMERS

    customers = read_example("telco_churn").tables["customers"].collect()
    covariates = tuple(c for c in customers.columns if c not in CUSTOMERS)
    train_i, test_i = train_test_split(
        np.arange(customers.height), test_size=0.3, stratify=customers["churned"].to_numpy(),
        random_state=seed,
    )  # fmt: skip
    train, test = customers[train_i], customers[test_i]
    categorical = ["segment", *covariates]
    encode = OneHotEncoder(drop="first").fit(train.select(categorical).to_numpy())
    scale = StandardScaler().fit(train.select("price", "tenure_months").to_numpy())

    def design(frame: pl.DataFrame) -> np.ndarray:
        numeric = scale.transform(frame.select("price", "tenure_months").to_numpy())
        return np.hstack(
            [encode.transform(frame.select(categorical).to_numpy()).toarray(), numeric]
        )

    logistic = LogisticRegression(max_iter=2000).fit(design(train), train["churned"].to_numpy())
    learner = ChurnLearner(covariates=covariates, window_months=1.0, event_time="interval")
    learner.fit(train)
    return TelcoSplit(
        test,
        test["churned"].to_numpy(),
        covariates,
        learner,
        logistic.predict_proba(design(test))[:, 1],
    )
