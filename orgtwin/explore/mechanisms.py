"""The model's causal graph of figures: which figure moves which, and how.

The ripple's chain (:mod:`orgtwin.explore.ripple`) walks this graph, so a link it writes
is a mechanism of the simulator, not two large effects side by side. Each edge names
where the simulator does it (``agents/users.py``, ``agents/teams.py``…) in its words.

- :data:`FIGURES`: every figure the chain may name, in causal order (the order links of
  one step are written in), with its words; KPIs of :data:`orgtwin.world.kpis.KPIS`
  and a few figures of the series (sessions, load, toil…) that carry a change between
  KPIs.
- :data:`MECHANISMS`: ``(cause, effect, sign, how)``: ``sign`` +1 when the effect moves
  the way the cause does, -1 the other way, 0 either (it depends on the lever).
- :data:`LEVERS`: what each lever (an intervention kind, or the field a control moves)
  acts on first.

Pure data and two small look-ups; nothing is computed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Figure(NamedTuple):
    """A figure the chain may name.

    Attributes:
        key: a KPI name, or a series figure (``"sessions"``, ``"load"``…).
        words: what the chain calls it.
        series: ``(entity_type, metric)`` of the series it is summed from, or None for a
            KPI (read from the comparison) or the batch size (from the deploys table).
    """

    key: str
    words: str
    series: tuple[str, str] | None = None


FIGURES: tuple[Figure, ...] = (
    Figure("batch_size", "batch size"),
    Figure("lead_time_hours", "lead time"),
    Figure("deploy_frequency_per_day", "deploys"),
    Figure("change_failure_rate_pct", "change failure"),
    Figure("failed_deploys", "failed deploys", ("team", "failed_deploys")),
    Figure("incidents", "incidents"),
    Figure("pages", "pages"),
    Figure("off_hours_pages", "off-hours pages"),
    Figure("pages_per_oncall_engineer", "pages per on-call engineer"),
    Figure("fatigue", "fatigue"),
    Figure("expertise", "expertise", ("team", "expertise")),
    Figure("time_to_restore_hours", "restore time"),
    Figure("mttr_hours", "mean time to restore"),
    Figure("attrition", "attrition"),
    Figure("headcount", "headcount", ("team", "headcount")),
    Figure("toil_hours", "toil", ("team", "toil_hours")),
    Figure("feature_hours", "feature work", ("team", "feature_hours")),
    Figure("feature_throughput_per_week", "feature throughput"),
    Figure("churn_rate_monthly_pct", "churn"),
    Figure("acquired", "sign-ups"),
    Figure("users", "users"),
    Figure("sessions", "sessions", ("segment", "sessions")),
    Figure("load", "load", ("service", "demand_rps")),
    Figure("preemptions", "spot preemptions", ("service", "preempted_replicas")),
    Figure("error_budget_used", "errors"),
    Figure("latency_p95_ms", "p95 latency"),
    Figure("bad_sessions", "bad sessions", ("segment", "bad_sessions")),
    Figure("tickets", "tickets"),
    Figure("revenue_usd", "revenue"),
    Figure("infra_cost_usd", "infra cost"),
    Figure("vendor_cost_usd", "vendor cost"),
)
"""Every figure of the chain, in causal order (the order a step's links are written in)."""
WORDS = {f.key: f.words for f in FIGURES}
ORDER = {f.key: i for i, f in enumerate(FIGURES)}


class Mechanism(NamedTuple):
    """One edge of the graph: ``cause`` moves ``effect``."""

    cause: str
    effect: str
    sign: int
    how: str


MECHANISMS: tuple[Mechanism, ...] = (
    # users (agents/users.py): the churn hazard and arrivals; revenue = paying users × price
    Mechanism("churn_rate_monthly_pct", "users", -1, "users who leave"),
    Mechanism("acquired", "users", +1, "users who join"),
    Mechanism("users", "revenue_usd", +1, "revenue is paying users × price"),
    Mechanism("users", "sessions", +1, "each active user opens sessions"),
    Mechanism("users", "acquired", +1, "word of mouth grows with active users"),
    Mechanism("sessions", "load", +1, "sessions send requests into the services"),
    Mechanism("sessions", "bad_sessions", +1, "more sessions meet the same errors"),
    # services (agents/services.py): autoscaling, queueing latency, overload, vendor calls
    Mechanism("load", "infra_cost_usd", +1, "the autoscaler runs replicas for the load"),
    Mechanism("load", "vendor_cost_usd", +1, "requests fan out into paid vendor calls"),
    Mechanism("load", "latency_p95_ms", +1, "latency rises with utilisation"),
    Mechanism("load", "error_budget_used", +1, "load above capacity is rejected"),
    Mechanism("load", "incidents", +1, "an overloaded service opens a capacity incident"),
    Mechanism("preemptions", "error_budget_used", +1, "reclaimed replicas leave less capacity"),
    Mechanism("preemptions", "latency_p95_ms", +1, "reclaimed replicas leave less capacity"),
    # users meet the service (orgtwin/world/model.py meet_service; users.py end_day)
    Mechanism("error_budget_used", "bad_sessions", +1, "a failed request spoils a session"),
    Mechanism("latency_p95_ms", "bad_sessions", +1, "a session slower than tolerated is bad"),
    Mechanism("bad_sessions", "churn_rate_monthly_pct", +1, "bad experience raises churn"),
    Mechanism("bad_sessions", "acquired", -1, "bad experience damps word of mouth"),
    Mechanism("bad_sessions", "tickets", +1, "bad sessions raise support tickets"),
    # teams (agents/teams.py): toil, feature work, deploys, incidents, pages, people
    Mechanism("tickets", "toil_hours", +1, "tickets become toil for the owning team"),
    Mechanism("toil_hours", "feature_hours", -1, "toil takes hours from feature work"),
    Mechanism("headcount", "feature_hours", +1, "more engineers, more hours"),
    Mechanism("incidents", "feature_hours", -1, "responders leave feature work"),
    Mechanism("feature_hours", "deploy_frequency_per_day", +1, "more changes to ship"),
    Mechanism("feature_hours", "batch_size", +1, "more changes wait for each deploy"),
    Mechanism("feature_hours", "feature_throughput_per_week", +1, "more changes shipped"),
    Mechanism(
        "deploy_frequency_per_day",
        "feature_throughput_per_week",
        +1,
        "changes count as shipped when a deploy takes them out",
    ),
    Mechanism("fatigue", "feature_throughput_per_week", -1, "tired engineers finish less"),
    Mechanism("fatigue", "deploy_frequency_per_day", -1, "tired engineers finish less"),
    Mechanism("deploy_frequency_per_day", "failed_deploys", +1, "each deploy may fail"),
    Mechanism("batch_size", "change_failure_rate_pct", +1, "bigger batches fail more often"),
    Mechanism("fatigue", "change_failure_rate_pct", +1, "tired engineers ship riskier changes"),
    Mechanism("change_failure_rate_pct", "failed_deploys", +1, "riskier deploys fail more"),
    Mechanism("failed_deploys", "incidents", +1, "a failed deploy starts an incident"),
    Mechanism("failed_deploys", "feature_throughput_per_week", -1, "failed changes roll back"),
    Mechanism("batch_size", "pages", +1, "bigger batches break worse: more incidents page"),
    Mechanism("batch_size", "time_to_restore_hours", +1, "bigger batches take longer to fix"),
    Mechanism("batch_size", "mttr_hours", +1, "bigger batches take longer to fix"),
    Mechanism("batch_size", "error_budget_used", +1, "bigger batches break worse"),
    Mechanism("incidents", "error_budget_used", +1, "an incident fails requests"),
    Mechanism("incidents", "pages", +1, "incidents page the on-call engineer"),
    Mechanism("incidents", "expertise", +1, "each resolved incident teaches"),
    Mechanism("time_to_restore_hours", "pages", +1, "unresolved incidents page again"),
    Mechanism("time_to_restore_hours", "error_budget_used", +1, "longer incidents fail more"),
    Mechanism("mttr_hours", "pages", +1, "unresolved incidents page again"),
    Mechanism("mttr_hours", "error_budget_used", +1, "longer incidents fail more"),
    Mechanism("pages", "off_hours_pages", +1, "some pages come at night"),
    Mechanism("pages", "pages_per_oncall_engineer", +1, "the same rotation carries them"),
    Mechanism("off_hours_pages", "fatigue", +1, "night pages tire the engineer on call"),
    Mechanism("pages_per_oncall_engineer", "fatigue", +1, "each engineer is paged more"),
    Mechanism("fatigue", "time_to_restore_hours", +1, "tired engineers restore slower"),
    Mechanism("fatigue", "mttr_hours", +1, "tired engineers restore slower"),
    Mechanism("fatigue", "attrition", +1, "tired engineers leave"),
    Mechanism("expertise", "time_to_restore_hours", -1, "expertise shortens restores"),
    Mechanism("expertise", "mttr_hours", -1, "expertise shortens restores"),
    Mechanism("attrition", "headcount", -1, "leavers wait for hires"),
)
"""The model's mechanisms between figures, as the agents carry them out."""

SAME_THING = {("pages", "pages_per_oncall_engineer")}
"""Edges whose effect is the cause rescaled: the effect adds nothing when it moved alike."""

LEVERS: dict[str, tuple[tuple[str, str], ...]] = {
    "price_change": (("revenue_usd", "each paying user pays the new price"),
                     ("churn_rate_monthly_pct", "the churn hazard grows with price"),
                     ("acquired", "fewer sign up at a higher price")),
    "feature_launch": (("sessions", "users open the new feature"),
                       ("load", "the feature's requests enter its service")),
    "traffic_surge": (("sessions", "the surge multiplies sessions"),),
    "approval_board": (("batch_size", "changes wait for the board and ship together"),
                       ("lead_time_hours", "changes wait for the board's meeting"),
                       ("deploy_frequency_per_day", "deploys only when the board meets")),
    "deploy_policy": (("batch_size", "the policy sets how changes batch"),
                      ("lead_time_hours", "the policy sets how long changes wait"),
                      ("deploy_frequency_per_day", "the policy sets when deploys go out")),
    "deploy_freeze": (("deploy_frequency_per_day", "no deploys during the freeze"),
                      ("batch_size", "changes pile up during the freeze"),
                      ("lead_time_hours", "changes wait out the freeze")),
    "error_budget_policy": (("deploy_frequency_per_day", "deploys stop while the budget is spent"),
                            ("batch_size", "changes pile up while deploys stop"),
                            ("lead_time_hours", "changes wait while deploys stop")),
    "oncall_rotation": (("pages_per_oncall_engineer", "fewer engineers share the pages"),
                        ("fatigue", "each engineer holds the pager more often")),
    "staffing": (("headcount", "engineers hired, laid off or not replaced"),),
    "change_failure": (("change_failure_rate_pct", "each deploy is riskier or safer"),),
    "chaos_program": (("incidents", "each drill is an incident"),
                      ("expertise", "drills build expertise")),
    "autoscaling_policy": (("infra_cost_usd", "the autoscaler runs more or fewer replicas"),
                           ("latency_p95_ms", "replicas run hotter or cooler"),
                           ("error_budget_used", "less headroom is rejected at peaks")),
    "spot_share": (("infra_cost_usd", "spot replicas cost less"),
                   ("preemptions", "spot replicas are reclaimed at peaks")),
    "vendor_swap": (("vendor_cost_usd", "the new vendor's price per call"),
                    ("error_budget_used", "the new vendor's errors"),
                    ("latency_p95_ms", "the new vendor's latency")),
    "vendor_outage": (("error_budget_used", "calls to the vendor fail"),
                      ("incidents", "each calling team opens a vendor incident"),
                      ("latency_p95_ms", "calls to the vendor time out")),
}  # fmt: skip
"""Lever -> the figures it moves first, and how: every intervention kind, and
``deploy_policy`` and ``change_failure`` for a team's settings moved in place."""

FIELD_LEVERS = {
    "price_usd_month": "price_change",
    "target_utilisation": "autoscaling_policy",
    "spot_share": "spot_share",
    "deploy_policy": "deploy_policy",
    "oncall_size": "oncall_rotation",
    "headcount": "staffing",
    "change_failure": "change_failure",
}
"""A field a control moves in place (its path's last names) -> the lever it is."""


def lever_of(path: str) -> str | None:
    """The lever a control path moves (``teams.web.oncall_size`` -> ``oncall_rotation``).

    Example:
        >>> lever_of("segments.pro_us.price_usd_month"), lever_of("teams.web.deploy_policy.kind")
        ('price_change', 'deploy_policy')
    """
    for name in reversed(path.split(".")):
        if name in FIELD_LEVERS:
            return FIELD_LEVERS[name]
    return None


def downstream(key: str) -> list[Mechanism]:
    """The mechanisms ``key`` drives."""
    return [m for m in MECHANISMS if m.cause == key]


def entries(levers: Iterable[str]) -> dict[str, str]:
    """Figure -> how the levers move it first (the first lever to name a figure says it)."""
    out: dict[str, str] = {}
    for lever in levers:
        for key, how in LEVERS.get(lever, ()):
            out.setdefault(key, how)
    return out


BETTER: dict[str, bool | None] = {
    "failed_deploys": False, "expertise": True, "headcount": None, "toil_hours": False,
    "feature_hours": True, "sessions": None, "load": None, "preemptions": False,
    "bad_sessions": False,
}  # fmt: skip
"""Which way is good for the figures of the series (the KPIs say it themselves)."""
