"""One exception hierarchy for every error orgtwin raises on purpose.

Each subclass also inherits the matching builtin, so ``except ValueError`` keeps working
for callers that do not know orgtwin. Messages follow one shape::

    scenarios/acme.yaml: teams.platform.oncall_size must be an integer >= 1, got 0
"""

from __future__ import annotations


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


class ResultsError(OrgTwinError, ValueError):
    """Stored results are missing, malformed or incompatible with the request."""


class TelemetryError(OrgTwinError, ValueError):
    """A telemetry table does not match its documented schema."""
