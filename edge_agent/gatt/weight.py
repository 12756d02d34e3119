"""Weight Scale (0x2A9D, 0x2A9E) and Body Composition (0x2A9C).

The imperial flag fixes the unit of every mass and the height; resolutions are
0.005 kg / 0.01 lb for mass, 0.001 m / 0.1 in for height, 0.1 for BMI and
percentages.  A raw weight (or body fat) of 0xFFFF means the measurement was
unsuccessful: it is reported as no value, never as 327.675 kg.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from edge_agent.gatt._common import M_PER_IN, canonical, plain, split_values
from edge_agent.gatt.numbers import Reader
from edge_agent.gatt.times import DateTime, read_date_time
from gateway.units import Metric, Unit

WEIGHT_MEASUREMENT = 0x2A9D
WEIGHT_SCALE_FEATURE = 0x2A9E
BODY_COMPOSITION_MEASUREMENT = 0x2A9C

UNSUCCESSFUL = 0xFFFF
UNKNOWN_USER = 0xFF

MASS_RESOLUTION = {Unit.KG: Decimal("0.005"), Unit.LB: Decimal("0.01")}
HEIGHT_RESOLUTION = {Unit.KG: Decimal("0.001"), Unit.LB: Decimal("0.1")}
TENTH = Decimal("0.1")


def _mass(raw: int, unit: Unit) -> Decimal:
    return raw * MASS_RESOLUTION[unit]


def _height_m(height: Decimal | None, unit: Unit) -> float | None:
    if height is None:
        return None
    return plain(height, Decimal(1) if unit is Unit.KG else M_PER_IN)


def _user_status(user_id: int | None) -> list[str]:
    return ["user_unknown"] if user_id == UNKNOWN_USER else []


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """Weight Measurement (0x2A9D). ``weight`` is ``None`` when unsuccessful (0xFFFF)."""

    characteristic: ClassVar[int] = WEIGHT_MEASUREMENT

    unit: Unit  # kg or lb, as sent
    weight: Decimal | None
    timestamp: DateTime | None = None
    user_id: int | None = None  # 0xFF = unknown user
    bmi: Decimal | None = None
    height: Decimal | None = None  # metres (kg unit) or inches (lb unit)

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when the scale reported 0xFFFF."""
        return self.weight is None

    @property
    def height_unit(self) -> str:
        """``m`` or ``in``, following the imperial flag."""
        return "m" if self.unit is Unit.KG else "in"

    def canonical(self) -> dict[str, float | None]:
        """Weight in kg, BMI, height in m."""
        return {
            "weight": canonical(self.weight, Metric.WEIGHT, self.unit),
            "bmi": plain(self.bmi),
            "height": _height_m(self.height, self.unit),
        }

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values(
            {"weight": self.weight, "bmi": self.bmi, "height": self.height}
        )
        out: dict[str, object] = {
            "unit": self.unit.value,
            "values": values,
            "special": special,
            "user_id": self.user_id,
            "status": _user_status(self.user_id),
            "measurement_unsuccessful": self.measurement_unsuccessful,
            "canonical": self.canonical(),
        }
        if self.timestamp is not None:
            out.update(self.timestamp.json_fields())
        return out


def decode_weight_measurement(data: bytes) -> WeightMeasurement:
    """Decode Weight Measurement (0x2A9D)."""
    r = Reader(WEIGHT_MEASUREMENT, data)
    flags = r.u8("flags")
    unit = Unit.LB if flags & 0x01 else Unit.KG
    raw = r.u16("weight")
    weight = None if raw == UNSUCCESSFUL else _mass(raw, unit)
    timestamp = read_date_time(r, "timestamp") if flags & 0x02 else None
    user_id = r.u8("user_id") if flags & 0x04 else None
    bmi = height = None
    if flags & 0x08:
        bmi = r.u16("bmi") * TENTH
        height = r.u16("height") * HEIGHT_RESOLUTION[unit]
    return WeightMeasurement(unit, weight, timestamp, user_id, bmi, height)


WEIGHT_RESOLUTIONS = {
    1: (Decimal("0.5"), Decimal(1)),
    2: (Decimal("0.2"), Decimal("0.5")),
    3: (Decimal("0.1"), Decimal("0.2")),
    4: (Decimal("0.05"), Decimal("0.1")),
    5: (Decimal("0.02"), Decimal("0.05")),
    6: (Decimal("0.01"), Decimal("0.02")),
    7: (Decimal("0.005"), Decimal("0.01")),
}
HEIGHT_RESOLUTIONS = {
    1: (Decimal("0.01"), Decimal(1)),
    2: (Decimal("0.005"), Decimal("0.5")),
    3: (Decimal("0.001"), Decimal("0.1")),
}


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    """Weight Scale Feature (0x2A9E).

    The resolutions describe precision only; the unit of a measurement is
    fixed by its own flags.
    """

    characteristic: ClassVar[int] = WEIGHT_SCALE_FEATURE

    raw: int

    @property
    def timestamp_supported(self) -> bool:
        """Bit 0."""
        return bool(self.raw & 0x1)

    @property
    def multiple_users_supported(self) -> bool:
        """Bit 1."""
        return bool(self.raw & 0x2)

    @property
    def bmi_supported(self) -> bool:
        """Bit 2."""
        return bool(self.raw & 0x4)

    @property
    def weight_resolution_code(self) -> int:
        """Bits 3-6 (0 = not specified)."""
        return (self.raw >> 3) & 0xF

    @property
    def height_resolution_code(self) -> int:
        """Bits 7-9 (0 = not specified)."""
        return (self.raw >> 7) & 0x7

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        w = WEIGHT_RESOLUTIONS.get(self.weight_resolution_code)
        h = HEIGHT_RESOLUTIONS.get(self.height_resolution_code)
        return {
            "features": {
                "raw": self.raw,
                "timestamp_supported": self.timestamp_supported,
                "multiple_users_supported": self.multiple_users_supported,
                "bmi_supported": self.bmi_supported,
                "weight_resolution_kg": None if w is None else float(w[0]),
                "weight_resolution_lb": None if w is None else float(w[1]),
                "height_resolution_m": None if h is None else float(h[0]),
                "height_resolution_in": None if h is None else float(h[1]),
            }
        }


def decode_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    """Decode Weight Scale Feature (0x2A9E)."""
    return WeightScaleFeature(Reader(WEIGHT_SCALE_FEATURE, data).u32("features"))


# Body Composition flags (u16).  The optional fields follow in flag-bit order (BCS v1.0.0
# 3.2.1.3-3.2.1.13): timestamp, user, basal metabolism, muscle PERCENTAGE, then muscle MASS, ...
BC_IMPERIAL = 1 << 0
BC_TIMESTAMP = 1 << 1
BC_USER = 1 << 2
BC_BASAL_METABOLISM = 1 << 3
BC_MUSCLE_PERCENTAGE = 1 << 4
BC_MUSCLE_MASS = 1 << 5
BC_FAT_FREE_MASS = 1 << 6
BC_SOFT_LEAN_MASS = 1 << 7
BC_BODY_WATER_MASS = 1 << 8
BC_IMPEDANCE = 1 << 9
BC_WEIGHT = 1 << 10
BC_HEIGHT = 1 << 11
BC_MULTIPLE_PACKET = 1 << 12


@dataclass(frozen=True, slots=True)
class BodyCompositionMeasurement:
    """Body Composition Measurement (0x2A9C); optional fields are ``None`` when absent.

    ``body_fat`` is ``None`` when unsuccessful (0xFFFF).  Masses are in ``unit``
    (kg or lb), height in m or in, basal metabolism in kJ, impedance in ohm.
    """

    characteristic: ClassVar[int] = BODY_COMPOSITION_MEASUREMENT

    unit: Unit
    body_fat: Decimal | None
    timestamp: DateTime | None = None
    user_id: int | None = None
    basal_metabolism: int | None = None
    muscle_percentage: Decimal | None = None
    muscle_mass: Decimal | None = None
    fat_free_mass: Decimal | None = None
    soft_lean_mass: Decimal | None = None
    body_water_mass: Decimal | None = None
    impedance: Decimal | None = None
    weight: Decimal | None = None
    height: Decimal | None = None
    multiple_packet: bool = False

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when body fat was 0xFFFF."""
        return self.body_fat is None

    def _values(self) -> dict[str, Decimal | None]:
        bm = self.basal_metabolism
        return {
            "body_fat": self.body_fat,
            "basal_metabolism": None if bm is None else Decimal(bm),
            "muscle_percentage": self.muscle_percentage,
            "muscle_mass": self.muscle_mass,
            "fat_free_mass": self.fat_free_mass,
            "soft_lean_mass": self.soft_lean_mass,
            "body_water_mass": self.body_water_mass,
            "impedance": self.impedance,
            "weight": self.weight,
            "height": self.height,
        }

    def canonical(self) -> dict[str, float | None]:
        """Masses in kg, height in m, the rest unchanged (%, kJ, ohm)."""
        out: dict[str, float | None] = {}
        for name, v in self._values().items():
            if name.endswith("mass") or name == "weight":
                out[name] = canonical(v, Metric.WEIGHT, self.unit)
            elif name == "height":
                out[name] = _height_m(v, self.unit)
            else:
                out[name] = plain(v)
        return out

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values(self._values())
        status = _user_status(self.user_id)
        if self.multiple_packet:
            status.append("multiple_packet_measurement")
        out: dict[str, object] = {
            "unit": self.unit.value,
            "values": values,
            "special": special,
            "user_id": self.user_id,
            "status": status,
            "measurement_unsuccessful": self.measurement_unsuccessful,
            "canonical": self.canonical(),
        }
        if self.timestamp is not None:
            out.update(self.timestamp.json_fields())
        return out


def decode_body_composition_measurement(data: bytes) -> BodyCompositionMeasurement:
    """Decode Body Composition Measurement (0x2A9C); fields follow flag-bit order."""
    r = Reader(BODY_COMPOSITION_MEASUREMENT, data)
    flags = r.u16("flags")
    unit = Unit.LB if flags & BC_IMPERIAL else Unit.KG
    raw_fat = r.u16("body_fat")
    body_fat = None if raw_fat == UNSUCCESSFUL else raw_fat * TENTH

    def opt_mass(bit: int, name: str) -> Decimal | None:
        return _mass(r.u16(name), unit) if flags & bit else None

    timestamp = read_date_time(r, "timestamp") if flags & BC_TIMESTAMP else None
    user_id = r.u8("user_id") if flags & BC_USER else None
    basal = r.u16("basal_metabolism") if flags & BC_BASAL_METABOLISM else None
    muscle_pct = r.u16("muscle_percentage") * TENTH if flags & BC_MUSCLE_PERCENTAGE else None
    muscle_mass = opt_mass(BC_MUSCLE_MASS, "muscle_mass")
    fat_free = opt_mass(BC_FAT_FREE_MASS, "fat_free_mass")
    soft_lean = opt_mass(BC_SOFT_LEAN_MASS, "soft_lean_mass")
    water = opt_mass(BC_BODY_WATER_MASS, "body_water_mass")
    impedance = r.u16("impedance") * TENTH if flags & BC_IMPEDANCE else None
    weight = opt_mass(BC_WEIGHT, "weight")
    height = r.u16("height") * HEIGHT_RESOLUTION[unit] if flags & BC_HEIGHT else None
    return BodyCompositionMeasurement(
        unit=unit,
        body_fat=body_fat,
        timestamp=timestamp,
        user_id=user_id,
        basal_metabolism=basal,
        muscle_percentage=muscle_pct,
        muscle_mass=muscle_mass,
        fat_free_mass=fat_free,
        soft_lean_mass=soft_lean,
        body_water_mass=water,
        impedance=impedance,
        weight=weight,
        height=height,
        multiple_packet=bool(flags & BC_MULTIPLE_PACKET),
    )
