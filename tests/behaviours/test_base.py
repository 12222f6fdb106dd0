"""The behaviour protocol (orgtwin/behaviours/base.py), checked on every behaviour class.

Each behaviour is a scikit-learn style estimator: ``__init__`` stores its arguments and
nothing else, ``get_params``/``set_params`` read and write them, and ``sklearn``'s
``clone`` copies it. Each is built from the scenario spec that declares its parameters:
its ``__init__`` defaults are that spec's defaults, and ``from_spec`` reads the spec's
values (parameters passed to it win). ``logit`` and ``expit`` are each other's inverse.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from orgtwin import behaviours as bh
from orgtwin.behaviours.base import expit, logit

NON_DEFAULT = {
    bh.DemandProfile: {"peak_hour": 9, "night_level": 0.3, "weekend_level": 0.8,
                       "profile": [0.5, 1.5] * 84, "burst_cv": 0.4},
    bh.LatencyCurve: {"base_ms": np.array([5.0, 9.0]), "queueing_factor": 2.0,
                      "timeout_ms": 900.0, "p95_over_p50": 4.0, "u_max": 0.95},
    bh.ChangeFailure: {"base": 0.1, "batch_coef": 0.3, "fatigue_coef": 0.2},
    bh.IncidentTiming: {"detect_median_hours": 1.0, "detect_sigma": 0.1,
                        "restore_median_hours": 2.0, "restore_sigma": 0.2, "fatigue_coef": 0.3,
                        "expertise_coef": 0.4, "batch_coef": 0.5},
    bh.VendorOutages: {"rate_per_month": 3.0, "hours_mean": 4.0},
    bh.ChurnHazard: {"base_monthly": 0.05, "experience_coef": 2.0, "price_elasticity": 0.5,
                     "tenure_coef": -0.1, "reference_price_usd_month": 9.0},
    bh.Acquisition: {"base_per_day": 7.0, "price_elasticity": -0.5,
                     "word_of_mouth_per_user_day": 0.001, "experience_penalty": 1.0,
                     "reference_price_usd_month": 9.0},
}  # fmt: skip
"""Every parameter of every behaviour, set to a value other than its default."""

SPEC_VALUES = {
    bh.DemandProfile: {"peak_hour": 9, "night_level": 0.3, "weekend_level": 0.8,
                       "profile": [0.5, 1.5] * 84, "burst_cv": 0.4},
    bh.LatencyCurve: {"base_ms": 5.0, "queueing_factor": 2.0, "timeout_ms": 900.0,
                      "p95_over_p50": 4.0},
    bh.ChangeFailure: {"base": 0.1, "batch_coef": 0.3, "fatigue_coef": 0.2},
    bh.IncidentTiming: {"detect_median_hours": 1.0, "detect_sigma": 0.1,
                        "restore_median_hours": 2.0, "restore_sigma": 0.2, "fatigue_coef": 0.3,
                        "expertise_coef": 0.4, "batch_coef": 0.5},
    bh.VendorOutages: {"outage_rate_per_month": 3.0, "outage_hours_mean": 4.0},
    bh.ChurnHazard: {"base_monthly": 0.05, "experience_coef": 2.0, "price_elasticity": 0.5,
                     "tenure_coef": -0.1, "reference_price_usd_month": 9.0},
    bh.Acquisition: {"base_per_day": 7.0, "price_elasticity": -0.5,
                     "word_of_mouth_per_user_day": 0.001, "experience_penalty": 1.0},
}  # fmt: skip
"""Spec field -> a value other than the spec's default, for every field a behaviour reads."""

NOT_ON_THE_SPEC = {
    bh.LatencyCurve: {"u_max"},
    bh.Acquisition: {"reference_price_usd_month"},
}
"""Parameters the spec does not declare (the builder passes them, or they stay fixed)."""

DEFAULT_DIFFERS = {bh.ChurnHazard: {"reference_price_usd_month"}}
"""Parameters whose default deliberately differs from the spec's: the spec's ``None``
means "the segment's own price", which the loader pins; the behaviour's 0 means no
price term."""


def spec_field(cls: type[bh.Behaviour], name: str) -> str:
    return cls.spec_fields.get(name, name)


def init_defaults(cls: type) -> dict[str, Any]:
    parameters = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name != "self"}


BEHAVIOURS = list(NON_DEFAULT)


def test_every_behaviour_is_covered():
    declared = {
        obj
        for _, obj in inspect.getmembers(bh, inspect.isclass)
        if issubclass(obj, bh.Behaviour) and obj is not bh.Behaviour
    }
    assert declared == set(NON_DEFAULT) == set(SPEC_VALUES)


@pytest.mark.parametrize("cls", BEHAVIOURS, ids=lambda c: c.__name__)
def test_behaviours_store_only_their_arguments_and_clone(cls: type):
    params = NON_DEFAULT[cls]
    signature = inspect.signature(cls.__init__).parameters
    assert set(params) == set(signature) - {"self"}, "the test names every argument"
    obj = cls(**params)
    assert set(vars(obj)) == set(params), "__init__ stores its arguments and nothing else"
    got = obj.get_params()
    assert set(got) == set(params)
    for name, value in params.items():
        assert got[name] is value
    twin = clone(obj)
    assert type(twin) is cls and twin is not obj
    for name, value in twin.get_params().items():
        np.testing.assert_array_equal(value, params[name])
    default = cls()
    assert set(default.get_params()) == set(params)
    default.set_params(**params)
    assert default.get_params() == got


@pytest.mark.parametrize("cls", BEHAVIOURS, ids=lambda c: c.__name__)
def test_set_params_refuses_a_name_that_is_not_a_parameter(cls: type):
    obj = cls()
    with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter must be one of .*'bogus'"):
        obj.set_params(bogus=1.0)
    assert "bogus" not in vars(obj)


@pytest.mark.parametrize("cls", BEHAVIOURS, ids=lambda c: c.__name__)
def test_init_defaults_are_the_defaults_of_the_spec(cls: type[bh.Behaviour]):
    assert cls.spec is not None, f"{cls.__name__} names the spec it is built from"
    fields = cls.spec.model_fields
    assert set(cls.spec_fields.values()) <= set(fields), "spec_fields name fields of the spec"
    assert set(cls.spec_fields) <= set(init_defaults(cls)), "spec_fields name parameters"
    differs = set()
    for name, default in init_defaults(cls).items():
        field = spec_field(cls, name)
        if field not in fields:
            assert name in NOT_ON_THE_SPEC.get(cls, set()), f"{name} is not a field of the spec"
            continue
        assert name not in NOT_ON_THE_SPEC.get(cls, set()), f"{name} is on the spec after all"
        if default != fields[field].get_default(call_default_factory=True):
            differs.add(name)
    assert differs == DEFAULT_DIFFERS.get(cls, set())


@pytest.mark.parametrize("cls", BEHAVIOURS, ids=lambda c: c.__name__)
def test_from_spec_reads_the_specs_values_and_passed_parameters_win(cls: type[bh.Behaviour]):
    assert cls.spec is not None
    values = SPEC_VALUES[cls]
    fields = cls.spec.model_fields
    read = {name: spec_field(cls, name) for name in init_defaults(cls)}
    read = {name: field for name, field in read.items() if field in fields}
    assert set(values) == set(read.values()), "the test sets every field the behaviour reads"
    for field, value in values.items():
        assert value != fields[field].get_default(call_default_factory=True), field
    spec = cls.spec(**values)

    built = cls.from_spec(spec)
    assert type(built) is cls
    for name, default in init_defaults(cls).items():
        expected = values[read[name]] if name in read else default
        assert getattr(built, name) == expected, name

    first = next(iter(read))
    overridden = cls.from_spec(spec, **{first: NON_DEFAULT[cls][first]})
    np.testing.assert_array_equal(getattr(overridden, first), NON_DEFAULT[cls][first])
    others = {name: getattr(built, name) for name in read if name != first}
    assert {name: getattr(overridden, name) for name in others} == others


def test_expit_inverts_logit():
    p = np.array([1e-6, 0.03, 0.5, 0.9, 1 - 1e-6])
    np.testing.assert_allclose(expit(logit(p)), p, rtol=1e-9)
    assert logit(0.5) == 0.0 and expit(0.0) == 0.5
    assert (np.diff(logit(p)) > 0).all()
