"""Structure learned from spans (or call totals): the services, the call graph, the fan-out.

A twin's services call each other with a fixed number of calls per request received
(``services.<caller>.calls.<callee>`` in a scenario, :class:`ServiceSpec`).
:class:`StructureLearner` reads a ``spans`` table (``trace_id``, ``span_id``,
``parent_id``, ``service``; null ``parent_id`` for a root) and finds:

- the *requests* a service receives: its entry spans, those whose parent is in another
  service or who have none (spans nested inside one service belong to the entry span
  above them);
- the *calls* from caller to callee: entry spans of the callee whose parent lies under an
  entry span of the caller;
- the *fan-out* ``calls.<callee>`` of a caller: the mean, over the caller's requests, of
  the calls each made to the callee (requests that made none count as 0), with a normal
  95% interval from the spread between requests.

An edge is kept when it carries at least ``min_calls`` calls. Spans whose parent is not
in the table (a trace cut at the window's edge) count as entries without a caller.
Where no spans were kept, :meth:`StructureLearner.fit_totals` learns the same from the
``calls`` totals and the ``requests`` each service received.

Example:
    >>> import polars as pl
    >>> spans = pl.DataFrame({"trace_id": ["t"] * 4, "span_id": ["a", "b", "c", "d"],
    ...     "parent_id": [None, "a", "a", "c"], "service": ["web", "db", "web", "db"]})
    >>> StructureLearner().fit(spans).fanout("web", "db")
    2.0
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import stats
from sklearn.utils.validation import check_is_fitted

from orgtwin.learn.base import Estimate, Fit, Learner

_Z95 = float(stats.norm.ppf(0.975))


class StructureLearner(Learner):
    """The services and their call graph with fan-out per request, from spans.

    Args:
        min_calls: calls an edge needs to be kept.

    Attributes:
        services_: every service seen, sorted.
        requests_: service → requests received (entry spans).
        calls_: (caller, callee) → calls; ``fanout_`` → (mean, standard error).
        scale_: callee → the factor :meth:`calibrate` scaled its fan-outs by (empty
            before).
    """

    behaviour: ClassVar[str] = "structure"

    def __init__(self, *, min_calls: int = 1) -> None:
        self.min_calls = min_calls

    def fit(self, spans: pl.DataFrame | pl.LazyFrame, y: Any = None) -> StructureLearner:
        """Learn the graph from ``spans`` (a LazyFrame is read for the three columns only);
        returns ``self``."""
        names = spans.collect_schema().names()
        for col in ("span_id", "parent_id", "service"):
            if col not in names:
                raise ValueError(f"spans must have a column {col!r}, got {names}")
        frame = spans.lazy().select("span_id", "parent_id", "service")
        rows = _span_rows(frame)
        self.services_ = rows.services
        code, parent = rows.code, rows.parent
        has_parent = parent >= 0
        entry = ~has_parent
        entry[has_parent] = code[parent[has_parent]] != code[has_parent]
        owner = _owners(parent, entry)
        requests = np.bincount(code[entry], minlength=len(self.services_))
        self.requests_ = {s: int(n) for s, n in zip(self.services_, requests, strict=True)}
        called = np.flatnonzero(entry & has_parent)
        caller_entry = owner[parent[called]]
        calls = pl.DataFrame(
            {"caller": code[caller_entry], "callee": code[called], "request": caller_entry}
        )
        per_request = calls.group_by("caller", "callee", "request").agg(
            pl.len().cast(pl.Int64).alias("n")
        )
        per_edge = (
            per_request.group_by("caller", "callee")
            .agg(pl.col("n").sum().alias("total"), (pl.col("n") ** 2).sum().alias("squares"))
            .sort("caller", "callee")
        )
        self.calls_, self.fanout_, self.scale_ = {}, {}, {}
        for caller, callee, total, squares in per_edge.iter_rows():
            if total < self.min_calls:
                continue
            edge = (self.services_[caller], self.services_[callee])
            self.calls_[edge] = int(total)
            self.fanout_[edge] = _mean_and_se(total, squares, int(requests[caller]))
        return self

    def fit_totals(
        self, calls: pl.DataFrame | pl.LazyFrame, requests: pl.DataFrame | pl.LazyFrame
    ) -> StructureLearner:
        """Learn the graph from call totals where no spans were kept; returns ``self``.

        ``calls`` (``caller``, ``callee``, ``count``: calls over the window, rows of one
        pair added up) and ``requests`` (``service``, ``requests``: requests received,
        over the same window). The fan-out of an edge is its calls over the caller's
        requests; with no per-request counts, its interval takes the calls as Poisson
        (standard error ``sqrt(calls) / requests``). Callers without requests are left
        out. Requests that were received but shed make the fan-out look smaller.
        """
        totals = calls.lazy().group_by("caller", "callee").agg(pl.col("count").sum()).collect()
        received = requests.lazy().group_by("service").agg(pl.col("requests").sum()).collect()
        by_service = {s: float(n) for s, n in received.iter_rows() if n and n > 0}
        self.requests_ = {s: round(n) for s, n in by_service.items()}
        self.services_ = sorted(set(self.requests_) | set(totals["caller"]) | set(totals["callee"]))
        self.calls_, self.fanout_, self.scale_ = {}, {}, {}
        for caller, callee, count in totals.sort("caller", "callee").iter_rows():
            n = by_service.get(caller, 0.0)
            if count < self.min_calls or n <= 0:
                continue
            self.calls_[(caller, callee)] = round(count)
            self.fanout_[(caller, callee)] = (count / n, math.sqrt(count) / n)
        return self

    def calibrate(
        self, requests: pl.DataFrame | pl.LazyFrame, *, entries: frozenset[str] = frozenset()
    ) -> StructureLearner:
        """Scale each callee's fan-outs so the graph sends it the requests it received.

        Spans show the graph's shape and how a service's calls split between its
        callers; its metrics (``requests``: ``time``, ``service``, ``requests``) count
        what it received. Over the times at which a callee and all its callers were
        measured, ``k = Σ received / Σ_callers fan-out × the caller's received``, and every
        fan-out into the callee (and its interval) is multiplied by ``k``. Where traces are
        sampled unevenly, or cover other minutes than the metrics, the volumes then agree
        with the metrics. Services in ``entries`` (requests arrive there from outside too)
        are left as they are, as are callees without such times. Returns ``self``;
        ``scale_`` holds each callee's ``k``.
        """
        check_is_fitted(self, "fanout_")
        rows = requests.lazy().select("time", "service", "requests").collect()
        wide = rows.filter(pl.col("requests").is_not_null()).pivot(
            on="service", index="time", values="requests", aggregate_function="sum"
        )
        self.scale_ = {}
        for callee in sorted({c for _, c in self.fanout_} - set(entries)):
            callers = sorted(p for p, c in self.fanout_ if c == callee)
            columns = [callee, *callers]
            if not set(columns) <= set(wide.columns):
                continue
            seen = wide.select(columns).drop_nulls()
            if seen.height == 0:
                continue
            sent = sum(self.fanout_[(p, callee)][0] * seen[p].sum() for p in callers)
            if sent <= 0 or seen[callee].sum() <= 0:
                continue
            k = float(seen[callee].sum() / sent)
            self.scale_[callee] = k
            for p in callers:
                mean, se = self.fanout_[(p, callee)]
                self.fanout_[(p, callee)] = (mean * k, se * k)
        return self

    def edges(self) -> set[tuple[str, str]]:
        """The call graph: (caller, callee) pairs kept."""
        check_is_fitted(self, "fanout_")
        return set(self.fanout_)

    def fanout(self, caller: str, callee: str) -> float:
        """Mean calls from ``caller`` to ``callee`` per request ``caller`` receives."""
        check_is_fitted(self, "fanout_")
        return self.fanout_.get((caller, callee), (0.0, math.nan))[0]

    def calls(self) -> dict[str, dict[str, float]]:
        """``caller → {callee: calls per request}``, as a scenario's ``calls`` take them."""
        out: dict[str, dict[str, float]] = {}
        for (caller, callee), (mean, _) in self.fanout_.items():
            out.setdefault(caller, {})[callee] = mean
        return out

    def estimates(self, service: str | None = None) -> list[Estimate]:
        """``calls.<callee>`` of ``service`` (of every caller when None), 95% intervals."""
        check_is_fitted(self, "fanout_")
        out = []
        for (caller, callee), (mean, se) in self.fanout_.items():
            if service is not None and caller != service:
                continue
            half = _Z95 * se if math.isfinite(se) else math.nan
            out.append(
                Estimate(f"calls.{callee}", mean, max(mean - half, 0.0), mean + half, "learned",
                         f"calls per request {caller} receives",
                         "mean over requests, normal interval", self.requests_[caller])
            )  # fmt: skip
        return out

    def fits(self) -> list[Fit]:
        """One :class:`Fit` per calling service (entity ``service <name>``)."""
        check_is_fitted(self, "fanout_")
        callers = sorted({caller for caller, _ in self.fanout_})
        return [
            Fit(self.behaviour, f"service {c}", self.estimates(c), None, self.requests_[c])
            for c in callers
        ]


class _Rows(NamedTuple):
    services: list[str]
    code: NDArray[np.int64]
    parent: NDArray[np.int64]


def _span_rows(frame: pl.LazyFrame) -> _Rows:
    """The services (sorted), each span's service code and its parent's row (-1 for none
    or a parent not in the table; of two spans with one id, the later is the parent)."""
    rows = frame.collect()
    if rows["service"].null_count():
        raise ValueError("spans.service must not be null")
    services = rows["service"].unique().sort().to_list()
    code = rows["service"].cast(pl.Enum(services)).to_physical().cast(pl.Int64).to_numpy()
    ids, parents = rows["span_id"], rows["parent_id"]
    del rows  # the services' text is no longer needed
    return _Rows(services, code, _parent_rows(ids, parents))


def _parent_rows(ids: pl.Series, parents: pl.Series) -> NDArray[np.int64]:
    """Each span's parent's row, -1 where it has none in the table; of rows sharing an id,
    the last. Looked up by the ids' 64-bit hashes (a sort and a binary search), each match
    then checked on the ids themselves; should two ids share a hash, by a join instead."""
    by_hash = pl.DataFrame({"hash": ids.hash()}).with_row_index("row").sort("hash", "row")
    order = by_hash["row"].to_numpy()  # equal hashes in row order
    sorted_hash = by_hash["hash"].to_numpy()
    del by_hash
    parent_hash = parents.hash().to_numpy()
    queries = pl.Series(parent_hash).arg_sort().to_numpy()  # sorted queries: cache-friendly
    at = np.empty(len(parent_hash), dtype=np.int64)
    at[queries] = np.searchsorted(sorted_hash, parent_hash[queries], side="right") - 1
    del queries
    found = (at >= 0) & parents.is_not_null().to_numpy()
    np.maximum(at, 0, out=at)
    found &= sorted_hash[at] == parent_hash  # the last of equal hashes
    del parent_hash, sorted_hash
    row = np.where(found, order[at].astype(np.int64), -1)
    del at, order
    candidates = np.flatnonzero(found)
    for part in np.array_split(candidates, max(len(candidates) // _CHECKED_AT_ONCE, 1)):
        same = ids.gather(row[part]) == parents.gather(part)
        if not same.fill_null(False).all():
            return _parent_rows_joined(ids, parents)
    return row


_CHECKED_AT_ONCE = 1_000_000
"""Matches checked per step (the ids gathered as text: bounded memory)."""


def _parent_rows_joined(ids: pl.Series, parents: pl.Series) -> NDArray[np.int64]:
    """:func:`_parent_rows` by a join on the ids themselves."""
    rows = pl.DataFrame({"span_id": ids, "parent_id": parents}).with_row_index("__row")
    last = rows.group_by("span_id").agg(pl.col("__row").max().alias("__parent"))
    joined = rows.join(last, left_on="parent_id", right_on="span_id", how="left")
    return joined.sort("__row")["__parent"].fill_null(-1).cast(pl.Int64).to_numpy()


def _owners(parent: NDArray[np.int64], entry: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Each span's entry span: itself if an entry, else its parent's (pointer jumping:
    every step doubles the depth covered). A non-entry span always has a parent."""
    owner = np.where(entry, np.arange(len(parent)), parent)
    for _ in range(64):
        ahead = owner[owner]
        if np.array_equal(ahead, owner):
            break
        owner = ahead
    return owner


def _mean_and_se(total: int, squares: int, requests: int) -> tuple[float, float]:
    """Mean calls per request and its standard error, from the sum and the sum of squares
    of the calls per request (requests that made none count 0)."""
    n = max(requests, 1)
    mean = total / n
    if n == 1:
        return mean, math.nan
    variance = max(squares - total * mean, 0.0) / (n - 1)  # Σ(c - mean)² = Σc² - n·mean²
    return mean, math.sqrt(variance / n)


def edge_scores(learned: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float]:
    """Precision and recall of ``learned`` edges against ``truth``.

    Example:
        >>> edge_scores({("a", "b"), ("a", "c")}, {("a", "b")})
        (0.5, 1.0)
    """
    hits = len(learned & truth)
    precision = hits / len(learned) if learned else math.nan
    recall = hits / len(truth) if truth else math.nan
    return precision, recall
