"""The SVG chart and the reading of rule thresholds for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.charts import Threshold, line_chart, rule_threshold_lines

T = datetime(2026, 3, 1, tzinfo=UTC)


def test_threshold_shapes_of_the_rule_file() -> None:
    bp = {"clauses": [{"metric": "systolic", "gt": 180}, {"metric": "diastolic", "gt": 120}]}
    assert rule_threshold_lines(bp, "systolic") == [("> 180", 180.0, None)]
    glucose = {"clauses": [{"flag": "glucose_hi"}, {"metric": "glucose", "gt": 250}]}
    assert rule_threshold_lines(glucose, "glucose") == [("> 250", 250.0, None)]
    band = {"clauses": [{"metric": "glucose", "ge": 54, "le": 69, "count": 2}]}
    assert [v for _, v, _ in rule_threshold_lines(band, "glucose")] == [54.0, 69.0]
    freq = {"days": 14, "clause": {"metric": "glucose", "gt": 180}}
    assert rule_threshold_lines(freq, "glucose") == [("> 180", 180.0, None)]
    delta = {"metric": "weight", "days_back": 1, "ge": 2.0, "unit": "lb"}
    assert rule_threshold_lines(delta, "weight") == []  # no baseline, no line
    assert rule_threshold_lines(delta, "weight", baseline=80.0) == [("baseline ≥+2", 2.0, "lb")]


def test_chart_escapes_text_and_describes_itself() -> None:
    svg = line_chart([(T, 90.0), (T + timedelta(days=1), 93.0)], start=T - timedelta(days=1),
                     end=T + timedelta(days=2), title="<SpO2>", unit="%",
                     thresholds=[Threshold("≤ 92 <b>", 92.0)], marker_at=T)
    assert "<SpO2>" not in svg and "&lt;SpO2&gt;" in svg and "<b>" not in svg
    assert 'role="img"' in svg and "lowest 90" in svg and "highest 93" in svg
    assert svg.count("<circle") == 2 and 'class="threshold"' in svg


def test_empty_chart_says_so() -> None:
    svg = line_chart([], start=T, end=T + timedelta(days=30), title="Weight", unit="lb")
    assert "no readings" in svg and "<circle" not in svg
