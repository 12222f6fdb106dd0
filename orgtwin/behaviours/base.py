"""Behaviours: the small, swappable laws the agents follow.

Each behaviour is a scikit-learn style estimator (see :class:`Behaviour`): ``__init__``
stores its parameters and nothing else, parameters are inspectable with ``get_params()``,
and the agents only call its ``predict``/``sample`` methods, batched over whole
populations. The classes here are the default parametric forms; a behaviour learned from
telemetry replaces one by offering the same methods, without touching the agents.

Parameters may be scalars or numpy arrays (one value per entity), so one behaviour
object serves a whole population at once — e.g. a single :class:`LatencyCurve` holds
the curve of every service in the mesh. Nothing here imports mesa.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel


class Behaviour:
    """Base of every behaviour: the scikit-learn parameter protocol, without scikit-learn.

    ``__init__`` stores its parameters and nothing else; ``get_params``/``set_params``
    read and write them, so ``sklearn.base.clone`` copies a behaviour and a behaviour's
    parameters are inspectable, while importing orgtwin stays free of scikit-learn (and
    SciPy). These are the prediction side only: fitting a behaviour to telemetry is the
    job of learners, which produce these parameters.

    A behaviour is built from the scenario spec that declares its parameters
    (:meth:`from_spec`), and its ``__init__`` defaults are that spec's defaults, so a
    parameter's default is declared once, on the spec.

    Attributes:
        spec: the scenario spec class the parameters come from.
        spec_fields: behaviour parameter -> spec field, where the names differ.
    """

    spec: ClassVar[type[BaseModel] | None] = None
    spec_fields: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_spec(cls, spec: BaseModel, **params: Any) -> Self:
        """The behaviour with the parameters ``spec`` sets (``params`` win).

        Example:
            >>> from orgtwin.behaviours import ChangeFailure
            >>> from orgtwin.scenario.organisation import ChangeFailureSpec
            >>> ChangeFailure.from_spec(ChangeFailureSpec(base=0.05)).base
            0.05
        """
        fields = type(spec).model_fields
        for name in cls._param_names():
            field = cls.spec_fields.get(name, name)
            if name not in params and field in fields:
                params[name] = getattr(spec, field)
        return cls(**params)

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The behaviour's parameters by name (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Behaviour:
        """Set parameters by name; returns the behaviour.

        Raises:
            ValueError: a name is not a parameter of this behaviour.
        """
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                allowed = ", ".join(known)
                raise ValueError(
                    f"{type(self).__name__}: parameter must be one of {allowed}, got {name!r}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def logit(p: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def expit(x: ArrayLike) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))
