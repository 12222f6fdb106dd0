"""Scheduling interventions on the running world.

Each intervention kind declares its own effect (:mod:`orgtwin.scenario.interventions`);
:func:`schedule` asks each intervention of a scenario for it, lets the kinds known in
advance plan themselves (a vendor outage joins its vendor's plan), and files the actions
by the tick they run at.
"""

from __future__ import annotations

from collections.abc import Sequence

from orgtwin.scenario.interventions import Action, InterventionSpec, RunningWorld


def schedule(
    world: RunningWorld, interventions: Sequence[InterventionSpec]
) -> dict[int, list[Action]]:
    """The scenario's interventions as actions keyed by the tick they run at.

    Interventions starting at the same tick apply in file order; reverts run before
    applies at the same tick, so back-to-back changes hand over cleanly.

    Args:
        world: the world the interventions act on (built, before its first tick).
        interventions: the scenario's interventions, in file order.
    """
    reverts: dict[int, list[Action]] = {}
    applies: dict[int, list[Action]] = {}
    for intervention in interventions:
        intervention.plan(world)
        apply, revert = intervention.effect(world)
        applies.setdefault(intervention.start_hour, []).append(apply)
        if intervention.end_hour is not None:
            reverts.setdefault(intervention.end_hour, []).append(revert)
    ticks = sorted(set(applies) | set(reverts))
    return {t: [*reverts.get(t, []), *applies.get(t, [])] for t in ticks}
