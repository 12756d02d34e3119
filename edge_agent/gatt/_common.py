"""Helpers shared by the decoders: JSON numbers, special values, status bits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from edge_agent.gatt.numbers import Number, Special
from gateway.units import Metric, Unit, to_canonical

#: Inches in a metre factor (exact, by definition).
M_PER_IN = Decimal("0.0254")

JsonNumber = int | float


def json_number(value: Decimal) -> JsonNumber:
    """An exact decimal as a JSON number: int when integral, else float."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def split_values(
    fields: Mapping[str, Number | None],
) -> tuple[dict[str, JsonNumber | None], dict[str, str]]:
    """Split named values into JSON numbers and a ``special`` map.

    Special values (NaN, NRes, INF, reserved) become ``None`` in the values and
    are named in the special map; absent values are ``None`` and not named.
    """
    values: dict[str, JsonNumber | None] = {}
    special: dict[str, str] = {}
    for name, v in fields.items():
        if isinstance(v, Special):
            values[name] = None
            special[name] = v.value
        elif v is None:
            values[name] = None
        else:
            values[name] = json_number(v)
    return values, special


def numeric(value: Number | None) -> Decimal | None:
    """The value if it is a real number, else ``None``."""
    return value if isinstance(value, Decimal) else None


def canonical(value: Number | None, metric: Metric, unit: Unit) -> float | None:
    """``value`` converted to the canonical unit of ``metric`` (None if no number)."""
    v = numeric(value)
    return None if v is None else to_canonical(metric, v, unit)


def plain(value: Number | None, factor: Decimal = Decimal(1)) -> float | None:
    """``value * factor`` as a float, for quantities outside :mod:`gateway.units`."""
    v = numeric(value)
    return None if v is None else float(v * factor)


def bit_names(value: int | None, names: Sequence[tuple[int, str]]) -> list[str]:
    """Snake-case names of the bits of ``value`` that are set (reserved bits dropped)."""
    if value is None:
        return []
    return [name for bit, name in names if value & (1 << bit)]


def code_name(code: int | None, names: Mapping[int, str]) -> str | None:
    """Name of an enumerated code; ``reserved_<n>`` for codes the SIG has not assigned."""
    if code is None:
        return None
    return names.get(code, f"reserved_{code}")
