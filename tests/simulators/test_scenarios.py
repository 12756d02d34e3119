"""Shipped scenarios pass in-process; the runner reports mismatches; the CLI exits right."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from simulators.cli import main as cli_main
from simulators.scenario import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    run_in_process,
    shipped_scenarios,
)

SHIPPED = shipped_scenarios()


def test_one_scenario_per_condition_and_billing() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"chf_weight_gain", "copd_exacerbation", "htn_uncontrolled", "dm_hypoglycaemia",
            "billing_adherence"} <= names
    rules = {e.rule for p in SHIPPED for e in load_scenario(p).escalations}
    assert {"chf.weight_gain_24h", "copd.spo2_low", "htn.bp_sustained", "dm.glucose_very_low",
            "dm.glucose_low"} <= rules


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_passes_in_process(path: Path) -> None:
    result = run_in_process(load_scenario(path))
    assert result.ok, result.report()
    assert result.readings > 0


def test_chf_weight_gain_fires_exactly_once() -> None:
    result = run_in_process(load_scenario(SCENARIO("chf_weight_gain")))
    opened = [o for o in result.opened if o.rule_id == "chf.weight_gain_24h"]
    assert len(opened) == 1
    assert "up 2.4 lb" in opened[0].summary


def test_billing_checks_device_days_and_codes() -> None:
    result = run_in_process(load_scenario(SCENARIO("billing_adherence")))
    lines = [c for c in result.checks if "99445" in c.what or "device days" in c.what]
    assert any(c.what.startswith("99445 billable for bill-15") and c.ok for c in lines)
    assert any(c.what == "device days of bill-15 in RPM period 1" and c.actual == "15"
               for c in lines)


def SCENARIO(stem: str) -> Path:
    return next(p for p in SHIPPED if p.stem == stem)


def _doc(stem: str) -> dict:
    return yaml.safe_load(SCENARIO(stem).read_text())


def test_wrong_expectation_is_a_mismatch() -> None:
    doc = _doc("copd_exacerbation")
    doc["expect"]["escalations"][0]["count"] = 2
    result = run_in_process(parse_scenario(doc))
    assert not result.ok
    assert "FAIL copd.spo2_low" in result.report()
    assert result.report().endswith("MISMATCH")


def test_unexpected_escalation_is_a_mismatch_unless_allowed() -> None:
    doc = _doc("chf_weight_gain")
    doc["expect"]["escalations"] = doc["expect"]["escalations"][:1]
    result = run_in_process(parse_scenario(doc))
    (extra,) = [c for c in result.checks if c.what == "no other escalation"]
    assert not extra.ok and "chf.weight_gain_7d for chf-1" in extra.actual
    doc["expect"]["others"] = "allow"
    assert run_in_process(parse_scenario(doc)).ok


def test_window_is_checked() -> None:
    doc = _doc("htn_uncontrolled")
    doc["expect"]["escalations"][0].update(from_day=20, to_day=25)
    assert not run_in_process(parse_scenario(doc)).ok


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("days"), "missing 'days'"),
    (lambda d: d["patients"][0].update(conditions=["GOUT"]), "conditions"),
    (lambda d: d["patients"][0].update(timezone="Mars/Olympus"), "unknown time zone"),
    (lambda d: d["patients"][0].update(courses=[{"flu": {}}]), "unknown course"),
    (lambda d: d["patients"][0].update(
        courses=[{"chf_decompensation": {"start_day": 1, "bogus": 2}}]), "bogus"),
    (lambda d: d["patients"][0].update(adherence={"skip": 1}), "skip"),
    (lambda d: d["expect"]["escalations"][0].update(patient="nobody"), "unknown patient"),
    (lambda d: d["expect"].update(others="maybe"), "forbid"),
    (lambda d: d.update(start="March"), "not a date"),
    (lambda d: d["patients"].append(dict(d["patients"][0])), "repeat"),
])
def test_bad_scenarios_name_the_field(mutate, message: str) -> None:
    doc = _doc("chf_weight_gain")
    mutate(doc)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc, "x.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("x.yaml")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.yaml"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_scenario(bad)


def test_cli_scenario_run_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["scenario", "run", str(SCENARIO("dm_hypoglycaemia"))]) == 0
    assert "PASS" in capsys.readouterr().out
    doc = _doc("dm_hypoglycaemia")
    doc["expect"]["escalations"][0]["count"] = 3
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(doc))
    assert cli_main(["scenario", "run", str(wrong)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\n")
    assert cli_main(["scenario", "run", str(broken)]) == 2
    assert "missing" in capsys.readouterr().err
    assert cli_main(["scenario", "run", "--broker", "mqtt://x"]) == 2
    assert cli_main(["scenario", "list"]) == 0
    assert "chf_weight_gain.yaml" in capsys.readouterr().out


def test_cli_simulate_unreachable_broker() -> None:
    import argparse

    from simulators.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--broker", "mqtt://127.0.0.1:1", "--patients", "1",
                              "--days", "1", "--fast", "--quiet"])
    err = io.StringIO()
    assert args.func(args, out=io.StringIO(), err=err) == 1
    assert "cannot reach broker" in err.getvalue()
