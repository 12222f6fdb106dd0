"""Building the world: scenario objects → agents and behaviours under one model.

Each entity gets its own random stream, derived from the run seed and the entity's
kind and name, so adding a team does not reshuffle the users' fates, and two runs with
the same seed share their randomness wherever their worlds agree (common random
numbers: comparisons then measure the change, not the noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from orgtwin import behaviours as bh
from orgtwin.agents.services import Service, ServiceMesh
from orgtwin.agents.teams import DeployPolicy, Team
from orgtwin.agents.users import UserSegment
from orgtwin.agents.vendors import Vendor
from orgtwin.errors import OrgTwinError
from orgtwin.scenario.spec import Scenario
from orgtwin.world.rng import entity_rng

if TYPE_CHECKING:
    from orgtwin.world.model import OrgModel


def behaviour(model: OrgModel, key: str, default: object) -> object:
    """The behaviour to use for ``key``: the caller's replacement if any, else the default.

    Keys name a behaviour and, where it is per entity, the entity:
    ``demand/<segment>``, ``churn/<segment>``, ``acquisition/<segment>``, ``latency``
    (all services at once), ``outages/<vendor>``, ``change_failure/<team>``,
    ``incident_timing/<team>``.
    """
    model.behaviour_keys.append(key)
    return model.behaviour_overrides.get(key, default)


def check_behaviour_keys(model: OrgModel) -> None:
    """Refuse replacement behaviours whose key names nothing in this world."""
    unknown = sorted(set(model.behaviour_overrides) - set(model.behaviour_keys))
    if unknown:
        known = ", ".join(sorted(model.behaviour_keys))
        raise OrgTwinError(
            f"behaviours: keys must name a behaviour of this scenario ({known}), "
            f"got {', '.join(unknown)}"
        )


def build_features(model: OrgModel, scenario: Scenario) -> None:
    """Feature arrays: entry service, requests per session, visibility, surge."""
    names = list(scenario.features)
    model.feature_names = names
    model.feature_index = {n: i for i, n in enumerate(names)}
    model.feature_entry = np.array(
        [model.service_index[scenario.features[n].entry] for n in names], dtype=np.int64
    )
    model.requests_per_session = np.array(
        [scenario.features[n].requests_per_session for n in names]
    )
    model.visible_requests_per_session = np.array(
        [
            scenario.features[n].requests_per_session * scenario.features[n].user_visible_share
            for n in names
        ]
    )
    model.feature_visible = np.ones(len(names))
    model.surge = np.ones(len(names))


def build_segments(model: OrgModel, scenario: Scenario, seed: int) -> None:
    """One :class:`UserSegment` per scenario segment."""
    model.segments = []
    for name, spec in scenario.segments.items():
        weights = np.zeros(len(model.feature_names))
        total = sum(spec.features.values())
        for feature, share in spec.features.items():
            if scenario.features[feature].launched:
                weights[model.feature_index[feature]] = share / total
        reference = spec.churn.reference_price_usd_month
        reference = spec.price_usd_month if reference is None else reference
        churn = behaviour(model, f"churn/{name}", bh.ChurnHazard(
            base_monthly=spec.churn.base_monthly,
            experience_coef=spec.churn.experience_coef,
            price_elasticity=spec.churn.price_elasticity,
            tenure_coef=spec.churn.tenure_coef,
            reference_price_usd_month=reference,
        ))  # fmt: skip
        acquisition = behaviour(model, f"acquisition/{name}", bh.Acquisition(
            **spec.acquisition.model_dump(), reference_price_usd_month=reference
        ))  # fmt: skip
        profile = behaviour(
            model, f"demand/{name}", bh.DemandProfile(**spec.demand_profile.model_dump())
        )
        segment = UserSegment(
            model,
            name=name,
            plan=spec.plan,
            n_users=spec.n_users,
            price_usd_month=spec.price_usd_month,
            utc_offset_hours=spec.utc_offset_hours,
            sessions_per_user_day=spec.sessions_per_user_day,
            intensity_sigma=spec.intensity_sigma,
            feature_weights=weights,
            profile=profile,
            churn=churn,
            acquisition=acquisition,
            tickets_per_bad_session=spec.tickets_per_bad_session,
            slow_session_ms=spec.slow_session_ms,
            initial_tenure_months_mean=spec.initial_tenure_months_mean,
            experience_half_life_days=spec.churn.experience_half_life_days,
            sample_size=scenario.telemetry.user_sample_per_segment,
            rng=entity_rng(seed, "segment", name),
        )
        model.segments.append(segment)
    model.segments_by_name = {s.name: s for s in model.segments}


def build_mesh(model: OrgModel, scenario: Scenario, seed: int) -> None:
    """The :class:`ServiceMesh` and one :class:`Service` agent per service."""
    names = list(scenario.services)
    vendor_names = list(scenario.vendors)
    model.service_index = {n: i for i, n in enumerate(names)}
    model.vendor_index = {n: i for i, n in enumerate(vendor_names)}
    specs = [scenario.services[n] for n in names]
    fanout = np.zeros((len(names), len(names)))
    vendor_fanout = np.zeros((len(names), len(vendor_names)))
    for i, spec in enumerate(specs):
        for callee, calls in spec.calls.items():
            fanout[i, model.service_index[callee]] = calls
        for vendor, calls in spec.vendors.items():
            vendor_fanout[i, model.vendor_index[vendor]] = calls

    def column(get) -> np.ndarray:
        return np.array([get(s) for s in specs])

    model.mesh = ServiceMesh(
        names=names,
        fanout=fanout,
        vendor_fanout=vendor_fanout,
        replicas=column(lambda s: s.replicas),
        capacity_rps_per_replica=column(lambda s: s.capacity_rps_per_replica),
        replica_cost_usd_hour=column(lambda s: s.replica_cost_usd_hour),
        spot_share=column(lambda s: s.spot_share),
        spot_discount=column(lambda s: s.spot_discount),
        spot_preemption_per_hour=column(lambda s: s.spot_preemption_per_hour),
        spot_recovery_hours=column(lambda s: s.spot_recovery_hours),
        base_error_rate=column(lambda s: s.base_error_rate),
        latency=behaviour(
            model,
            "latency",
            bh.LatencyCurve(
                base_ms=column(lambda s: s.latency.base_ms),
                queueing_factor=column(lambda s: s.latency.queueing_factor),
                timeout_ms=column(lambda s: s.latency.timeout_ms),
                p95_over_p50=column(lambda s: s.latency.p95_over_p50),
            ),
        ),
        autoscale_enabled=column(lambda s: s.autoscale.enabled),
        target_utilisation=column(lambda s: s.autoscale.target_utilisation),
        min_replicas=column(lambda s: s.autoscale.min_replicas),
        max_replicas=column(lambda s: s.autoscale.max_replicas),
        lag_hours=column(lambda s: s.autoscale.lag_hours),
        rng=entity_rng(seed, "mesh", "services"),
    )
    model.services = [
        Service(model, name=n, index=i, team=specs[i].team, mesh=model.mesh)
        for i, n in enumerate(names)
    ]


def build_vendors(model: OrgModel, scenario: Scenario, seed: int) -> None:
    """One :class:`Vendor` agent per vendor, with its outage behaviour."""
    model.vendors = [
        Vendor(
            model,
            name=name,
            kind=spec.kind,
            latency_ms=spec.latency_ms,
            price_usd_per_1k_calls=spec.price_usd_per_1k_calls,
            rate_limit_rps=spec.rate_limit_rps,
            error_rate=spec.error_rate,
            outages=behaviour(
                model,
                f"outages/{name}",
                bh.VendorOutages(spec.outage_rate_per_month, spec.outage_hours_mean),
            ),
            sla_availability=spec.sla_availability,
            rng=entity_rng(seed, "vendor", name),
        )
        for name, spec in scenario.vendors.items()
    ]
    model.vendors_by_name = {v.name: v for v in model.vendors}
    for vendor in model.vendors:
        vendor.plan_outages(model.n_ticks)


def build_teams(model: OrgModel, scenario: Scenario, seed: int) -> None:
    """One :class:`Team` agent per team, owning its services."""
    model.teams = []
    for name, spec in scenario.teams.items():
        owned = [i for i, s in enumerate(model.services) if s.team == name]
        policy = spec.deploy_policy
        anchor = model.local_anchor(spec.utc_offset_hours, weekday=0, hour=10)
        incidents = spec.incidents
        team = Team(
            model,
            name=name,
            services=owned,
            headcount=spec.headcount,
            oncall_size=spec.oncall_size,
            utc_offset_hours=spec.utc_offset_hours,
            changes_per_engineer_day=spec.changes_per_engineer_day,
            toil_hours_per_ticket=spec.toil_hours_per_ticket,
            pipeline_hours=spec.pipeline_hours,
            canary=spec.canary,
            canary_blast_radius=spec.change_failure.canary_blast_radius,
            policy=DeployPolicy(policy.kind, policy.every_hours, policy.working_hours_only, anchor),
            change_failure=behaviour(
                model,
                f"change_failure/{name}",
                bh.ChangeFailure(
                    spec.change_failure.base,
                    spec.change_failure.batch_coef,
                    spec.change_failure.fatigue_coef,
                ),
            ),
            timing=behaviour(
                model,
                f"incident_timing/{name}",
                bh.IncidentTiming(
                    detect_median_hours=incidents.detect_median_hours,
                    detect_sigma=incidents.detect_sigma,
                    restore_median_hours=incidents.restore_median_hours,
                    restore_sigma=incidents.restore_sigma,
                    fatigue_coef=incidents.fatigue_coef,
                    expertise_coef=incidents.expertise_coef,
                    batch_coef=incidents.batch_coef,
                ),
            ),
            incident_error_rate=incidents.deploy_incident_error_rate,
            escalate_every_hours=incidents.escalate_every_hours,
            people=spec.people.model_dump(),
            expertise=spec.expertise,
            rng=entity_rng(seed, "team", name),
        )
        model.teams.append(team)
    model.teams_by_name = {t.name: t for t in model.teams}
    model.service_team = np.array(
        [model.teams.index(model.teams_by_name[s.team]) for s in model.services], dtype=np.int64
    )
