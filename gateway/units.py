"""Metrics, units and exact conversions.

Values are stored in canonical units (kg, mmHg, %, mg/dL, /min) and converted
for display.  Conversion factors are exact decimals (1 lb = 0.45359237 kg by
definition; 1 mmHg = 0.133322387415 kPa; glucose 1 mmol/L = 18.016 mg/dL as
BLE.md specifies for the Glucose profile), applied with ``Decimal`` so that a
value converted and converted back lands on the same float.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class Metric(StrEnum):
    """A physiologic (or device) quantity a reading can carry."""

    WEIGHT = "weight"
    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    MEAN_ARTERIAL = "mean_arterial"
    PULSE = "pulse"
    SPO2 = "spo2"
    PERFUSION_INDEX = "perfusion_index"
    GLUCOSE = "glucose"
    BATTERY = "battery"


class Unit(StrEnum):
    """Units as devices send them and as people read them."""

    KG = "kg"
    LB = "lb"
    MMHG = "mmHg"
    KPA = "kPa"
    PERCENT = "%"
    MG_DL = "mg/dL"
    MMOL_L = "mmol/L"
    KG_L = "kg/L"
    MOL_L = "mol/L"
    PER_MIN = "/min"


CANONICAL_UNIT: dict[Metric, Unit] = {
    Metric.WEIGHT: Unit.KG,
    Metric.SYSTOLIC: Unit.MMHG,
    Metric.DIASTOLIC: Unit.MMHG,
    Metric.MEAN_ARTERIAL: Unit.MMHG,
    Metric.PULSE: Unit.PER_MIN,
    Metric.SPO2: Unit.PERCENT,
    Metric.PERFUSION_INDEX: Unit.PERCENT,
    Metric.GLUCOSE: Unit.MG_DL,
    Metric.BATTERY: Unit.PERCENT,
}

#: Metrics that count as physiologic data (billing's "qualifying reading").
PHYSIOLOGIC: frozenset[Metric] = frozenset(Metric) - {Metric.BATTERY}

LB_IN_KG = Decimal("0.45359237")
KPA_IN_MMHG = Decimal("0.133322387415")
MG_DL_PER_MMOL_L = Decimal("18.016")

# factor such that value_in_canonical = value_in_unit * factor
_TO_CANONICAL: dict[Unit, tuple[Unit, Decimal]] = {
    Unit.KG: (Unit.KG, Decimal(1)),
    Unit.LB: (Unit.KG, LB_IN_KG),
    Unit.MMHG: (Unit.MMHG, Decimal(1)),
    Unit.KPA: (Unit.MMHG, 1 / KPA_IN_MMHG),
    Unit.PERCENT: (Unit.PERCENT, Decimal(1)),
    Unit.MG_DL: (Unit.MG_DL, Decimal(1)),
    Unit.MMOL_L: (Unit.MG_DL, MG_DL_PER_MMOL_L),
    Unit.KG_L: (Unit.MG_DL, Decimal(100000)),
    Unit.MOL_L: (Unit.MG_DL, Decimal(1000) * MG_DL_PER_MMOL_L),
    Unit.PER_MIN: (Unit.PER_MIN, Decimal(1)),
}


class UnitError(ValueError):
    """A unit that does not fit the metric, or an unknown unit."""


def parse_unit(text: str) -> Unit:
    """Return the :class:`Unit` for ``text`` (accepts a few common spellings)."""
    aliases = {
        "kgs": Unit.KG, "lbs": Unit.LB, "mmhg": Unit.MMHG, "mm[hg]": Unit.MMHG,
        "kpa": Unit.KPA, "percent": Unit.PERCENT, "mg/dl": Unit.MG_DL,
        "mmol/l": Unit.MMOL_L, "kg/l": Unit.KG_L, "mol/l": Unit.MOL_L,
        "bpm": Unit.PER_MIN, "/min": Unit.PER_MIN, "1/min": Unit.PER_MIN,
        "[lb_av]": Unit.LB,
    }
    try:
        return Unit(text)
    except ValueError:
        pass
    try:
        return aliases[text.strip().lower()]
    except KeyError:
        raise UnitError(f"unknown unit {text!r}") from None


def convert(value: float | Decimal, from_unit: Unit, to_unit: Unit) -> float:
    """Convert ``value`` between two units of the same dimension, exactly.

    Raises :class:`UnitError` if the units measure different things.
    """
    src_dim, src_factor = _TO_CANONICAL[from_unit]
    dst_dim, dst_factor = _TO_CANONICAL[to_unit]
    if src_dim != dst_dim:
        raise UnitError(f"cannot convert {from_unit} to {to_unit}")
    if from_unit == to_unit:
        return float(value)
    dec = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return float(dec * src_factor / dst_factor)


def to_canonical(metric: Metric, value: float | Decimal, unit: Unit) -> float:
    """Convert ``value`` in ``unit`` to the canonical unit of ``metric``."""
    canonical = CANONICAL_UNIT[metric]
    if _TO_CANONICAL[unit][0] != canonical:
        raise UnitError(f"{unit} is not a unit of {metric}")
    return convert(value, unit, canonical)


def lb_to_kg(lb: float) -> float:
    """Pounds (avoirdupois) to kilograms, exactly."""
    return convert(lb, Unit.LB, Unit.KG)


def kg_to_lb(kg: float) -> float:
    """Kilograms to pounds (avoirdupois), exactly."""
    return convert(kg, Unit.KG, Unit.LB)
