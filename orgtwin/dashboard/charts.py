"""Charts of the dashboard: small pure functions from a DataFrame to an Altair chart.

Nothing here computes a simulation or touches Streamlit: each function takes the frame a
library call returned (or a light reshaping of it) and returns a chart, so every chart
can be drawn, saved (``chart.to_html()``) and tested on its own.

Vega-Lite reads dots in field names as nested access, so frames whose columns are lever
paths (``teams.*.oncall_size``) are renamed to plain ``x``/``y``/``value`` first and the
paths are kept as axis titles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import altair as alt
import polars as pl

KIND_ORDER = ("segment", "service", "vendor", "team")
"""Columns of the ripple graph, left to right: who uses what, and who runs it."""
KIND_TITLES = {
    "segment": "User segments",
    "service": "Services",
    "vendor": "Vendors",
    "team": "Teams",
}
RUN_COLOURS = ("#8c8c8c", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
"""The base run in grey, then one colour per scenario."""
ROW_PX = 26
"""Vertical space per node of the tallest ripple column, px."""
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")
PICKED_NODE = "node"
"""The ripple graph's selection: the node a click picked (its ``id``; a double click clears)."""
"""Fill the page's width; keep the plot's own height (legends and titles come on top)."""


def band_chart(
    df: pl.DataFrame, title: str, unit: str, *, start: datetime | None = None
) -> alt.LayerChart:
    """A daily mean line with its band over seeds, one colour per run.

    Args:
        df: columns ``day``, ``mean``, ``low``, ``high`` and ``run`` (the run's name, e.g.
            ``"base"`` and the scenario); the band is ``low``..``high``, cut at zero
            when no mean is negative (a count or a cost cannot be).
        title: chart title.
        unit: unit of the values (the y axis title).
        start: the date of day 0 (a scenario's ``start``): the time axis then shows
            dates (``start`` + ``day``) instead of day numbers.
    """
    runs = df["run"].unique(maintain_order=True).to_list()
    if df.height and (df["mean"].min() or 0) >= 0:  # a count or cost: no band below zero
        df = df.with_columns(pl.col("low").clip(lower_bound=0.0))
    colour = alt.Color(
        "run:N",
        title=None,
        scale=alt.Scale(domain=runs, range=list(RUN_COLOURS[: len(runs)])),
        legend=alt.Legend(orient="top"),
    )
    x, when = alt.X("day:Q", title="day"), alt.Tooltip("day:Q")
    if start is not None:
        df = df.with_columns(date=pl.lit(start) + pl.duration(days=pl.col("day")))
        x, when = alt.X("date:T", title=None), alt.Tooltip("date:T", format="%Y-%m-%d")
    base = alt.Chart(df.to_pandas()).encode(x=x, color=colour)
    band = base.mark_area(opacity=0.18).encode(
        y=alt.Y("low:Q", title=unit, scale=alt.Scale(zero=False)), y2="high:Q"
    )
    line = base.mark_line(strokeWidth=2).encode(
        y="mean:Q",
        tooltip=[
            alt.Tooltip("run:N"),
            when,
            alt.Tooltip("mean:Q", format=",.4~g"),
            alt.Tooltip("low:Q", title="95% low", format=",.4~g"),
            alt.Tooltip("high:Q", title="95% high", format=",.4~g"),
        ],
    )
    return alt.layer(band, line).properties(title=title, height=200, autosize=FIT_WIDTH)


def ripple_layout(nodes: pl.DataFrame, edges: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Positions of the ripple graph: one column per kind, nodes spread down each column.

    Args:
        nodes: one row per node with at least ``id``, ``kind`` and ``name``.
        edges: one row per link with ``source`` and ``target`` (node ids).

    Returns:
        ``nodes`` with ``x`` (column index) and ``y`` (0 at the top, 1 at the bottom), and
        the edges that join two known nodes, with ``x``, ``y``, ``x2``, ``y2``.
    """
    kinds = [k for k in KIND_ORDER if k in set(nodes["kind"].to_list())]
    kinds += sorted(set(nodes["kind"].to_list()) - set(kinds))
    placed = (
        nodes.with_columns(
            x=pl.col("kind").replace_strict(kinds, range(len(kinds)), return_dtype=pl.Float64)
        )
        .sort("x", "name")
        .with_columns(
            y=((pl.int_range(pl.len()).over("kind") + 0.5) / pl.len().over("kind")).cast(pl.Float64)
        )
    )
    where = placed.select("id", "x", "y")
    lines = edges.join(where, left_on="source", right_on="id").join(
        where.rename({"x": "x2", "y": "y2"}), left_on="target", right_on="id"
    )
    return placed, lines


def ripple_chart(nodes: pl.DataFrame, edges: pl.DataFrame) -> alt.LayerChart:
    """The ripple graph: segments, services, vendors and teams coloured by impact.

    Args:
        nodes: :attr:`orgtwin.explore.ripple.Ripple.nodes`: ``id``, ``kind``, ``name``, ``metric``,
            ``base``, ``change``, ``rel_change``, ``impact`` (-1 worse .. +1 better) and
            ``significant``.
        edges: :attr:`orgtwin.explore.ripple.Ripple.edges`: ``source``, ``target``, ``kind``.
    """
    placed, lines = ripple_layout(nodes, edges)
    tallest = int(placed.group_by("kind").len()["len"].max() or 1)
    kinds = placed["kind"].unique(maintain_order=True).to_list()
    x = alt.X("x:Q", axis=None, scale=alt.Scale(domain=[-0.3, max(1, len(kinds)) - 0.3]))
    y = alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[1.02, -0.08]))
    links = (
        alt.Chart(lines.to_pandas())
        .mark_rule(color="#b0b0b0", opacity=0.45, strokeWidth=1)
        .encode(x=x, y=y, x2="x2:Q", y2="y2:Q")
    )
    labels = (
        alt.Chart(placed.to_pandas())
        .mark_text(align="left", dx=11, fontSize=11, color="#333")
        .encode(x=x, y=y, text="name:N")
    )
    headers = pl.DataFrame(
        {
            "x": [float(i) for i in range(len(kinds))],
            "y": [-0.05] * len(kinds),
            "title": [KIND_TITLES.get(k, k) for k in kinds],
        }
    )
    titles = (
        alt.Chart(headers.to_pandas())
        .mark_text(align="left", dx=-6, fontWeight="bold", fontSize=12)
        .encode(x=x, y=y, text="title:N")
    )
    layers = alt.layer(links, _ripple_dots(placed, x, y), labels, titles)
    return layers.properties(height=max(240, ROW_PX * tallest), autosize=FIT_WIDTH)


def _ripple_dots(placed: pl.DataFrame, x: alt.X, y: alt.Y) -> alt.Chart:
    """The nodes: colour is the signed impact, size how far the node moved; a click picks
    one (:data:`PICKED_NODE`)."""
    pick = alt.selection_point(name=PICKED_NODE, fields=["id"], on="click", clear="dblclick")
    return (
        alt.Chart(placed.with_columns(moved=pl.col("impact").abs()).to_pandas())
        .mark_circle(stroke="#444", strokeWidth=0.6, opacity=1, cursor="pointer")
        .add_params(pick)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "impact:Q",
                title="impact (worse − / better +)",
                scale=alt.Scale(scheme="redyellowgreen", domain=[-1, 1], domainMid=0),
                legend=alt.Legend(orient="top", gradientLength=220),
            ),
            size=alt.Size("moved:Q", scale=alt.Scale(domain=[0, 1], range=[90, 520]), legend=None),
            tooltip=[
                alt.Tooltip("kind:N"),
                alt.Tooltip("name:N"),
                alt.Tooltip("metric:N"),
                alt.Tooltip("base:Q", format=",.4~g"),
                alt.Tooltip("change:Q", format=",.4~g"),
                alt.Tooltip("rel_change:Q", title="change", format="+.2%"),
                alt.Tooltip("significant:N"),
            ],
        )
    )


def picked_node(event: Any) -> str | None:
    """The id of the ripple node a click picked, from ``st.altair_chart``'s selection
    event; None when nothing is picked.

    Example:
        >>> picked_node({"selection": {"node": [{"id": "team:platform"}]}})
        'team:platform'
        >>> picked_node({"selection": {"node": []}}) is None
        True
    """
    picked = ((event or {}).get("selection") or {}).get(PICKED_NODE) or []
    first = picked[0] if picked else {}
    return first.get("id") if isinstance(first, dict) else None


def kpi_interval_chart(df: pl.DataFrame) -> alt.LayerChart:
    """One KPI's mean per scenario as a dot, with its 95% interval as a whisker.

    The axis does not start at zero, so that differences of a fraction of a percent
    (availability, users) stay visible.

    Args:
        df: columns ``scenario``, ``mean``, ``ci_low``, ``ci_high`` and ``unit`` (the
            same in every row); the scenarios keep the row order.
    """
    order = df["scenario"].to_list()
    unit = df["unit"][0] if df.height else ""
    base = alt.Chart(df.to_pandas()).encode(
        x=alt.X("scenario:N", sort=order, title=None, axis=alt.Axis(labelAngle=0))
    )
    whiskers = base.mark_errorbar(ticks=True, color="#333").encode(
        y=alt.Y("ci_low:Q", title=unit, scale=alt.Scale(zero=False)), y2="ci_high:Q"
    )
    dots = base.mark_point(filled=True, size=160, opacity=1).encode(
        y="mean:Q",
        color=alt.Color(
            "scenario:N", sort=order, legend=None, scale=alt.Scale(range=list(RUN_COLOURS[1:]))
        ),
        tooltip=[
            alt.Tooltip("scenario:N"),
            alt.Tooltip("mean:Q", format=",.4~g"),
            alt.Tooltip("ci_low:Q", title="95% low", format=",.4~g"),
            alt.Tooltip("ci_high:Q", title="95% high", format=",.4~g"),
        ],
    )
    return alt.layer(whiskers, dots).properties(height=300, autosize=FIT_WIDTH)


def heatmap(df: pl.DataFrame, x: str, y: str, value: str) -> alt.LayerChart:
    """A KPI over two levers: one cell per pair of levels, the value written in it.

    Args:
        df: one row per cell with columns ``x``, ``y`` and ``value``.
        x: title of the x axis (a lever path).
        y: title of the y axis (a lever path).
        value: title of the colour scale (the KPI and its unit).
    """
    base = alt.Chart(df.to_pandas()).encode(
        x=alt.X("x:O", title=x, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("y:O", title=y, sort="descending"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("value:Q", title=value, scale=alt.Scale(scheme="viridis")),
        tooltip=[
            alt.Tooltip("x:O", title=x),
            alt.Tooltip("y:O", title=y),
            alt.Tooltip("value:Q", title=value, format=",.4~g"),
        ],
    )
    low, high = (df["value"].min(), df["value"].max()) if df.height else (0.0, 0.0)
    bright = alt.datum.value > (float(low) + float(high)) / 2  # viridis is light at the top
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("value:Q", format=",.4~g"),
        color=alt.condition(bright, alt.value("black"), alt.value("white")),
    )
    return alt.layer(cells, text).properties(
        height=max(160, 42 * df["y"].n_unique()), autosize=FIT_WIDTH
    )


def importance_chart(df: pl.DataFrame) -> alt.Chart:
    """Lever importance as horizontal bars, most important on top.

    Args:
        df: :func:`orgtwin.sweeps.analysis.lever_importance`'s result: ``lever``,
            ``importance_mean``, ``importance_std``.
    """
    order = df["lever"].to_list()
    return (
        alt.Chart(df.rename({"lever": "name"}).to_pandas())
        .mark_bar()
        .encode(
            y=alt.Y("name:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("importance_mean:Q", title="drop of surrogate R² when shuffled"),
            tooltip=[
                alt.Tooltip("name:N", title="lever"),
                alt.Tooltip("importance_mean:Q", format=".3f"),
                alt.Tooltip("importance_std:Q", format=".3f"),
            ],
        )
        .properties(height=max(80, 34 * len(order)), autosize=FIT_WIDTH)
    )


def curve_against_points(
    points: pl.DataFrame, curve: pl.DataFrame, x: str, y: str, *, x_title: str, y_title: str
) -> alt.LayerChart:
    """Observed points (grey dots) and a fitted curve (a line) over the same axes.

    Args:
        points: the observations, columns ``x`` and ``y``.
        curve: the fitted curve, columns ``x`` and ``y``, sorted by ``x``.
        x, y: the column names; x_title, y_title: the axis titles, with units.
    """
    ex, why = alt.X(f"{x}:Q", title=x_title), alt.Y(f"{y}:Q", title=y_title)
    dots = (
        alt.Chart(points.to_pandas())
        .mark_circle(size=18, opacity=0.35, color=RUN_COLOURS[0])
        .encode(x=ex, y=why, tooltip=[alt.Tooltip(f"{x}:Q", format=".2f"), f"{y}:Q"])
    )
    line = alt.Chart(curve.to_pandas()).mark_line(strokeWidth=2, color=RUN_COLOURS[1])
    line = line.encode(x=ex, y=why)
    return alt.layer(dots, line).properties(height=260, autosize=FIT_WIDTH)


OBSERVED_LEARNED = alt.Scale(domain=["observed", "learned"], range=[RUN_COLOURS[0], RUN_COLOURS[1]])
"""The data in grey, what the twin learned from them in blue."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _observed_and_learned(
    observed: pl.DataFrame,
    learned: pl.DataFrame,
    x: alt.X,
    y: alt.Y,
    tooltip: list[alt.Tooltip],
    observed_line: dict[str, Any],
    dots: pl.DataFrame | None = None,
) -> alt.LayerChart:
    """Observed values (a grey line, and grey dots at ``dots`` where given) under the
    learned line (blue), with a legend."""
    colour = alt.Color(
        "what:N", title=None, scale=OBSERVED_LEARNED, legend=alt.Legend(orient="top")
    )
    tips = [alt.Tooltip("what:N", title="series"), *tooltip]
    seen = alt.Chart(observed.with_columns(what=pl.lit("observed")).to_pandas())
    seen = seen.mark_line(**observed_line).encode(x=x, y=y, color=colour, tooltip=tips)
    line = alt.Chart(learned.with_columns(what=pl.lit("learned")).to_pandas())
    line = line.mark_line(strokeWidth=2).encode(x=x, y=y, color=colour, tooltip=tips)
    layers: list[alt.Chart] = [seen, line]
    if dots is not None:
        points = alt.Chart(dots.with_columns(what=pl.lit("observed")).to_pandas())
        points = points.mark_circle(size=36, opacity=0.9)
        layers.insert(1, points.encode(x=x, y=y, color=colour, tooltip=tips))
    return alt.layer(*layers).properties(height=260, autosize=FIT_WIDTH)


def distribution_against_data(
    observed: pl.DataFrame, learned: pl.DataFrame, *, x_title: str, y_title: str
) -> alt.LayerChart:
    """An empirical CDF (grey steps, a dot per observation) against a learned CDF (a line).

    Layers: the steps (from ``(0, 0)``), the dots (one per row of ``observed``), the line.

    Args:
        observed: the data's CDF, columns ``hours`` and ``share``, one row per observation,
            sorted by ``hours``.
        learned: the learned CDF, columns ``hours`` and ``share``, sorted by ``hours``.
        x_title, y_title: the axis titles, with units.
    """
    start = pl.DataFrame({"hours": [0.0], "share": [0.0]}, schema=observed.schema)
    steps = pl.concat([start, observed]) if observed.height else observed
    x = alt.X("hours:Q", title=x_title)
    y = alt.Y("share:Q", title=y_title, scale=alt.Scale(domain=[0, 1]))
    tooltip = [
        alt.Tooltip("hours:Q", title=x_title, format=".3~g"),
        alt.Tooltip("share:Q", title=y_title, format=".1%"),
    ]
    mark = {"interpolate": "step-after", "strokeWidth": 1.5}
    return _observed_and_learned(steps, learned, x, y, tooltip, mark, dots=observed)


def profile_against_observed(
    observed: pl.DataFrame, learned: pl.DataFrame, *, y_title: str
) -> alt.LayerChart:
    """An hour-of-week profile (a line) against the observed one (grey), Monday first.

    Args:
        observed: the observed profile, columns ``hour_of_week`` (0 = Monday 00:00) and
            ``rate``.
        learned: the learned profile, the same columns, 168 rows.
        y_title: the y axis title, with its unit.
    """
    days = "[" + ", ".join(f"'{d}'" for d in WEEKDAYS) + "]"
    axis = alt.Axis(
        values=list(range(0, 168, 24)),
        labelExpr=f"{days}[floor(datum.value / 24)] + ' 0h'",
        grid=True,
    )
    x = alt.X(
        "hour_of_week:Q",
        title="hour of the week (Mon 0h … Sun 23h)",
        axis=axis,
        scale=alt.Scale(domain=[0, 167]),
    )
    y = alt.Y("rate:Q", title=y_title)
    tooltip = [
        alt.Tooltip("hour_of_week:Q", title="hour of the week (Mon 0h = 0)"),
        alt.Tooltip("rate:Q", title=y_title, format=".3~g"),
    ]
    mark = {"strokeWidth": 1.2, "opacity": 0.8, "point": {"size": 14}}
    return _observed_and_learned(observed, learned, x, y, tooltip, mark)


ALARM_COLOUR = "#d62728"
"""Alarms in red: a dashed rule at the change point, a diamond where the alarm was raised."""
UTC_TIME = alt.Scale(type="utc")
"""Times drawn as they are (UTC), as the tables show them, not in the browser's zone."""
MINUTE = "utcyearmonthdatehoursminutes"


def _utc(df: pl.DataFrame) -> Any:
    """``df`` for Altair with its naive times marked UTC (so neither the page nor a
    downloaded chart reads them in the browser's zone)."""
    naive = [c for c, t in df.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is None]
    return df.with_columns(pl.col(naive).dt.replace_time_zone("UTC")).to_pandas()


def _when(field: str, title: str) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", timeUnit=MINUTE, title=title)


def _alarm_marks(alarms: pl.DataFrame, dots: pl.DataFrame, y: str) -> list[alt.Chart]:
    """A dashed red rule at each alarm's change point (``since``) and a red diamond where
    it was raised (``dots``: ``raised`` and ``y``); none without alarms."""
    if not alarms.height:
        return []
    tips = [_when("since", "drifting since"), _when("raised", "alarm raised")]
    rules = (
        alt.Chart(_utc(alarms.select("since", "raised")))
        .mark_rule(color=ALARM_COLOUR, strokeDash=[5, 3], strokeWidth=1.5)
        .encode(x=alt.X("since:T", scale=UTC_TIME), tooltip=tips)
    )
    points = (
        alt.Chart(_utc(dots.select("since", "raised", y)))
        .mark_point(color=ALARM_COLOUR, size=110, filled=True, shape="diamond", opacity=1)
        .encode(x=alt.X("raised:T", scale=UTC_TIME), y=alt.Y(f"{y}:Q"), tooltip=tips)
    )
    return [rules, points]


def _raised_at(points: pl.DataFrame, alarms: pl.DataFrame, y: str) -> pl.DataFrame:
    """Each alarm with the stream's ``y`` at the point where it was raised."""
    at = points.select(raised=pl.col("time"), value=pl.col(y))
    return alarms.select("since", "raised").join(at, on="raised", how="left").rename({"value": y})


def residual_timeline(points: pl.DataFrame, alarms: pl.DataFrame) -> alt.LayerChart:
    """A stream's standardised residuals over time, with its alarms marked.

    Layers: the residuals (a grey line), the zero line, then, where there are alarms, a
    dashed red rule at each change point (``since``) and a red diamond at each alarm
    (``raised``, on the line).

    Args:
        points: the stream: columns ``time`` and ``z``.
        alarms: its alarms: columns ``since`` and ``raised``.
    """
    x = alt.X("time:T", title="time (UTC)", scale=UTC_TIME)
    y = alt.Y("z:Q", title="residual (standard deviations from the twin)")
    line = (
        alt.Chart(_utc(points.select("time", "z")))
        .mark_line(strokeWidth=1.2, color=RUN_COLOURS[0])
        .encode(x=x, y=y, tooltip=[_when("time", "time"), alt.Tooltip("z:Q", format="+.2f")])
    )
    zero = alt.Chart(pl.DataFrame({"z": [0.0]}).to_pandas()).mark_rule(color="#444", opacity=0.5)
    zero = zero.encode(y="z:Q")
    marks = _alarm_marks(alarms, _raised_at(points, alarms, "z"), "z")
    return alt.layer(line, zero, *marks).properties(height=240, autosize=FIT_WIDTH)


def observed_against_expected(
    points: pl.DataFrame, alarms: pl.DataFrame, *, y_title: str
) -> alt.LayerChart:
    """What production did (grey) against what the twin expected (blue), with the alarms'
    change points and raisings marked as on :func:`residual_timeline`.

    Args:
        points: the stream: columns ``time``, ``observed`` and ``expected``.
        alarms: its alarms: columns ``since`` and ``raised``.
        y_title: the y axis title, with the behaviour's unit.
    """
    long = points.select("time", "observed", "expected").unpivot(
        index="time", variable_name="what", value_name="value"
    )
    long = long.with_columns(
        pl.col("what").replace({"observed": "production", "expected": "the twin"})
    )
    colour = alt.Color(
        "what:N",
        title=None,
        scale=alt.Scale(domain=["production", "the twin"], range=list(RUN_COLOURS[:2])),
        legend=alt.Legend(orient="top"),
    )
    x = alt.X("time:T", title="time (UTC)", scale=UTC_TIME)
    lines = (
        alt.Chart(_utc(long))
        .mark_line(strokeWidth=1.2)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=y_title),
            color=colour,
            tooltip=[
                alt.Tooltip("what:N", title="series"),
                _when("time", "time"),
                alt.Tooltip("value:Q", title=y_title, format=",.4~g"),
            ],
        )
    )
    dots = _raised_at(points, alarms, "observed").rename({"observed": "value"})
    marks = _alarm_marks(alarms, dots, "value")
    return alt.layer(lines, *marks).properties(height=240, autosize=FIT_WIDTH)
