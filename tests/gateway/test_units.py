"""Unit conversions: exact factors and round trips (property-based)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.units import (
    CANONICAL_UNIT,
    Metric,
    Unit,
    UnitError,
    convert,
    kg_to_lb,
    lb_to_kg,
    parse_unit,
    to_canonical,
)

PAIRS = [(Unit.LB, Unit.KG), (Unit.KPA, Unit.MMHG), (Unit.MMOL_L, Unit.MG_DL),
         (Unit.KG_L, Unit.MG_DL), (Unit.MOL_L, Unit.MG_DL), (Unit.MOL_L, Unit.MMOL_L)]


def test_exact_factors() -> None:
    assert lb_to_kg(1) == 0.45359237
    assert lb_to_kg(2.0) == 0.90718474
    assert convert(1, Unit.KPA, Unit.MMHG) == pytest.approx(7.50061575845, rel=1e-11)
    assert convert(5.5, Unit.MMOL_L, Unit.MG_DL) == 99.088
    assert convert(0.00095, Unit.KG_L, Unit.MG_DL) == 95.0
    assert convert(0.0055, Unit.MOL_L, Unit.MMOL_L) == 5.5


@given(pair=st.sampled_from(PAIRS),
       value=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_round_trip(pair: tuple[Unit, Unit], value: float) -> None:
    a, b = pair
    back = convert(convert(value, a, b), b, a)
    assert math.isclose(back, value, rel_tol=1e-12)


@given(st.floats(min_value=0, max_value=1000, allow_nan=False))
def test_lb_kg_monotonic_and_inverse(lb: float) -> None:
    kg = lb_to_kg(lb)
    assert kg <= lb or lb == 0
    assert math.isclose(kg_to_lb(kg), lb, rel_tol=1e-12, abs_tol=1e-12)


def test_incompatible_units_refused() -> None:
    with pytest.raises(UnitError):
        convert(1, Unit.KG, Unit.MMHG)
    with pytest.raises(UnitError):
        to_canonical(Metric.WEIGHT, 120, Unit.MMHG)


def test_every_metric_has_a_canonical_unit() -> None:
    assert set(CANONICAL_UNIT) == set(Metric)
    for metric, unit in CANONICAL_UNIT.items():
        assert to_canonical(metric, 1.5, unit) == 1.5


@pytest.mark.parametrize(("text", "unit"), [("lbs", Unit.LB), ("mmHg", Unit.MMHG),
                                            ("mm[Hg]", Unit.MMHG), ("bpm", Unit.PER_MIN),
                                            ("mg/dl", Unit.MG_DL), ("[lb_av]", Unit.LB)])
def test_parse_unit_aliases(text: str, unit: Unit) -> None:
    assert parse_unit(text) == unit


def test_parse_unit_unknown() -> None:
    with pytest.raises(UnitError, match="unknown unit"):
        parse_unit("stone")
