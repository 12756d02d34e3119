"""Rule file loading, validation errors with line numbers, composition and overrides."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.units import lb_to_kg
from rules.definitions import (
    DeltaSpec,
    OverrideError,
    RuleFileError,
    Severity,
    ThresholdSpec,
    compose,
    load_defaults,
    override_from_json,
    parse_rules,
)

CLINICAL = Path("/work/shared/CLINICAL.md")
NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)

VALID = """\
version: 1
rules:
  - id: x.low
    kind: threshold
    severity: urgent
    source: test
    params:
      clauses:
        - {metric: spo2, le: 90}
"""


def test_defaults_have_every_clinical_rule_id() -> None:
    ids = [r.id for r in load_defaults().rules]
    expected = [
        "chf.weight_gain_24h", "chf.weight_gain_7d", "spo2.low", "copd.spo2_low",
        "copd.spo2_drop", "bp.severe", "bp.low", "htn.bp_sustained", "pulse.abnormal",
        "dm.glucose_very_low", "dm.glucose_low", "dm.glucose_very_high",
        "dm.glucose_out_of_range", "adherence.no_data", "device.battery_low", "device.clock",
        "hub.offline",
    ]
    assert ids == expected
    if CLINICAL.exists():  # the spec table, when the shared docs are present
        table = re.findall(r"^\| `([a-z0-9_]+\.[a-z0-9_.]+)` \|", CLINICAL.read_text(), re.M)
        assert ids == table


def test_defaults_severities_and_flags() -> None:
    rs = load_defaults()
    assert rs.version == 1
    assert rs.get("htn.bp_sustained").severity is Severity.ROUTINE
    assert rs.get("bp.severe").severity is Severity.URGENT
    assert not rs.get("copd.spo2_drop").enabled
    assert rs.get("copd.spo2_low").replaces == ("spo2.low",)
    assert all(r.severity is not Severity.EMERGENCY for r in rs.rules)
    assert all(r.source for r in rs.rules)


def test_lb_thresholds_converted_exactly() -> None:
    rs = load_defaults()
    s24 = rs.get("chf.weight_gain_24h").spec
    s7 = rs.get("chf.weight_gain_7d").spec
    assert isinstance(s24, DeltaSpec) and isinstance(s7, DeltaSpec)
    assert s24.change.ge == lb_to_kg(2.0) == 0.90718474
    assert s7.change.ge == lb_to_kg(5.0) == 2.26796185
    assert s7.fallback_days == (6, 8)


@pytest.mark.parametrize(("text", "line", "reason"), [
    (VALID.replace("le: 90", "lx: 90"), 9, "unknown key 'lx'"),
    (VALID.replace("kind: threshold", "kind: thresold"), 4, "unknown kind"),
    (VALID.replace("severity: urgent", "severity: high"), 5, "severity must be"),
    (VALID.replace("metric: spo2", "metric: spo3"), 9, "unknown metric"),
    (VALID.replace("version: 1", "version: 2"), 1, "unsupported rule file version"),
    (VALID.replace("    source: test\n", ""), 3, "missing required key 'source'"),
    (VALID.replace("le: 90", "le: ninety"), 9, "le must be a number"),
    (VALID.replace("le: 90", "le: 90, count: 2"), 9, "needs a positive 'within'"),
    (VALID.replace("le: 90", "le: 90, count: 2, within: 5 parsecs"), 9, "not a duration"),
    (VALID + "  - id: x.low\n    kind: no_data\n    severity: routine\n    source: t\n",
     10, "duplicate rule id"),
    (VALID.replace("    source: test\n", "    source: test\n    replaces: [no.such]\n"), 7,
     "replaces unknown rule"),
    (VALID.replace("  - id: x.low", "  - id: x.low\n    id: y.low"), 4, "duplicate key"),
    (VALID.replace("{metric: spo2, le: 90}", "{metric: spo2, le: 90}}"), 9, "YAML syntax"),
    (VALID.replace("{metric: spo2, le: 90}", "{metric: weight, le: 90, unit: mmHg}"), 9,
     "not a unit of weight"),
    ("", 1, "empty rule file"),
])
def test_invalid_rule_files_name_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(RuleFileError) as ei:
        parse_rules(text, filename="r.yaml")
    assert ei.value.line == line, str(ei.value)
    assert reason in ei.value.reason
    assert str(ei.value).startswith(f"r.yaml:{line}:") or line == 0


def test_practice_adds_a_rule_of_an_existing_kind() -> None:
    rs = parse_rules(VALID.replace("le: 90", "le: 90, count: 3, within: 2h"))
    spec = rs.rules[0].spec
    assert isinstance(spec, ThresholdSpec)
    assert spec.clauses[0].count == 3
    assert spec.clauses[0].within == timedelta(hours=2)


def _ids(conds: list[str], overrides: dict | None = None, now: datetime = NOW) -> list[str]:
    ovs = [override_from_json(k, v) for k, v in (overrides or {}).items()]
    return [r.id for r in compose(load_defaults(), conds, ovs, now=now).rules]


def test_conditions_select_rules_and_copd_replaces_spo2_low() -> None:
    chf = _ids(["CHF"])
    assert "chf.weight_gain_24h" in chf and "spo2.low" in chf and "dm.glucose_low" not in chf
    copd = _ids(["COPD"])
    assert "copd.spo2_low" in copd and "spo2.low" not in copd
    assert "copd.spo2_drop" not in copd  # opt-in
    assert "chf.weight_gain_24h" not in _ids([])
    assert "bp.severe" in _ids([])


def test_override_enables_opt_in_rule_and_changes_parameters() -> None:
    ov = {"copd.spo2_drop": {"enabled": True, "ordered_by": "dr-a",
                             "ordered_at": "2026-03-01T00:00:00+00:00"},
          "chf.weight_gain_24h": {"ge": 3.0, "ordered_by": "dr-b",
                                  "ordered_at": "2026-03-01T00:00:00+00:00"},
          "spo2.low": {"clauses.0.le": 90, "severity": "emergency", "ordered_by": "dr-c",
                       "ordered_at": "2026-03-01T00:00:00+00:00"}}
    comp = compose(load_defaults(), ["CHF", "COPD"],
                   [override_from_json(k, v) for k, v in ov.items()], now=NOW)
    by = {r.id: r for r in comp.rules}
    assert "copd.spo2_drop" in by
    w = by["chf.weight_gain_24h"]
    assert isinstance(w.spec, DeltaSpec) and w.spec.change.ge == lb_to_kg(3.0)
    assert w.overrides == ("dr-b@2026-03-01T00:00:00+00:00",)
    assert w.thresholds()["ge"] == 3.0
    comp2 = compose(load_defaults(), ["CHF"], [override_from_json("spo2.low", ov["spo2.low"])],
                    now=NOW)
    s = comp2.rules[[r.id for r in comp2.rules].index("spo2.low")]
    assert isinstance(s.spec, ThresholdSpec) and s.spec.clauses[0].le == 90
    assert s.severity is Severity.EMERGENCY


def test_override_disable_and_expiry() -> None:
    ov = {"bp.low": {"enabled": False, "ordered_by": "dr-a",
                     "ordered_at": "2026-03-01T00:00:00+00:00",
                     "expires_at": "2026-04-02T00:00:00+00:00"}}
    assert "bp.low" not in _ids([], ov, now=NOW)
    assert "bp.low" in _ids([], ov, now=datetime(2026, 4, 2, tzinfo=UTC))
    assert "bp.low" in _ids([], ov, now=datetime(2026, 2, 1, tzinfo=UTC))  # not yet ordered
    comp = compose(load_defaults(), [], [override_from_json("bp.low", ov["bp.low"])], now=NOW)
    assert comp.valid_until == datetime(2026, 4, 2, tzinfo=UTC)


@pytest.mark.parametrize(("params", "reason"), [
    ({"ge": "lots"}, "ge must be a number"),
    ({"nonsense": 1}, "unknown key"),
    ({"clauses.7.le": 1}, "no element"),
    ({"severity": "panic"}, "severity must be"),
])
def test_invalid_override_is_refused(params: dict, reason: str) -> None:
    rule = "chf.weight_gain_24h" if "ge" in params or "nonsense" in params else "spo2.low"
    with pytest.raises(OverrideError) as ei:
        compose(load_defaults(), ["CHF"], [override_from_json(rule, {
            **params, "ordered_by": "x", "ordered_at": "2026-01-01T00:00:00+00:00"})], now=NOW)
    assert reason in str(ei.value)


def test_thresholds_are_an_independent_deep_copy() -> None:
    """An escalation's thresholds can be changed by its holder without touching the rule."""
    rule = load_defaults().get("spo2.low")
    first = rule.thresholds()
    assert first == rule.raw["params"]
    first["clauses"][0]["le"] = 0
    first["clauses"].append({"metric": "spo2"})
    assert rule.thresholds() == rule.raw["params"] != first
    assert rule.thresholds()["clauses"] is not rule.raw["params"]["clauses"]
