"""The building blocks of scenario specs: the base class, bounded numbers and knobs.

Every scenario object derives from :class:`Spec`: unknown keys are errors, values are
validated when set, and the docstring under each field is its description (pydantic reads
it), so the reference, the JSON Schema and the dashboard's help all say the same words.
A :class:`Knob` on a field says how a page offers it as a control.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Spec(BaseModel):
    """Base of every scenario object: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, use_attribute_docstrings=True
    )


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Selector = Literal["*"] | list[str]
"""Names of entities of one kind, or ``"*"`` for all of them."""


@dataclass(frozen=True)
class Knob:
    """How an interactive page offers a field as a control.

    Put it in the field's annotation: ``Annotated[int, Field(ge=1), Knob("Board meets
    every", "h", 24, 672, 24)]``. A bound left ``None`` is worked out for each scenario
    (an on-call rotation can be no larger than its team).

    Attributes:
        label: what the field does, in plain words.
        unit: the value's unit (``"h"``, ``"USD/month"``…), or ``""``.
        low: the smallest value offered (numbers only).
        high: the largest value offered (numbers only).
        step: the step between offered values (numbers only).
    """

    label: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    step: float | None = None
