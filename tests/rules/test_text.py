"""Display helpers of escalation summaries (rules.text)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import text


def _reference_num(v: float, digits: int = 1) -> str:
    """The plain definition: round, then drop trailing zeros and a bare point."""
    r = round(v, digits)
    return f"{r:.{digits}f}".rstrip("0").rstrip(".") if r != int(r) else f"{int(r)}"


@pytest.mark.parametrize(("v", "digits", "shown"), [
    (92.0, 1, "92"), (92.5, 1, "92.5"), (92.46, 1, "92.5"), (92.44, 1, "92.4"),
    (0.0, 1, "0"), (-0.0, 1, "0"), (-0.04, 1, "0"), (-0.3, 1, "-0.3"), (-12.0, 1, "-12"),
    (99.96, 1, "100"), (1234567.0, 1, "1234567"), (0.125, 2, "0.12"), (1.5, 0, "2"),
    (7.1, 2, "7.1"), (3.0, 3, "3"),
])
def test_num_examples(v: float, digits: int, shown: str) -> None:
    assert text.num(v, digits) == shown


@given(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False),
       st.sampled_from([0, 1, 2]))
def test_num_matches_the_plain_definition(v: float, digits: int) -> None:
    assert text.num(v, digits) == _reference_num(v, digits)


def test_value_forms() -> None:
    from gateway.units import Metric

    assert text.value(Metric.SYSTOLIC, 135.0) == "135 mmHg"
    assert text.value(Metric.SPO2, 91.5) == "91.5 %"
    assert text.value(Metric.GLUCOSE, math.inf) == "HI"
    assert text.value(Metric.GLUCOSE, -math.inf) == "LO"
    assert text.value(Metric.WEIGHT, 80.0) == "176.4 lb (80.00 kg)"
