"""The chain of a ripple: the mechanism that carried a change, traced through figures.

:func:`trace` takes figures already compared (base against change, with their paired
intervals) and walks the model's causal graph (:mod:`orgtwin.explore.mechanisms`) from
what the lever moves first: a figure joins the chain when its interval excludes zero, it
moved by at least ``min_rel_change`` and it is downstream of a figure of the step before
along a mechanism, the way that mechanism carries it. Material moves no chain reaches
are kept apart, with notes that say why (no path of the model leads there, or the way
there runs through moves within noise). :func:`chain_sentence` writes the chain;
:func:`format_move` writes one move.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import polars as pl

from orgtwin.explore import mechanisms
from orgtwin.world.kpis import KPIS

NOTHING_MOVED = "Nothing moved beyond noise."
NOTHING_FIRST = "Nothing the change acts on first moved beyond noise."
NOTE_REL_CHANGE = 0.01
"""A move no chain reaches gets a note when it is at least this large (1%)."""
MAX_NOTES = 3


@dataclass(frozen=True)
class ChainStep:
    """One link of the chain of effects.

    Attributes:
        key: ``"cause"`` for the first step, else the figure (a key of
            :data:`~orgtwin.explore.mechanisms.FIGURES`).
        label: the figure in words (``"change failure"``), or the change itself.
        text: the link as written in the sentence (``"change failure +7.2 pts"``).
        base: the figure's mean over the base's seeds (None for the cause).
        change: its mean over the change's seeds.
        delta: ``change - base``.
        rel_change: ``delta / |base|`` (None when base is 0).
        better: whether the move is good (None when neither or for the cause).
        via: the key of the step it follows from (``"cause"`` for what the lever moves
            first; None for the cause itself and for a move no chain reaches).
        how: the mechanism from ``via`` in words (``"bigger batches fail more often"``).
        step: how many links from the cause (0 for the cause).
    """

    key: str
    label: str
    text: str
    base: float | None = None
    change: float | None = None
    delta: float | None = None
    rel_change: float | None = None
    better: bool | None = None
    via: str | None = None
    how: str = ""
    step: int = 0


class Trace(NamedTuple):
    """The chain traced through a table of figures (see :func:`trace`)."""

    chain: list[ChainStep]
    sentence: str
    unexplained: list[ChainStep]
    notes: list[str]


def trace(
    figures: pl.DataFrame, cause: str, levers: Sequence[str], *, min_rel_change: float = 0.002
) -> Trace:
    """The mechanism that carried a change, through figures already compared.

    Args:
        figures: one row per figure, as :attr:`Ripple.figures` (``key``, ``unit``,
            ``base``, ``change``, ``delta``, ``ci_low``, ``ci_high``, ``rel_change``,
            ``significant``); keys of :data:`mechanisms.FIGURES`.
        cause: the change in words (the chain's first link).
        levers: what was moved, as keys of :data:`mechanisms.LEVERS`.
        min_rel_change: smallest relative move a chain link needs.

    Returns:
        The chain, its sentence, the material moves no chain reaches and the notes on
        the largest of those.
    """
    table = _as_figures(figures)
    moved_first = mechanisms.entries(levers)
    chain = _chain(table, cause, moved_first, min_rel_change)
    loose = _unexplained(table, chain, min_rel_change)
    notes = [
        _note(group, table, chain, moved_first, cause, min_rel_change)
        for group in _loose_chains(loose, table)
        if any(x.rel_change is None or abs(x.rel_change) >= NOTE_REL_CHANGE for x in group)
    ]
    sentence = chain_sentence(chain) if chain else NOTHING_FIRST if loose else NOTHING_MOVED
    return Trace(chain, sentence, loose, notes[:MAX_NOTES])


def _as_figures(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """A figures table as the chain reads it: key -> unit, direction, means, interval."""
    out = {}
    for row in frame.iter_rows(named=True):
        key = row["key"]
        kpi = KPIS.get(key)
        out[key] = {
            "unit": row["unit"],
            "higher_is_better": kpi.higher_is_better if kpi else mechanisms.BETTER.get(key),
            "base": row["base"], "change": row["change"], "delta": row["delta"],
            "low": row["ci_low"], "high": row["ci_high"], "rel": row["rel_change"],
            "significant": bool(row["significant"]),
        }  # fmt: skip
    return out


# --------------------------------------------------------------------------- chain


def _chain(
    figures: dict[str, dict[str, Any]], cause: str, moved_first: dict[str, str],
    min_rel_change: float,
) -> list[ChainStep]:  # fmt: skip
    """The mechanism step by step: what the lever moves first, then what those move…

    A figure joins at the first step it is downstream of, through a mechanism whose
    direction its move agrees with, when its move is material; what moved alike the figure
    it is a rescaling of adds nothing and is left out.
    """
    material = {k for k, f in figures.items() if _material(f, min_rel_change)}
    links = {k: ("cause", how) for k, how in moved_first.items() if k in material}
    steps: list[ChainStep] = []
    seen = set(links)
    depth = 1
    while links:
        layer = sorted(links, key=mechanisms.ORDER.__getitem__)
        steps += [_step(k, figures[k], *links[k], depth) for k in layer]
        links = {}
        for cause_key in layer:
            for m in mechanisms.downstream(cause_key):
                k = m.effect
                if k in seen or k not in material or k in links:
                    continue
                if not _agrees(m, figures[cause_key], figures[k]):
                    continue  # moved against this mechanism: not carried by it
                if (cause_key, k) in mechanisms.SAME_THING and _alike(
                    figures[k], figures[cause_key]
                ):
                    seen.add(k)  # the cause's move, rescaled
                    continue
                links[k] = (cause_key, m.how)
        seen |= set(links)
        depth += 1
    return [ChainStep("cause", cause, cause), *steps] if steps else []


def chain_sentence(
    chain: Sequence[ChainStep], *, write: Callable[[ChainStep], str] | None = None
) -> str:
    """The chain in words: ``" → "`` between steps, ``", "`` between the links of a step.

    Within a step, the links that lead on come last (next to the arrow), each group in
    causal order.

    Args:
        chain: the steps (:attr:`Ripple.chain`).
        write: how to write one link (default: its ``text``), e.g. coloured for a page.
    """
    if not chain:
        return NOTHING_MOVED
    groups: dict[int, list[ChainStep]] = {}
    for step in chain:
        groups.setdefault(step.step, []).append(step)
    written = []
    for depth in sorted(groups):
        following = {s.key for s in groups.get(depth + 1, [])}
        leads_on = {
            s.key
            for s in groups[depth]
            if any(m.effect in following for m in mechanisms.downstream(s.key))
        }
        layer = sorted(groups[depth], key=lambda s: (s.key in leads_on, _order(s.key)))
        written.append(", ".join((write or _text)(step) for step in layer))
    return " → ".join(written)


def _text(step: ChainStep) -> str:
    return step.text


def _order(key: str) -> int:
    return mechanisms.ORDER.get(key, -1)


def _unexplained(
    figures: dict[str, dict[str, Any]], chain: list[ChainStep], min_rel_change: float
) -> list[ChainStep]:
    """Material moves the chain does not reach, largest first (rescalings left out)."""
    reached = {step.key for step in chain}
    rescaled = {e for c, e in mechanisms.SAME_THING if c in reached}
    loose = [
        _step(k, f, None, "", 0)
        for k, f in figures.items()
        if k not in reached | rescaled and _material(f, min_rel_change)
    ]
    return sorted(loose, key=lambda s: -math.inf if s.rel_change is None else -abs(s.rel_change))


def _loose_chains(
    loose: list[ChainStep], figures: dict[str, dict[str, Any]]
) -> list[list[ChainStep]]:
    """Unreached moves in groups: one that none of the others carries, then those it
    carries along the mechanisms (steps numbered from 1), largest group head first."""
    by_key = {step.key: step for step in loose}
    carried = {
        m.effect
        for key in by_key
        for m in mechanisms.downstream(key)
        if m.effect in by_key and _agrees(m, figures[key], figures[m.effect])
    }
    groups, taken = [], set()
    for head in (step for step in loose if step.key not in carried):
        group, frontier, depth = [replace(head, step=1)], [head.key], 2
        taken.add(head.key)
        while frontier:
            nxt = [
                m.effect
                for key in frontier
                for m in mechanisms.downstream(key)
                if m.effect in by_key and m.effect not in taken
                and _agrees(m, figures[key], figures[m.effect])
            ]  # fmt: skip
            nxt = list(dict.fromkeys(nxt))
            taken |= set(nxt)
            group += [replace(by_key[k], step=depth) for k in nxt]
            frontier, depth = nxt, depth + 1
        groups.append(group)
    return groups


def _note(
    group: list[ChainStep], figures: dict[str, dict[str, Any]], chain: list[ChainStep],
    moved_first: dict[str, str], cause: str, min_rel_change: float,
) -> str:  # fmt: skip
    """Why moves are not in the chain: no path of the model leads there from the change,
    or the way there runs through moves within noise."""
    moves = chain_sentence(group)
    reached = [s.key for s in chain[1:]]
    path = _path(list(dict.fromkeys([*reached, *moved_first])), group[0].key, figures,
                 min_rel_change)  # fmt: skip
    if path is None:
        return f"{moves}, but no path of the model leads there from {cause}: read it as noise."
    weak = [k for k in path[:-1] if k not in reached]
    way = " → ".join(mechanisms.WORDS[k] for k in path)
    within = ", ".join(mechanisms.WORDS[k] for k in weak)
    return (
        f"{moves}, but the model's way there ({way}) runs through moves within noise "
        f"({within}): not shown as caused by {cause}."
    )


def _path(
    starts: Sequence[str], target: str, figures: dict[str, dict[str, Any]], min_rel_change: float
) -> list[str] | None:
    """The way along the mechanisms from one of ``starts`` to ``target`` through the fewest
    moves within noise (then the fewest links), never against a mechanism's direction
    where both ends moved; None when there is none."""

    def known(key: str) -> dict[str, Any] | None:
        figure = figures.get(key)
        return figure if figure is not None and _material(figure, min_rel_change) else None

    best: dict[str, tuple[int, int]] = {k: (0, 0) for k in starts}
    before: dict[str, str | None] = {k: None for k in starts}
    queue = [((0, 0), k) for k in starts]
    while queue:
        queue.sort()
        cost, key = queue.pop(0)
        if cost > best[key] or key == target:
            continue
        for m in mechanisms.downstream(key):
            a, b = known(key), known(m.effect)
            if a is not None and b is not None and not _agrees(m, a, b):
                continue
            step = (cost[0] + (b is None), cost[1] + 1)
            if m.effect not in best or step < best[m.effect]:
                best[m.effect], before[m.effect] = step, key
                queue.append((step, m.effect))
    if target not in before:
        return None
    path, at = [target], before[target]
    while at is not None:
        path.append(at)
        at = before[at]
    return path[::-1]


def _agrees(m: mechanisms.Mechanism, cause: dict[str, Any], effect: dict[str, Any]) -> bool:
    """Whether an effect moved the way a mechanism carries its cause's move."""
    return not m.sign or _sign(effect) == m.sign * _sign(cause)


def _sign(figure: dict[str, Any]) -> int:
    delta = figure["delta"] or 0.0
    return (delta > 0) - (delta < 0)


def _alike(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two figures moved by the same proportion (one adds nothing to the other)."""
    if a["rel"] is None or b["rel"] is None:
        return False
    return abs(a["rel"] - b["rel"]) <= 0.05 * max(abs(a["rel"]), abs(b["rel"]))


def _material(figure: dict[str, Any], min_rel_change: float) -> bool:
    if not figure["significant"] or figure["delta"] is None:
        return False
    return figure["rel"] is None or abs(figure["rel"]) >= min_rel_change


def _step(key: str, figure: dict[str, Any], via: str | None, how: str, depth: int) -> ChainStep:
    words = mechanisms.WORDS[key]
    good = figure["higher_is_better"]
    better = None if good is None else (figure["delta"] > 0) == good
    return ChainStep(
        key, words, f"{words} {format_move(figure['base'], figure['change'], figure['unit'])}",
        base=figure["base"], change=figure["change"], delta=figure["delta"],
        rel_change=figure["rel"], better=better, via=via, how=how, step=depth,
    )  # fmt: skip


def format_move(base: float, change: float, unit: str) -> str:
    """A move from ``base`` to ``change`` as a chain link writes it.

    Example:
        >>> format_move(3.0, 10.2, "%"), format_move(2.0, 6.2, "changes")
        ('+7.2 pts', '×3.1')
        >>> format_move(100.0, 140.0, "pages"), format_move(0.1, 0.2, "0-1")
        ('+40%', '↑')
    """
    delta = change - base
    if unit == "%":
        digits = 1 if abs(delta) >= 1 else 2 if abs(delta) >= 0.01 else 3
        return f"{delta:+.{digits}f} pts"
    if unit == "0-1":
        return "↑" if delta > 0 else "↓"
    if base == 0:
        return f"{delta:+.3g}"
    ratio = change / base
    if ratio > 2:
        return f"×{ratio:.1f}" if ratio < 10 else f"×{ratio:.0f}"
    percent = 100.0 * delta / abs(base)
    return f"{percent:+.0f}%" if abs(percent) >= 10 else f"{percent:+.1f}%"
