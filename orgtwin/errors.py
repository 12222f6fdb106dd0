"""One exception hierarchy for every error orgtwin raises on purpose.

Each subclass also inherits the matching builtin, so ``except ValueError`` keeps working
for callers that do not know orgtwin. Messages follow one shape::

    scenarios/acme.yaml: teams.platform.oncall_size must be an integer >= 1, got 0
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OrgTwinError(Exception):
    """Base class of every error orgtwin raises deliberately."""


class ScenarioError(OrgTwinError, ValueError):
    """A scenario file or object is invalid.

    Attributes:
        source: the file (or ``"<scenario>"``) the error was found in.
        path: dotted field path inside the scenario (``teams.platform.oncall_size``), or ``""``.
        problem: what was expected and what was found.
        hint: a suggestion (``did you mean 'oncall_size'?``), or ``None``.
        errors: every error found in the same pass, first one first; ``[self]`` when the
            check stopped at one error.
    """

    def __init__(self, source: str, path: str, problem: str, hint: str | None = None) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        self.hint = hint
        self.errors: list[ScenarioError] = [self]
        where = f"{path} " if path else ""
        message = f"{source}: {where}{problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, str, str, str | None]]:
        """Pickle by the constructor arguments (Ray ships errors between processes)."""
        return (type(self), (self.source, self.path, self.problem, self.hint))


class LeverError(ScenarioError):
    """A lever's path or values do not fit the scenario (``source`` is ``"lever"``)."""

    def __init__(self, lever: str, problem: str, hint: str | None = None) -> None:
        super().__init__("lever", lever, problem, hint)

    def __reduce__(self) -> tuple[type[LeverError], tuple[str, str, str | None]]:  # type: ignore[override]
        """Pickle by the constructor arguments."""
        return (type(self), (self.path, self.problem, self.hint))


class RunError(OrgTwinError, ValueError):
    """A run's options are invalid: workers, tables, series or replacement behaviours."""


class ResultsError(OrgTwinError, ValueError):
    """Stored results are missing, malformed or incompatible with the request."""


class TelemetryError(OrgTwinError, ValueError):
    """A telemetry table does not match its documented schema."""


class ExploreError(OrgTwinError, ValueError):
    """An exploration's options are out of bounds or do not fit its run sets."""


class SweepError(OrgTwinError, ValueError):
    """A sweep cannot start or finish: bad options, or a results folder of another sweep."""


class SweepInterrupted(OrgTwinError):  # noqa: N818 (an interruption, not an error)
    """A sweep was interrupted (Ctrl-C); the runs finished so far are saved.

    Attributes:
        out: the sweep's results folder; rerunning the same sweep into it resumes.
        n_saved: runs saved in the folder.
        n_total: runs of the whole sweep.
    """

    def __init__(self, out: str, n_saved: int, n_total: int) -> None:
        self.out = out
        self.n_saved = n_saved
        self.n_total = n_total
        super().__init__(
            f"sweep interrupted: {n_saved:,} of {n_total:,} runs are saved in {out}; "
            "rerun the same command (same --out) to run the rest"
        )

    def __reduce__(self) -> tuple[type[SweepInterrupted], tuple[str, int, int]]:
        """Pickle by the constructor arguments."""
        return (type(self), (self.out, self.n_saved, self.n_total))


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest of ``choices`` to ``name``, or None.

    Example:
        >>> did_you_mean("oncal_size", ["oncall_size", "headcount"])
        "did you mean 'oncall_size'?"
    """
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def in_brackets(hint: str | None) -> str:
    """A hint as a bracketed suffix for a message (``" (did you mean …?)"``), or ``""``."""
    return f" ({hint})" if hint else ""
