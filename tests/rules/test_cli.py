"""`vitalgate rules replay` over temporary files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rules.cli import main

PATIENTS = [
    {"id": "p1", "conditions": ["CHF", "HTN"], "timezone": "America/New_York", "overrides": {}},
    {"id": "p2", "conditions": ["COPD", "DM"], "timezone": "America/Chicago",
     "overrides": {"dm.glucose_very_low": {"enabled": False, "ordered_by": "dr-a",
                                           "ordered_at": "2026-01-01T00:00:00+00:00"}}},
]
CSV = """patient_id,measured_at,metric,value,unit
p1,2026-03-07T08:00:00-05:00,weight,183.8,lb
p1,2026-03-08T08:00:00-04:00,weight,186.4,lb
p1,2026-03-08T09:00:00-04:00,systolic,185,mmHg
p1,2026-03-08T09:00:00-04:00,diastolic,95,mmHg
p1,2026-03-08T09:00:00-04:00,pulse,72,/min
p2,2026-03-08T09:00:00-05:00,glucose,LO,mg/dL
p2,2026-03-08T10:00:00-05:00,glucose,HI,mg/dL
p2,2026-03-09T09:00:00-05:00,spo2,86,%
p2,2026-03-09T09:30:00-05:00,spo2,87,%
p2,2026-03-09T09:40:00-05:00,glucose,3.5,mmol/L
p2,2026-03-09T09:50:00-05:00,systolic,24.1,kPa
p2,2026-03-09T09:50:00-05:00,diastolic,12,kPa
"""


def _files(tmp_path: Path, patients: object = PATIENTS, csv: str = CSV) -> tuple[str, str]:
    p = tmp_path / "P.json"
    p.write_text(patients if isinstance(patients, str) else json.dumps(patients, indent=1))
    r = tmp_path / "R.csv"
    r.write_text(csv)
    return str(p), str(r)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    code = main(["replay", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines()], err


def test_replay_prints_one_json_object_per_escalation_event(tmp_path: Path, capsys) -> None:
    p, r = _files(tmp_path)
    code, events, err = _run(capsys, "--patients", p, "--readings", r)
    assert code == 0, err
    got = [(e["event"], e["patient_id"], e["rule"], e["at"]) for e in events]
    assert got == [
        ("opened", "p1", "chf.weight_gain_24h", "2026-03-08T08:00:00-04:00"),
        ("opened", "p1", "bp.severe", "2026-03-08T09:00:00-04:00"),
        ("opened", "p2", "dm.glucose_very_high", "2026-03-08T10:00:00-05:00"),
        ("opened", "p2", "copd.spo2_low", "2026-03-09T09:30:00-05:00"),
        ("opened", "p2", "bp.severe", "2026-03-09T09:50:00-05:00"),  # 24.1 kPa = 180.8 mmHg
    ]
    first = events[0]
    assert set(first) == {"event", "patient_id", "rule", "severity", "at", "evidence",
                          "summary"}
    assert first["severity"] == "urgent"
    assert first["summary"].startswith("Weight 186.4 lb (84.55 kg), up 2.6 lb")
    assert first["evidence"]["thresholds"]["ge"] == 2.0
    assert [x["id"] for x in first["evidence"]["readings"]] == ["p1-L2", "p1-L3"]


def test_replay_until_fires_timers_and_stats(tmp_path: Path, capsys) -> None:
    p, r = _files(tmp_path)
    code, events, _ = _run(capsys, "--patients", p, "--readings", r,
                           "--until", "2026-03-15T00:00:00-04:00", "--stats")
    assert code == 0
    nodata = [e for e in events if e.get("rule") == "adherence.no_data"]
    assert [(e["patient_id"], e["at"]) for e in nodata] == [
        ("p1", "2026-03-12T00:00:00-04:00"), ("p2", "2026-03-13T00:00:00-05:00")]
    stats = events[-1]["stats"]
    assert stats["opened"]["adherence.no_data"] == 2
    assert stats["opened_per_patient_week"]["bp.severe"] > 0


def test_custom_rules_file(tmp_path: Path, capsys) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: x.spo2\n    kind: threshold\n"
                     "    severity: routine\n    source: test\n    params:\n"
                     "      clauses:\n        - {metric: spo2, le: 90}\n")
    p, r = _files(tmp_path, [{"id": "p2", "conditions": [], "timezone": "UTC"}],
                  "patient_id,measured_at,metric,value,unit\n"
                  "p2,2026-03-09T09:00:00Z,spo2,89,%\n")
    code, events, err = _run(capsys, "--patients", p, "--readings", r, "--rules", str(rules))
    assert code == 0, err
    assert [(e["rule"], e["severity"]) for e in events] == [("x.spo2", "routine")]


@pytest.mark.parametrize(("which", "content", "where", "reason"), [
    ("csv", "patient_id,when,metric,value,unit\n", "R.csv:1:", "header must be"),
    ("csv", CSV + "p9,2026-03-09T09:00:00Z,spo2,89,%\n", "R.csv:14:", "unknown patient"),
    ("csv", CSV + "p1,2026-03-09T09:00:00,spo2,89,%\n", "R.csv:14:", "without UTC offset"),
    ("csv", CSV + "p1,2026-03-09T09:00:00Z,spo2,lots,%\n", "R.csv:14:", "not a number"),
    ("csv", CSV + "p1,2026-03-09T09:00:00Z,spo2,LO,%\n", "R.csv:14:", "only valid for glucose"),
    ("csv", CSV + "p1,2026-03-09T09:00:00Z,weight,80,mmHg\n", "R.csv:14:", "not a unit of"),
    ("csv", CSV + "p1,2026-03-09T09:00:00Z,temperature,37,C\n", "R.csv:14:", "unknown metric"),
    ("csv", CSV + "p1,2026-03-08T09:00:00-04:00,systolic,120,mmHg\n", "R.csv:14:",
     "given twice"),
    ("csv", CSV + "p1,2026-03-09T09:00:00Z\n", "R.csv:14:", "expected 5 columns"),
    ("json", '[{"id": "p1", "conditions": ["CHF"], "timezone": "UTC"},\n'
             ' {"id": "p2", "conditions": ["XX"], "timezone": "UTC"}]', "P.json:2:",
     "unknown condition"),
    ("json", '[{"id": "p1", "conditions": [], "timezone": "Mars/Olympus"}]', "P.json:1:",
     "unknown time zone"),
    ("json", '[\n{"id": "p1", "conditions": [], "timezone": "UTC",\n'
             ' "overrides": {"bp.low": {"lt": "x"}}}]', "P.json:2:", "bp.low"),
    ("json", '[\n{"id": "p1", "conditions": [], "timezone": "UTC",\n'
             ' "overrides": {"no.rule": {}}}]', "P.json:2:", "unknown rule"),
    ("json", '[\n{"id": "p1",,}]', "P.json:2:", "invalid JSON"),
    ("json", '{"id": "p1"}', "P.json:1:", "expected a JSON list"),
])
def test_bad_input_exits_2_with_file_and_line(tmp_path: Path, capsys, which: str,
                                              content: str, where: str, reason: str) -> None:
    if which == "csv":
        p, r = _files(tmp_path, csv=content)
    else:
        p, r = _files(tmp_path, patients=content)
    code, events, err = _run(capsys, "--patients", p, "--readings", r)
    assert code == 2 and not events
    assert where in err and reason in err, err
    assert "Traceback" not in err


def test_bad_rules_file_and_missing_file(tmp_path: Path, capsys) -> None:
    p, r = _files(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n")
    code, _, err = _run(capsys, "--patients", p, "--readings", r, "--rules", str(bad))
    assert code == 2 and "bad.yaml:3:" in err
    code, _, err = _run(capsys, "--patients", str(tmp_path / "nope.json"), "--readings", r)
    assert code == 2 and "nope.json" in err


def test_runs_as_a_module_without_traceback(tmp_path: Path) -> None:
    p, r = _files(tmp_path, csv=CSV + "p1,2026-03-09,spo2,89,%\n")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "rules.cli", "replay", "--patients", p,
                           "--readings", r], capture_output=True, text=True, cwd=root,
                          env={"PYTHONPATH": str(root)}, check=False)
    assert proc.returncode == 2
    assert "R.csv:14:" in proc.stderr and "Traceback" not in proc.stderr
