"""orgtwin in Mesa's own browser view: SolaraViz steps an OrgModel an hour at a time.

Run it from the repository root, with the ``viz`` extra installed::

    pip install -e '.[viz]'
    solara run examples/mesa_viz/app.py

The page is Mesa's :class:`~mesa.visualization.SolaraViz`: its controls (step, play,
reset, and sliders for the seed and the days), line plots of a few of the model's
reporters (``model.datacollector``, drawn by Mesa's
:func:`~mesa.visualization.make_plot_component`), and the services' call graph with the
vendors they call, coloured by the team that owns each service. The model has no Mesa
space, so the graph is a small custom component (:func:`CallGraph`) drawn with networkx.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import solara
from matplotlib.figure import Figure
from mesa.visualization import Slider, SolaraViz, make_plot_component

from orgtwin import OrgModel

SCENARIO = str(Path(__file__).resolve().parents[2] / "scenarios" / "baseline.yaml")
"""The scenario the page runs: the baseline, a few days of it."""

MODEL_PARAMS = {
    "scenario": SCENARIO,
    "seed": Slider("seed", value=1, min=1, max=20, step=1),
    "days": Slider("days", value=3, min=1, max=14, step=1),
}
"""OrgModel's arguments: fixed ones, and sliders (Mesa's Reset builds a new model from them)."""

PLOTS = [
    ["active_users"],
    ["revenue_usd_hour", "cost_usd_hour"],
    ["error_rate"],
    ["deploys_hour", "pages_hour", "open_incidents"],
]
"""Hourly reporters of ``model.datacollector`` to plot, one plot per list (the names are
:data:`orgtwin.world.collecting.HOURLY`'s, and ``open_incidents``)."""

ERROR_RED = 0.01
"""A service whose error rate passes this share, or a vendor that is down, is drawn red."""


def make_model(scenario: str = SCENARIO, *, seed: int = 1, days: int = 3) -> OrgModel:
    """The model the page shows: a scenario run hour by hour (``OrgModel.step``)."""
    return OrgModel(scenario, seed=seed, days=days)


def call_graph(model: OrgModel) -> nx.DiGraph:
    """The services and vendors as a directed graph, read from the model's agents.

    Nodes carry ``kind`` (``"service"`` or ``"vendor"``), ``team`` (a service's owner),
    ``layer`` (depth in the call graph: entry services first, vendors last), ``replicas``
    and ``red`` (failing now); an edge ``caller -> callee`` carries ``calls``, the calls
    per request.
    """
    graph = nx.DiGraph()
    mesh, status = model.world.mesh, model.world.vendor_status
    vendor_index = {vendor.name: v for v, vendor in enumerate(model.world.vendors)}
    for service in model.services:  # a Mesa AgentSet, as are model.vendors and model.teams
        failing = service.error_rate > ERROR_RED
        graph.add_node(
            service.name, kind="service", team=service.team, replicas=service.replicas, red=failing
        )
    for vendor in model.vendors:
        down = not status.up_now[vendor_index[vendor.name]]
        graph.add_node(vendor.name, kind="vendor", team=None, replicas=1.0, red=bool(down))
    for service in model.services:
        for callee in service.callees:
            calls = mesh.fanout[service.index, mesh.names.index(callee)]
            graph.add_edge(service.name, callee, calls=float(calls))
        for vendor, v in vendor_index.items():
            calls = mesh.vendor_fanout[service.index, v]
            if calls > 0:
                graph.add_edge(service.name, vendor, calls=float(calls))
    depth = {name: 0 for name, kind in graph.nodes(data="kind") if kind == "service"}
    for name in nx.topological_sort(graph.subgraph(depth)):
        for callee in graph.successors(name):
            if callee in depth:
                depth[callee] = max(depth[callee], depth[name] + 1)
    vendors_layer = max(depth.values(), default=0) + 1
    for name in graph:
        graph.nodes[name]["layer"] = depth.get(name, vendors_layer)
    return graph


def draw_call_graph(model: OrgModel) -> Figure:
    """The call graph, left to right: one colour per team, failing nodes outlined red."""
    graph = call_graph(model)
    teams = [team.name for team in model.teams]
    palette = dict(zip(teams, ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8"], strict=False))
    nodes = list(graph)
    fig = Figure(figsize=(9, 6))
    ax = fig.subplots()
    nx.draw_networkx(
        graph,
        pos=nx.multipartite_layout(graph, subset_key="layer"),
        ax=ax,
        nodelist=nodes,
        node_color=[palette.get(graph.nodes[n]["team"], "0.75") for n in nodes],
        node_size=[120 + 25 * graph.nodes[n]["replicas"] for n in nodes],
        edgecolors=["red" if graph.nodes[n]["red"] else "white" for n in nodes],
        linewidths=2.5,
        font_size=7,
        arrowsize=8,
        edge_color="0.6",
    )
    for team, colour in palette.items():
        ax.scatter([], [], color=colour, label=team)
    ax.scatter([], [], color="0.75", label="vendor")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.set_title(f"services and vendors, day {model.day}, hour {model.tick % 24}")
    ax.set_axis_off()
    return fig


def CallGraph(model: OrgModel):  # noqa: N802 (a Solara component)
    """The call graph as a Solara component (SolaraViz redraws it after every step)."""
    return solara.FigureMatplotlib(draw_call_graph(model), format="png", bbox_inches="tight")


def make_page(model: OrgModel):
    """Mesa's SolaraViz page for ``model``: the controls, the plots and the call graph."""
    plots = [make_plot_component(measures) for measures in PLOTS]
    return SolaraViz(
        model,
        components=[*plots, (CallGraph, 0)],
        model_params=MODEL_PARAMS,
        name=f"orgtwin: {model.scenario.name}",
    )


page = make_page(make_model())
page  # noqa: B018 (solara run shows the module's `page`)
