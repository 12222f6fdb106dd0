"""The Explore page's address bar: an exploration kept in the URL, so a bookmark or a
shared link reopens it (the scenario, days, seeds, base seed and the levers moved).

The landing page links here with ``?scenario=…``; a link with ``days`` runs at once.
Values from a link are raw text until each control checks them (:func:`from_text`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from orgtwin.dashboard import state

SCENARIO_KEY = "explore-scenario"
"""The Explore page's scenario picker."""
URL_SEEN = "explore-url"
"""The query parameters last read from or written to the address bar."""
FROM_URL = "explore-from-url"
"""Days, seeds, base seed and lever values a link asked for (raw text), by scenario."""
RUN_PARAMS = ("days", "seeds", "seed")
"""Query parameters besides ``scenario`` and the lever paths."""


def read_address(names: list[str]) -> bool:
    """Take the scenario, run settings and lever values from the address bar when it
    changed (a bookmark, a shared link, the landing page); True when it asks for a run.

    The scenario goes into the select box; the rest are remembered as the widgets'
    starting values (:data:`FROM_URL`), checked against each control when drawn.
    """
    params = st.query_params.to_dict()
    if params == st.session_state.get(URL_SEEN):
        return False
    st.session_state[URL_SEEN] = params
    name = params.get("scenario")
    if name is None:
        return False
    if name not in names:
        st.warning(f"The link asks for scenario {name!r}, which is not in the scenarios folder.")
        return False
    st.session_state[SCENARIO_KEY] = name
    asked = {k: v for k, v in params.items() if k != "scenario"}
    st.session_state[FROM_URL] = {"scenario": name, **asked}
    return "days" in asked


def write_address(request: state.Request, name: str) -> None:
    """Put the run's scenario, settings and moved levers in the address bar (bookmark it,
    share it: the link reopens the same exploration)."""
    params = {"scenario": name, "days": str(request.days), "seeds": str(request.seeds)}
    params |= {"seed": str(request.seed)} | {p: str(v) for p, v in request.values}
    st.query_params.from_dict(params)
    st.session_state[URL_SEEN] = params


def scenario_picked(name: str) -> None:
    """A scenario picked in the select box replaces the one in the address bar."""
    if st.query_params.get("scenario") != name:
        st.query_params.from_dict({"scenario": name})
        st.session_state[URL_SEEN] = {"scenario": name}


def asked(name: str) -> dict[str, str]:
    """What the last link asked for this scenario (raw text), or nothing."""
    found = st.session_state.get(FROM_URL) or {}
    return found if found.get("scenario") == name else {}


def from_text(control: Any, text: str) -> Any:
    """A lever value from the address bar, as the control's kind; None (with a warning
    on the page) when it is not one or lies outside the control's bounds."""
    try:
        if control.kind == "bool":
            value: Any = text.lower() in ("true", "1", "yes", "on")
        elif control.kind == "choice":
            value = next(c for c in control.choices if str(c) == text)
        else:
            value = int(float(text)) if control.kind == "int" else float(text)
            low, high = control.low, control.high
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError
    except (ValueError, StopIteration):
        st.warning(
            f"The link's value for {control.label} ({text!r}) does not fit it "
            f"({_allowed(control)}): kept the scenario's value.",
            icon=":material/link_off:",
        )
        return None
    return value


def _allowed(control: Any) -> str:
    if control.kind == "choice":
        return "one of " + ", ".join(map(str, control.choices))
    if control.low is not None and control.high is not None:
        return f"{control.low:g} to {control.high:g}"
    return control.kind
