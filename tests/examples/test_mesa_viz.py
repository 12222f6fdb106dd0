"""The Mesa view (``examples/mesa_viz/app.py``) works headless, without a server.

The example's own model function builds a few days of the baseline; the reporters it
plots have values that change as the model steps, and ``model.running`` ends the run;
its call graph holds the scenario's services, vendors and calls, each service under its
team; and Mesa's SolaraViz page renders (``solara.render``, as Mesa's own tests do) with
one figure per plot and one for the graph, and redraws them after a step.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("solara", reason="the viz extra is not installed (pip install -e '.[viz]')")

import ipywidgets
import solara

with warnings.catch_warnings():
    # Mesa 3.3's own ComponentsView trips Solara's rules-of-hooks check when it is defined.
    warnings.filterwarnings("ignore", message=".*ComponentsView", category=UserWarning)
    from mesa.visualization.utils import force_update

APP = Path(__file__).resolve().parents[2] / "examples" / "mesa_viz" / "app.py"


@pytest.fixture(scope="module")
def app() -> ModuleType:
    """The example, loaded from its file as ``solara run`` loads it."""
    spec = importlib.util.spec_from_file_location("mesa_viz_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_module_offers_a_solaraviz_page(app: ModuleType) -> None:
    assert app.page.component.name == "SolaraViz"
    assert app.make_model().scenario.name == "baseline"


def test_the_plotted_reporters_change_as_the_model_steps(app: ModuleType) -> None:
    model = app.make_model(seed=1, days=2)
    for _ in range(30):  # past the end of the first day, when users churn and arrive
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == 30
    for measures in app.PLOTS:
        for measure in measures:
            assert frame[measure].notna().all(), f"{measure} has missing hours"
        moved = [m for m in measures if frame[m].nunique() > 1]
        assert moved, f"nothing in the plot of {measures} changed over 30 hours"
    while model.running:
        model.step()
    assert model.tick == 48 and len(model.datacollector.get_model_vars_dataframe()) == 48


def test_the_call_graph_is_the_scenarios(app: ModuleType) -> None:
    model = app.make_model(seed=1, days=1)
    graph = app.call_graph(model)
    scenario = model.scenario
    kinds = {name: data["kind"] for name, data in graph.nodes(data=True)}
    assert {n for n, k in kinds.items() if k == "service"} == set(scenario.services)
    assert {n for n, k in kinds.items() if k == "vendor"} == set(scenario.vendors)
    calls = {
        (name, callee): float(n)
        for name, spec in scenario.services.items()
        for callee, n in [*spec.calls.items(), *spec.vendors.items()]
    }
    assert {edge: graph.edges[edge]["calls"] for edge in graph.edges} == calls
    for name, spec in scenario.services.items():
        assert graph.nodes[name]["team"] == spec.team
    entry = {feature.entry for feature in scenario.features.values()}
    assert all(graph.nodes[name]["layer"] == 0 for name in entry)
    last = max(layer for _, layer in graph.nodes(data="layer"))
    assert all(graph.nodes[name]["layer"] == last for name in scenario.vendors)


def test_the_page_renders_and_redraws_without_a_server(app: ModuleType) -> None:
    model = app.make_model(seed=1, days=1)
    _, rendered = solara.render(app.make_page(model), handle_error=False)
    try:
        figures = rendered.find(ipywidgets.Image).widgets
        assert len(figures) == len(app.PLOTS) + 1  # the plots and the call graph
        before = [bytes(figure.value) for figure in figures]
        for _ in range(6):
            model.step()
        force_update()  # what Mesa's Step button does after stepping
        after = [bytes(figure.value) for figure in rendered.find(ipywidgets.Image).widgets]
        assert all(a != b for a, b in zip(after, before, strict=True))
    finally:
        rendered.close()
