"""orgtwin dashboard: a landing page of the questions the scenarios answer; explore a
scenario, compare scenarios, browse and launch sweeps, learn a twin from telemetry,
validate it against production, watch telemetry for drift.

Run it with ``make app`` (or ``streamlit run app.py``): it serves on http://127.0.0.1:8501
only (see ``.streamlit/config.toml``). This file only builds the navigation; each page is
a thin script in ``orgtwin/dashboard/pages/`` whose computations are cached calls into
the ``orgtwin`` library (``orgtwin/dashboard/state.py``).

Folders: scenarios are read from ``./scenarios`` (or ``$ORGTWIN_SCENARIOS``), sweep results
from and to ``./results`` (or ``$ORGTWIN_RESULTS``), telemetry from ``./telemetry`` (or
``$ORGTWIN_TELEMETRY``); nothing outside them is opened.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from orgtwin.dashboard import folders

PAGES = "orgtwin/dashboard/pages"
ICON = Path(__file__).parent / "orgtwin/dashboard/icon.svg"  # local: a :material: icon is fetched


def main() -> None:
    """Page setup, navigation and the sidebar note; then the chosen page runs."""
    st.set_page_config(page_title="orgtwin", page_icon=str(ICON), layout="wide")
    page = st.navigation(
        [
            st.Page(f"{PAGES}/home.py", title="Home", icon=":material/home:", default=True),
            st.Page(f"{PAGES}/explore.py", title="Explore", icon=":material/tune:"),
            st.Page(f"{PAGES}/compare.py", title="Compare", icon=":material/compare_arrows:"),
            st.Page(f"{PAGES}/sweeps.py", title="Sweeps", icon=":material/grid_on:"),
            st.Page(f"{PAGES}/learn.py", title="Learn", icon=":material/school:"),
            st.Page(f"{PAGES}/validate.py", title="Validate", icon=":material/verified:"),
            st.Page(f"{PAGES}/watch.py", title="Watch", icon=":material/monitor_heart:"),
        ]
    )
    with st.sidebar:
        st.caption(
            f"**Scenarios** from `{folders.scenarios_folder()}`  \n"
            f"**Results** in `{folders.results_folder()}`  \n"
            f"**Telemetry** from `{folders.telemetry_folder()}`  \n"
            f"Set `{folders.SCENARIOS_ENV}` / `{folders.RESULTS_ENV}` / "
            f"`{folders.TELEMETRY_ENV}` to use other folders."
        )
    page.run()


# Streamlit runs this file as __main__; the library's worker processes (started with
# "spawn") import it as __mp_main__, where it must do nothing.
if __name__ == "__main__":
    main()
