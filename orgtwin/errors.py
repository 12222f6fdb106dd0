"""One exception hierarchy for every error orgtwin raises on purpose.

Each subclass also inherits the matching builtin, so ``except ValueError`` keeps working
for callers that do not know orgtwin. Messages follow one shape::

    scenarios/acme.yaml: teams.platform.oncall_size must be an integer >= 1, got 0
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable, Iterable


class OrgTwinError(Exception):
    """Base class of every error orgtwin raises deliberately."""


class ScenarioError(OrgTwinError, ValueError):
    """A scenario file or object is invalid.

    With one problem, ``str(error)`` is one line in the shape above. With several, it is
    a first line naming the file and how many problems, then one line per problem (the
    first :attr:`MAX_LISTED`; the rest are counted)::

        scenarios/acme.yaml: 2 problems
          scenarios/acme.yaml: days must be an integer >= 1, got -5
          scenarios/acme.yaml: teams.web.headcount must be an integer, got 'many'

    Attributes:
        source: the file (or ``"<scenario>"``) the error was found in.
        path: dotted field path inside the scenario (``teams.platform.oncall_size``), or ``""``.
        problem: what was expected and what was found.
        hint: a suggestion (``did you mean 'oncall_size'?``), or ``None``.
        line: this problem alone, in one line (``source: path problem (hint)``).
        errors: every error found in the same pass, first one first; ``[self]`` when the
            check stopped at one error. ``path``, ``problem`` and ``hint`` are the first's.
    """

    MAX_LISTED = 20
    """Problems that ``str(error)`` lists one per line; past them, the rest are counted."""

    def __init__(self, source: str, path: str, problem: str, hint: str | None = None) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        self.hint = hint
        self.errors: list[ScenarioError] = [self]
        where = f"{path} " if path else ""
        self.line = f"{source}: {where}{problem}{in_brackets(hint)}"
        super().__init__(self.line)

    def __str__(self) -> str:
        """The problem in one line; with several, a header line then one line each."""
        if len(self.errors) <= 1:
            return self.line
        listed = self.errors[: self.MAX_LISTED]
        lines = [f"{self.source}: {len(self.errors)} problems", *(f"  {e.line}" for e in listed)]
        rest = len(self.errors) - len(listed)
        if rest:
            lines.append(f"  … and {rest} more {'problem' if rest == 1 else 'problems'}")
        return "\n".join(lines)

    def __reduce__(
        self,
    ) -> tuple[type[ScenarioError], tuple[str, str, str, str | None], dict[str, list] | None]:
        """Pickle by the constructor arguments, and every problem when there are several.

        Ray ships errors between processes.
        """
        state = {"errors": self.errors} if len(self.errors) > 1 else None
        return (type(self), (self.source, self.path, self.problem, self.hint), state)


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
    """Telemetry does not match its documented schema, or a mapping file is invalid.

    With one problem, ``str(error)`` is the message. With several (reading a telemetry
    folder or a mapping file finds them all in one pass), it is the message, then one
    line per problem, each naming file, table, column and row where they apply::

        telemetry: 2 problems in the telemetry
          telemetry/spans.csv: spans.duration_ms row 7 must be >= 0, got -3
          telemetry/customers.csv: customers is missing column 'churned' (it has: …)

    Attributes:
        problems: every problem, one line each (already capped per table by the reader,
            with a line counting the rest); ``[]`` for a single-message error.
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message)

    def __str__(self) -> str:
        """The message, then one indented line per problem."""
        return "\n".join([str(self.args[0]), *(f"  {line}" for line in self.problems)])

    def __reduce__(self) -> tuple[type[TelemetryError], tuple[str, list[str]]]:
        """Pickle by the constructor arguments (Ray ships errors between processes)."""
        return (type(self), (str(self.args[0]), self.problems))


class LearnError(OrgTwinError, ValueError):
    """Learning was asked for what it cannot do (a behaviour it does not know)."""


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


def whole_number(
    value: object,
    *,
    name: str,
    low: int = 1,
    high: int | None = None,
    error: Callable[[str], Exception] = ValueError,
) -> int:
    """``value`` as an ``int``, if it is a whole number from ``low`` to ``high``.

    The one check of a count (days, seeds, workers, points) wherever one is given: in
    Python, on the command line (a string of digits) or on a page.

    Args:
        value: the value given.
        name: what it is, for the message (``"days"``); ``""`` for none.
        low: the smallest value allowed.
        high: the largest value allowed (None: no limit).
        error: the exception to raise, made from the message.

    Raises:
        error: ``value`` is not a whole number (a bool is not one) or is out of range.

    Example:
        >>> whole_number("3", name="seeds")
        3
        >>> whole_number(0, name="days", high=365)
        Traceback (most recent call last):
        ...
        ValueError: days must be a whole number between 1 and 365, got 0
    """
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    text = isinstance(value, str) and value.strip().lstrip("+-").isdigit()
    number = int(value) if whole or text else None  # type: ignore[call-overload]
    allowed = f"between {low} and {high}" if high is not None else f">= {low}"
    if number is None or number < low or (high is not None and number > high):
        subject = f"{name} must" if name else "must"
        raise error(f"{subject} be a whole number {allowed}, got {value!r}")
    return number
