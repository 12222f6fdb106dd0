"""Home: what the twin is for, in a few lines, and the questions the shipped scenarios
answer, each a link to Explore with that scenario chosen.

The link carries the scenario in the address (``?scenario=price_increase.yaml``), which
the Explore page reads (:func:`orgtwin.dashboard.address.read_address`), so it can
be bookmarked and shared too.
"""

from __future__ import annotations

import streamlit as st

from orgtwin.dashboard import folders, state, ui

EXPLORE = "orgtwin/dashboard/pages/explore.py"
ABOUT = """\
orgtwin is a digital twin of a software organisation: its users, services, vendors and
teams, simulated hour by hour. Ask it *what if*: move a lever (a price, an on-call rota,
a change policy), and it runs the organisation with and without the change on the same
random days and tells you what moved, how sure that is, and the chain of causes that
carried it.
"""


def questions() -> None:
    """One link per scenario file, labelled with the question it answers."""
    folder = folders.scenarios_folder()
    names = folders.list_scenarios(folder)
    if not names:
        st.warning(f"No scenario files (*.yaml) in {folder}.")
        return
    asked = state.scenario_questions(str(folder), folders.folder_stamp(folder))
    st.subheader("Pick a question")
    for name in sorted(names, key=lambda n: (not asked.get(n), n)):
        question = " ".join(asked.get(name, "").split())
        st.page_link(
            EXPLORE,
            label=ui.plain(question) if question else f"{name} (no question stated)",
            icon=":material/arrow_forward:",
            query_params={"scenario": name},
            help=f"Explore {name}: its levers, the verdict, the ripple.",
        )


def page() -> None:
    st.title("What would happen if…?")
    st.markdown(ABOUT)
    st.caption(
        "Each question below is a scenario file in the scenarios folder (see the "
        "sidebar); its page answers it in a paragraph, with KPI cards and their 95% "
        "intervals over seeds. Compare, Sweeps, Learn, Validate and Watch are in the "
        "sidebar."
    )
    with ui.guarded("listing the scenarios"):
        questions()


page()
