"""Interventions: the changes a scenario applies to its organisation while it runs.

Each kind is declared once, as one class here, with everything the rest of orgtwin needs
to know of it:

- its **spec**: the fields a scenario file sets, with their bounds and meaning, and the
  ``kind`` tag that names it;
- its **words for people**: :attr:`~InterventionSpec.title` (``"approval board"``) and
  :meth:`~InterventionSpec.words`, the change in a few words with the figure that sets
  its size (``"weekly approval board"``, ``"price $12 → $15"``);
- its **controls**: a :class:`~orgtwin.scenario.fields.Knob` on each field a page offers;
- its **effect** on a running world: :meth:`~InterventionSpec.effect` returns the pair of
  actions run at ``at`` and ``until`` (:class:`Effect`); ``apply`` remembers what it
  replaced so that ``revert`` restores exactly that. A kind known in advance (a vendor
  outage) may also :meth:`~InterventionSpec.plan` itself when the world is built.

Effects act through the agents' own methods (``team.set_policy``, ``segment.set_price``,
``mesh.set_spot_share``…), on the world as :class:`RunningWorld` describes it; this module
imports no agent and no world, so the scenario format stays below them. To add a kind:
write its class here (fields, title, words, effect) and add it to :data:`Intervention`.
``tests/scenario/test_interventions.py`` fails for a kind that lacks any of them.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Protocol, TypeVar

from pydantic import Field, field_validator, model_validator

from orgtwin.scenario.fields import (
    Flag,
    Knob,
    Name,
    Number,
    Price,
    Probability,
    Selector,
    Spec,
    Whole,
)
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_WEEK, Clock, parse_hours

Action = Callable[[], None]
"""Something done to the running world at a given tick."""
MAX_PRICE_FACTOR = 4.0
"""A price control offers up to this many times the current price (and at least $100)."""
T = TypeVar("T")


class Effect(NamedTuple):
    """What an intervention does to a running world: ``apply`` at ``at``, ``revert`` at
    ``until`` (never, if it lasts to the end)."""

    apply: Action
    revert: Action


class RunningWorld(Protocol):
    """The world as an intervention's effect sees it (:class:`orgtwin.world.World`).

    Entities come back as the agents themselves (user segments, teams, vendors), whose
    methods an effect calls; services and features are indices into the mesh's and the
    features' arrays.
    """

    clock: Clock
    mesh: Any
    features: Any

    def segments_named(self, selector: Selector) -> list[Any]:
        """The user segments a selector names, in scenario order."""
        ...

    def teams_named(self, selector: Selector) -> list[Any]:
        """The teams a selector names, in scenario order."""
        ...

    def service_indices(self, selector: Selector) -> list[int]:
        """Indices of the services a selector names."""
        ...

    def feature_indices(self, selector: Selector) -> list[int]:
        """Indices of the features a selector names."""
        ...

    def vendor(self, name: str) -> Any:
        """The vendor of that name."""
        ...

    def vendor_index(self, name: str) -> int:
        """Index of the vendor of that name."""
        ...

    def owner(self, service: int) -> Any:
        """The team that owns a service."""
        ...


class Prices(Protocol):
    """What an intervention's words may read of its scenario: the segments' prices."""

    @property
    def segments(self) -> Mapping[str, Any]:
        """Segment name -> its spec (with ``price_usd_month``)."""
        ...


# --------------------------------------------------------------------------- helpers


def swap(
    items: Sequence[T],
    read: Callable[[T], Any],
    write: Callable[[T, Any], None],
    new: Callable[[T], Any],
) -> Effect:
    """An effect that sets a value on each item and restores each item's own old value.

    Args:
        items: the agents to change.
        read: the value an item has now.
        write: set an item's value (through the agent's method).
        new: the value an item gets when the effect applies (computed then).
    """
    saved: list[Any] = []

    def apply() -> None:
        saved[:] = [read(item) for item in items]
        for item in items:
            write(item, new(item))

    def revert() -> None:
        for item, old in zip(items, saved, strict=True):
            write(item, old)

    return Effect(apply, revert)


def chain(*effects: Effect) -> Effect:
    """Several effects as one: applied in order, reverted in reverse order."""

    def apply() -> None:
        for effect in effects:
            effect.apply()

    def revert() -> None:
        for effect in reversed(effects):
            effect.revert()

    return Effect(apply, revert)


def _each(items: Iterable[T], act: Callable[[T], None]) -> Action:
    def action() -> None:
        for item in items:
            act(item)

    return action


def _nothing() -> None:
    return None


def _time_words(value: float | str) -> str:
    """A scenario time as the file would spell it: ``20``, ``2.5``, ``'36h'``."""
    return f"{value:g}" if isinstance(value, float) else repr(value)


def every(hours: int, noun: str) -> str:
    """A cadence in words.

    Example:
        >>> every(168, "approval board"), every(336, "approval board"), every(36, "drill")
        ('weekly approval board', 'approval board every 2 weeks', 'drill every 36 h')
    """
    if hours == HOURS_PER_WEEK:
        return f"weekly {noun}"
    if hours % HOURS_PER_WEEK == 0:
        return f"{noun} every {hours // HOURS_PER_WEEK} weeks"
    if hours == HOURS_PER_DAY:
        return f"daily {noun}"
    if hours % HOURS_PER_DAY == 0:
        return f"{noun} every {hours // HOURS_PER_DAY} days"
    return f"{noun} every {hours} h"


# --------------------------------------------------------------------------- the base


class InterventionSpec(Spec):
    """Common fields: when the change starts and (optionally) ends."""

    title: ClassVar[str] = "intervention"
    """The kind in plain words (``"approval board"``)."""

    at: Number | str = 0
    """Start: days from the scenario start (a finite number >= 0), or a duration string like
    ``"36h"``; it must fall before the end of the run."""
    until: Number | str | None = None
    """End (exclusive), days or a duration string; the change is reverted then. ``None``:
    lasts to the end."""
    label: Name | None = None
    """A name for the change in reports and lever paths (interventions.<label>.<field>)."""

    @field_validator("at", "until")
    @classmethod
    def _time(cls, value: float | str | None) -> float | str | None:
        if value is None:
            return value
        if parse_hours(value) < 0:
            raise ValueError(f"must be at or after the scenario start (>= 0), got {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> InterventionSpec:
        if self.until is not None and parse_hours(self.until) <= parse_hours(self.at):
            at, until = _time_words(self.at), _time_words(self.until)
            raise ValueError(f"until must be after at ({at}), got {until}")
        return self

    @property
    def start_hour(self) -> int:
        """Start tick (hours from the scenario start)."""
        return parse_hours(self.at)

    @property
    def end_hour(self) -> int | None:
        """End tick (exclusive), or ``None``."""
        return None if self.until is None else parse_hours(self.until)

    def describe(self) -> str:
        """The intervention in plain words: its label, else its kind's title."""
        return self.label or self.title

    def words(self, scenario: Prices) -> str:
        """The change in a few words, with the figure that sets its size."""
        raise NotImplementedError(f"{type(self).__name__} must say what it does in words")

    def effect(self, world: RunningWorld) -> Effect:
        """The actions that apply the change at ``at`` and revert it at ``until``."""
        raise NotImplementedError(f"{type(self).__name__} must declare its effect")

    def plan(self, world: RunningWorld) -> None:
        """Act when the world is built, before the first tick (most kinds do nothing)."""


# --------------------------------------------------------------------------- product


class PriceChange(InterventionSpec):
    """Set a new price (or scale the price) for some segments."""

    title: ClassVar[str] = "price change"
    kind: Literal["price_change"]
    segments: Selector = "*"
    """Segments whose price changes (names, or "*" for all)."""
    price_usd_month: Annotated[Price | None, Knob("New price", "USD/month", 0.0, None, 0.5)] = None
    """The new price, USD per month: 0 (free), or at least 0.01 (or give factor)."""
    factor: Annotated[
        Annotated[Number, Field(ge=0.01, le=100.0)] | None,
        Knob("Price factor", "x", 0.1, MAX_PRICE_FACTOR, 0.05),
    ] = None
    """Multiply the current price by this (or give price_usd_month)."""

    @model_validator(mode="after")
    def _one_of(self) -> PriceChange:
        if (self.price_usd_month is None) == (self.factor is None):
            raise ValueError("needs exactly one of price_usd_month or factor")
        return self

    def words(self, scenario: Prices) -> str:
        """``"price $12 → $15"``, ``"price ×1.2"`` or ``"price → $15"``."""
        if self.factor is not None:
            return f"price ×{self.factor:g}"
        names = list(scenario.segments) if self.segments == "*" else list(self.segments)
        old = {scenario.segments[n].price_usd_month for n in names if n in scenario.segments}
        if len(old) == 1:
            return f"price ${old.pop():g} → ${self.price_usd_month:g}"
        return f"price → ${self.price_usd_month:g}"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected segments charge the new price (computed when it starts)."""

        def price(segment: Any) -> float:
            if self.factor is not None:
                return segment.price_usd_month * self.factor
            return self.price_usd_month  # type: ignore[return-value]

        return swap(world.segments_named(self.segments), _price, _set_price, price)


def _price(segment: Any) -> float:
    return segment.price_usd_month


def _set_price(segment: Any, price: float) -> None:
    segment.set_price(price)


class FeatureLaunch(InterventionSpec):
    """Launch a feature: it starts carrying traffic, shipped as one large deploy.

    ``dark: true`` runs the feature behind a flag: its traffic loads the services but its
    errors stay invisible to users, and the launch deploy goes out as a canary. At
    ``until`` a dark launch is revealed to users.
    """

    title: ClassVar[str] = "feature launch"
    kind: Literal["feature_launch"]
    feature: str
    """The feature to launch (declared in features, usually with launched: false)."""
    session_share: Annotated[
        Number,
        Field(gt=0.0, le=5.0),
        Knob("Sessions using the feature", "x existing sessions", 0.05, 2.0, 0.05),
    ] = 0.2
    """Sessions using the feature, relative to a segment's existing sessions."""
    launch_changes: Annotated[
        Whole, Field(ge=1, le=10_000), Knob("Size of the launch deploy", "changes", 1, 500, 1)
    ] = 25
    """Size of the launch deploy, in changes."""
    dark: Annotated[Flag, Knob("Dark launch: errors hidden from users until it ends")] = False
    """Launch behind a flag: load without user-visible errors until until."""

    def words(self, scenario: Prices) -> str:
        """``"search launch"`` or ``"dark launch of search"``."""
        return f"dark launch of {self.feature}" if self.dark else f"{self.feature} launch"

    def effect(self, world: RunningWorld) -> Effect:
        """Traffic starts on the feature, shipped as one large deploy by its owning team;
        at ``until`` a dark launch is revealed, a plain one withdrawn."""
        (f,) = world.feature_indices([self.feature])
        entry = int(world.features.entry[f])
        team = world.owner(entry)
        features = world.features
        traffic = chain(
            *(
                swap([segment], lambda s: s.feature_weights[f],
                     lambda s, share: s.set_feature_share(f, share),
                     lambda _: self.session_share)
                for segment in world.segments_named("*")
            ),
            swap([features], lambda fs: fs.visible[f], lambda fs, v: fs.set_visible(f, v),
                 lambda _: 0.0 if self.dark else 1.0),
        )  # fmt: skip

        def apply() -> None:
            traffic.apply()
            team.deploy(world.clock.tick, entry, extra_changes=self.launch_changes,
                        canary=self.dark)  # fmt: skip

        def revert() -> None:
            if self.dark:  # the end of a dark launch is the reveal: users now see the feature
                features.set_visible(f, 1.0)
            else:
                traffic.revert()

        return Effect(apply, revert)


class TrafficSurge(InterventionSpec):
    """Multiply the sessions of some features (a campaign, a season, a news spike)."""

    title: ClassVar[str] = "traffic surge"
    kind: Literal["traffic_surge"]
    features: Selector = "*"
    """Features whose sessions surge (names, or "*")."""
    multiplier: Annotated[
        Number, Field(ge=0.01, le=100.0), Knob("Traffic multiplier", "x", 0.1, 10.0, 0.1)
    ] = 2.0
    """Factor on those features' sessions (overlapping surges multiply)."""

    def words(self, scenario: Prices) -> str:
        """``"traffic ×2"``."""
        return f"traffic ×{self.multiplier:g}"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected features' sessions are multiplied (surges stack)."""
        index = world.feature_indices(self.features)
        features = world.features
        return Effect(
            lambda: features.scale_surge(index, self.multiplier),
            lambda: features.scale_surge(index, 1.0 / self.multiplier),
        )


# --------------------------------------------------------------------------- teams


class ApprovalBoard(InterventionSpec):
    """A change-approval board: changes wait for the board, which meets on a cadence."""

    title: ClassVar[str] = "approval board"
    kind: Literal["approval_board"]
    teams: Selector = "*"
    """Teams whose changes need the board (names, or "*")."""
    meeting_every_hours: Annotated[
        Whole, Field(ge=1, le=24 * 90), Knob("Board meets every", "h", 24, 24 * 28, 24)
    ] = 168
    """Hours between board meetings (168: weekly)."""

    def words(self, scenario: Prices) -> str:
        """``"weekly approval board"``."""
        return every(self.meeting_every_hours, "approval board")

    def effect(self, world: RunningWorld) -> Effect:
        """Deploys wait for the board, which meets on Tuesdays at 10:00 local, then on
        its cadence."""
        return swap(
            world.teams_named(self.teams), lambda t: t.policy, lambda t, p: t.set_policy(p),
            lambda t: t.board_policy(self.meeting_every_hours),
        )  # fmt: skip


class DeployFreeze(InterventionSpec):
    """No deploys while it lasts; changes queue up."""

    title: ClassVar[str] = "deploy freeze"
    kind: Literal["deploy_freeze"]
    teams: Selector = "*"
    """Teams that may not deploy (names, or "*")."""

    def words(self, scenario: Prices) -> str:
        """``"deploy freeze"``."""
        return "deploy freeze"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected teams stop deploying until it ends (freezes nest)."""
        teams = world.teams_named(self.teams)
        return Effect(
            _each(teams, lambda t: t.freeze_deploys()), _each(teams, lambda t: t.lift_freeze())
        )


class OncallRotation(InterventionSpec):
    """Change the number of engineers sharing the on-call rotation."""

    title: ClassVar[str] = "on-call rotation"
    kind: Literal["oncall_rotation"]
    teams: Selector = "*"
    """Teams whose rotation changes (names, or "*")."""
    oncall_size: Annotated[
        Whole, Field(ge=1, le=10_000), Knob("On-call rotation size", "engineers", 1, None, 1)
    ]
    """Engineers in the new rotation."""

    def words(self, scenario: Prices) -> str:
        """``"on-call rotation of 2"``."""
        return f"on-call rotation of {self.oncall_size}"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected teams' rotations change size."""
        return swap(
            world.teams_named(self.teams), lambda t: t.oncall_target,
            lambda t, n: t.set_oncall_target(n), lambda _: self.oncall_size,
        )  # fmt: skip


class Staffing(InterventionSpec):
    """Hire or lay off engineers, or freeze hiring (leavers are not replaced)."""

    title: ClassVar[str] = "staffing change"
    kind: Literal["staffing"]
    teams: Selector = "*"
    """Teams affected (names, or "*")."""
    headcount_change: Annotated[
        Whole,
        Field(ge=-10_000, le=10_000),
        Knob("Engineers hired (+) or laid off (-)", "engineers", None, 20, 1),
    ] = 0
    """Engineers hired (positive, after the hiring lag) or laid off (negative, at once)."""
    hiring_freeze: Annotated[Flag, Knob("Hiring freeze (leavers not replaced)")] = False
    """Leavers are not replaced until until."""

    def words(self, scenario: Prices) -> str:
        """``"hiring freeze"``, ``"2 layoffs"``, ``"3 hires"`` or both."""
        parts = ["hiring freeze"] if self.hiring_freeze else []
        n = self.headcount_change
        if n < 0:
            parts.append(f"{-n} layoff{'s' if n < -1 else ''}")
        elif n > 0:
            parts.append(f"{n} hire{'s' if n > 1 else ''}")
        return " and ".join(parts) or "staffing change"

    def effect(self, world: RunningWorld) -> Effect:
        """Hire or lay off (not undone at ``until``); freeze hiring until ``until``."""
        teams = world.teams_named(self.teams)

        def apply() -> None:
            for team in teams:
                if self.hiring_freeze:
                    team.set_hiring_frozen(True, world.clock.day)
                team.change_headcount(self.headcount_change, world.clock.day)

        def revert() -> None:
            if self.hiring_freeze:
                for team in teams:
                    team.set_hiring_frozen(False, world.clock.day)

        return Effect(apply, revert)


class ChaosProgram(InterventionSpec):
    """Planned failure drills in working hours: they build expertise at a small risk."""

    title: ClassVar[str] = "chaos programme"
    kind: Literal["chaos_program"]
    teams: Selector = "*"
    """Teams running drills (names, or "*")."""
    drills_per_month: Annotated[
        Number,
        Field(gt=0.0, le=60.0),
        Knob("Chaos drills a month per team", "drills/month", 0.5, 20.0, 0.5),
    ] = 2.0
    """Drills a month per team, on weekdays at 11:00 local."""
    drill_hours: Annotated[
        Number, Field(gt=0.0, le=24.0), Knob("Length of a drill", "h", 0.5, 8.0, 0.5)
    ] = 2.0
    """Length of a drill, hours."""
    expertise_per_drill: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.05
    """Expertise a drill adds to the team (1 = typical)."""

    def words(self, scenario: Prices) -> str:
        """``"chaos drills 2/month"``."""
        return f"chaos drills {self.drills_per_month:g}/month"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected teams run drills on their services in working hours."""
        return swap(world.teams_named(self.teams), lambda t: t.drills,
                    lambda t, d: t.set_drills(d), lambda _: self)  # fmt: skip


class ErrorBudgetPolicy(InterventionSpec):
    """Freeze a team's deploys while its services have burnt their error budget."""

    title: ClassVar[str] = "error-budget policy"
    kind: Literal["error_budget_policy"]
    teams: Selector = "*"
    """Teams under the policy (names, or "*")."""
    window_days: Annotated[
        Whole, Field(ge=1, le=90), Knob("Error-budget window", "days", 1, 90, 1)
    ] = 28
    """Window over which the error budget is counted, days."""
    freeze_above_budget_used: Annotated[
        Number,
        Field(gt=0.0, le=10.0),
        Knob("Freeze when budget used exceeds", "x budget", 0.1, 5.0, 0.1),
    ] = 1.0
    """Freeze deploys while the share of the budget used exceeds this (1 = all of it)."""

    def words(self, scenario: Prices) -> str:
        """``"error-budget freeze"``."""
        return "error-budget freeze"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected teams freeze deploys while their error budget is spent."""
        return swap(world.teams_named(self.teams), lambda t: t.budget_gate,
                    lambda t, g: t.set_budget_gate(g), lambda _: self)  # fmt: skip


# --------------------------------------------------------------------------- services


class AutoscalingPolicy(InterventionSpec):
    """Change autoscaling for some services (fields left out keep their value)."""

    title: ClassVar[str] = "autoscaling policy"
    kind: Literal["autoscaling_policy"]
    services: Selector = "*"
    """Services whose autoscaling changes (names, or "*")."""
    enabled: Annotated[Flag | None, Knob("Autoscaling on")] = None
    """Turn autoscaling on or off."""
    target_utilisation: Annotated[
        Annotated[Number, Field(ge=0.01, le=1.0)] | None,
        Knob("Autoscaling target utilisation", "0-1", 0.1, 1.0, 0.05),
    ] = None
    """New target utilisation."""
    min_replicas: Annotated[
        Annotated[Whole, Field(ge=1, le=100_000)] | None,
        Knob("Fewest replicas", "replicas", 1, 50, 1),
    ] = None
    """New replica floor."""
    max_replicas: Annotated[
        Annotated[Whole, Field(ge=1, le=100_000)] | None,
        Knob("Most replicas", "replicas", 1, 500, 1),
    ] = None
    """New replica ceiling."""
    lag_hours: Annotated[
        Annotated[Whole, Field(ge=0, le=48)] | None, Knob("Autoscaling lag", "h", 0, 48, 1)
    ] = None
    """New scaling lag, hours."""

    def words(self, scenario: Prices) -> str:
        """``"autoscaling target 45%"`` or ``"autoscaling policy"``."""
        target = self.target_utilisation
        return "autoscaling policy" if target is None else f"autoscaling target {target:.0%}"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected services autoscale with the settings given."""
        index = world.service_indices(self.services)
        given = {
            name: value
            for name, value in (
                ("enabled", self.enabled),
                ("target_utilisation", self.target_utilisation),
                ("min_replicas", self.min_replicas),
                ("max_replicas", self.max_replicas),
                ("lag_hours", self.lag_hours),
            )
            if value is not None
        }
        mesh = world.mesh
        saved: dict[str, Any] = {}

        def apply() -> None:
            saved.update(mesh.autoscaling(index))
            mesh.set_autoscaling(index, **given)

        def revert() -> None:
            mesh.set_autoscaling(index, **{name: saved[name] for name in given})

        return Effect(apply, revert)


class SpotShare(InterventionSpec):
    """Run a share of replicas on spot instances (cheaper, preemptible)."""

    title: ClassVar[str] = "spot instances"
    kind: Literal["spot_share"]
    services: Selector = "*"
    """Services affected (names, or "*")."""
    spot_share: Annotated[
        Probability, Knob("Share of replicas on spot instances", "0-1", 0.0, 1.0, 0.05)
    ]
    """Share of replicas on spot instances."""

    def words(self, scenario: Prices) -> str:
        """``"60% spot"``."""
        return f"{self.spot_share:.0%} spot"

    def effect(self, world: RunningWorld) -> Effect:
        """The selected services run this share of their replicas on spot instances."""
        index = world.service_indices(self.services)
        mesh = world.mesh
        saved: list[Any] = []

        def apply() -> None:
            saved[:] = [mesh.spot_share[index].copy()]
            mesh.set_spot_share(index, self.spot_share)

        def revert() -> None:
            mesh.set_spot_share(index, saved[0])

        return Effect(apply, revert)


# --------------------------------------------------------------------------- vendors


class VendorSwap(InterventionSpec):
    """Route every call to one vendor to another vendor declared in ``vendors``."""

    title: ClassVar[str] = "vendor swap"
    kind: Literal["vendor_swap"]
    vendor: str
    """The vendor being replaced."""
    to: Annotated[str, Knob("Replacement vendor")]
    """The replacement, declared in vendors."""

    def words(self, scenario: Prices) -> str:
        """``"pay-a → pay-b"``."""
        return f"{self.vendor} → {self.to}"

    def effect(self, world: RunningWorld) -> Effect:
        """Every call to ``vendor`` goes to ``to`` instead."""
        old, new = world.vendor_index(self.vendor), world.vendor_index(self.to)
        mesh = world.mesh
        saved: list[Any] = []

        def apply() -> None:
            saved[:] = [mesh.reroute_vendor(old, new)]

        def revert() -> None:
            mesh.restore_vendor_calls(saved[0])

        return Effect(apply, revert)


class VendorOutage(InterventionSpec):
    """A vendor is down from ``at`` to ``until`` (both required)."""

    title: ClassVar[str] = "vendor outage"
    kind: Literal["vendor_outage"]
    vendor: Annotated[str, Knob("Vendor that is down")]
    """The vendor that is down."""

    @model_validator(mode="after")
    def _bounded(self) -> VendorOutage:
        if self.until is None:
            raise ValueError("vendor_outage needs an end: set until")
        return self

    def words(self, scenario: Prices) -> str:
        """``"6 h payments outage"``."""
        return f"{(self.end_hour or self.start_hour) - self.start_hour} h {self.vendor} outage"

    def plan(self, world: RunningWorld) -> None:
        """The outage joins the vendor's plan before the run starts."""
        end = self.end_hour if self.end_hour is not None else world.clock.n_ticks
        world.vendor(self.vendor).force_outage(self.start_hour, end)

    def effect(self, world: RunningWorld) -> Effect:
        """Nothing to do while the run goes: the outage was planned."""
        return Effect(_nothing, _nothing)


# --------------------------------------------------------------------------- the union

Intervention = Annotated[
    PriceChange
    | FeatureLaunch
    | ApprovalBoard
    | DeployFreeze
    | OncallRotation
    | Staffing
    | AutoscalingPolicy
    | SpotShare
    | VendorSwap
    | VendorOutage
    | ChaosProgram
    | ErrorBudgetPolicy
    | TrafficSurge,
    Field(discriminator="kind"),
]
"""Any intervention, told apart by its ``kind``."""

KINDS: dict[str, type[InterventionSpec]] = {
    typing.get_args(cls.model_fields["kind"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(Intervention)[0])
}
"""Every intervention kind by its ``kind`` tag, in the order of :data:`Intervention`."""
INTERVENTION_KINDS: tuple[str, ...] = tuple(KINDS)
"""The ``kind`` tags, in declaration order."""
