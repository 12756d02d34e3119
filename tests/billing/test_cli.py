"""``vitalgate billing`` on small temporary files."""

from __future__ import annotations

import argparse
import json

import pytest

from gateway.billing import cli

PATIENTS = [
    {
        "id": "p1",
        "timezone": "America/New_York",
        "programs": ["RPM", "CCM"],
        "conditions": ["HTN", "DM"],
        "consent_date": "2026-03-01",
        "monitoring_start": "2026-03-02",
    },
    {
        "id": "p2",
        "timezone": "Pacific/Honolulu",
        "programs": ["RPM"],
        "conditions": ["CHF"],
        "consent_date": "2026-02-01",
        "complex_ccm_months": ["2026-03"],
    },
]
READINGS_HEADER = "patient_id,measured_at,metric,value,unit,source"
TIME_HEADER = "patient_id,program,started_at,minutes,interactive,performed_by"


def readings_rows():
    rows = [READINGS_HEADER]
    for d in range(2, 17):  # 15 days of weight
        rows.append(f"p1,2026-03-{d:02d}T12:00:00Z,weight,180.4,lb,device")
    # Day 16: glucose LO from the meter still counts.
    rows.append("p1,2026-03-20T12:00:00-04:00,glucose,LO,mg/dL,device")
    rows.append("p1,2026-03-21T12:00:00Z,systolic,130,mmHg,manual")  # typed in: not a day
    rows.append("p1,2026-03-22T12:00:00Z,spo2,,%,device")  # no value: not a day
    rows.append("p2,2026-03-05T20:00:00-10:00,pulse,70,bpm,")
    return rows


def write(tmp_path, patients=None, readings=None, time=None):
    pf = tmp_path / "P.json"
    rf = tmp_path / "R.csv"
    tf = tmp_path / "T.csv"
    pf.write_text(json.dumps(PATIENTS if patients is None else patients))
    rf.write_text("\n".join(readings_rows() if readings is None else readings) + "\n")
    tf.write_text(
        "\n".join(
            [
                TIME_HEADER,
                "p1,RPM,2026-03-05T10:00:00-05:00,18,true,clinical_staff",
                "p1,CCM,2026-03-06T10:00:00-05:00,25,false,clinical_staff",
            ]
            if time is None
            else time
        )
        + "\n"
    )
    return pf, rf, tf


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def evaluate(capsys, tmp_path, month="2026-03", extra=(), **files):
    pf, rf, tf = write(tmp_path, **files)
    return run(
        capsys, "evaluate", "--patients", str(pf), "--readings", str(rf), "--time", str(tf),
        "--month", month, *extra,
    )


def test_evaluate_prints_one_report_per_patient(tmp_path, capsys):
    code, out, err = evaluate(capsys, tmp_path, extra=("--practice-tz", "America/New_York"))
    assert (code, err) == (0, "")
    reports = json.loads(out)
    assert [r["patient_id"] for r in reports] == ["p1", "p2"]
    p1 = reports[0]
    assert p1["periods"][0]["start"] == "2026-03-02"
    assert p1["periods"][0]["end"] == "2026-03-31"
    assert p1["periods"][0]["device_days"] == 16
    assert "2026-03-20" in p1["periods"][0]["days"]
    assert [(c["code"], c["units"]) for c in p1["codes"]] == [
        ("99454", 1), ("99453", 1), ("99470", 1), ("99490", 1)
    ]
    assert {"code": "99457", "reason": "18 RPM minutes, interactive: 99470"} in p1["not_billable"]
    assert [e["id"] for e in p1["evidence"]["time_entries"]] == ["T.csv:2", "T.csv:3"]
    p2 = reports[1]
    assert p2["periods"] == []  # period 2026-03-05..04-03 ends in April
    assert p2["evidence"]["monitoring_start"] == "2026-03-05"


def test_at_risk(tmp_path, capsys):
    pf, rf, tf = write(tmp_path)
    code, out, _ = run(
        capsys, "at-risk", "--patients", str(pf), "--readings", str(rf), "--time", str(tf),
        "--today", "2026-03-10",
    )
    assert code == 0
    p1 = json.loads(out)[0]
    assert p1["status"] == "on_track"
    assert p1["days_so_far"] == 9


def test_register_adds_billing_to_a_parser():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["billing", "evaluate", "--patients", "P.json", "--month", "2026-03"])
    assert args.func is cli.evaluate_command


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00,weight,80,kg,device"]},
         "R.csv line 2: measured_at '2026-03-02T12:00:00' has no UTC offset"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,weight,80,kg,device",
                       "p1,yesterday,weight,80,kg,device"]},
         "R.csv line 3: measured_at 'yesterday' is not an ISO 8601 date-time"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,weight,LO,kg,device"]},
         "R.csv line 2: value 'LO' is only allowed for glucose"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,temperature,37,C,device"]},
         "R.csv line 2: metric 'temperature' is not one of"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,weight,80,mmHg,device"]},
         "R.csv line 2: unit:"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,weight,eighty,kg,device"]},
         "R.csv line 2: value 'eighty' is not a number"),
        ({"readings": [READINGS_HEADER, "p9,2026-03-02T12:00:00Z,weight,80,kg,device"]},
         "R.csv line 2: patient 'p9' is not in the patients file"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,weight,80,kg,typed"]},
         "R.csv line 2: source 'typed' is not device or manual"),
        ({"readings": ["patient_id,measured_at,metric,value"]},
         "R.csv line 1: header lacks column(s) unit"),
        ({"readings": [READINGS_HEADER, "p1,2026-03-02T12:00:00Z,weight,80,kg,device,extra"]},
         "R.csv line 2: more fields than the header has"),
        ({"time": [TIME_HEADER, "p1,RPM,2026-03-05T10:00:00-05:00,0,true,clinical_staff"]},
         "T.csv line 2: minutes '0' is not a positive whole number"),
        ({"time": [TIME_HEADER, "p1,RPM,2026-03-05T10:00:00,5,true,clinical_staff"]},
         "T.csv line 2: started_at '2026-03-05T10:00:00' has no UTC offset"),
        ({"time": [TIME_HEADER, "p1,RTM,2026-03-05T10:00:00Z,5,true,clinical_staff"]},
         "T.csv line 2: program 'RTM' is not one of RPM, CCM, PCM"),
        ({"time": [TIME_HEADER, "p1,RPM,2026-03-05T10:00:00Z,5,maybe,clinical_staff"]},
         "T.csv line 2: interactive 'maybe' is not true or false"),
        ({"time": [TIME_HEADER, "p1,RPM,2026-03-05T10:00:00Z,5,true,nurse"]},
         "T.csv line 2: performed_by 'nurse' is not one of clinical_staff, physician"),
        ({"patients": [{"id": "p1", "timezone": "Mars/Olympus", "programs": ["RPM"]}]},
         "P.json entry 1 (id 'p1'): unknown time zone 'Mars/Olympus'"),
        ({"patients": [{"id": "p1", "timezone": "UTC", "programs": ["RPM"],
                        "consent_date": "03/01/2026"}]},
         "P.json entry 1 (id 'p1'): consent_date '03/01/2026' is not YYYY-MM-DD"),
        ({"patients": [{"id": "p1", "timezone": "UTC", "programs": ["XYZ"]}]},
         "P.json entry 1 (id 'p1'): programs must be among RPM, CCM, PCM"),
        ({"patients": [{"id": "p1", "timezone": "UTC", "programs": [],
                        "complex_ccm_months": ["March"]}]},
         "P.json entry 1 (id 'p1'): complex_ccm_months: month 'March' is not YYYY-MM"),
        ({"patients": {"id": "p1"}}, "P.json: expected a JSON list of patients"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, capsys, files, message):
    code, out, err = evaluate(capsys, tmp_path, **files)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_bad_json_names_line(tmp_path, capsys):
    pf, _, _ = write(tmp_path)
    pf.write_text('[\n{"id": "p1",\n}\n]')
    code, _, err = run(capsys, "evaluate", "--patients", str(pf), "--month", "2026-03")
    assert code == 2
    assert "P.json line 3: bad JSON" in err


def test_missing_file(tmp_path, capsys):
    code, _, err = run(
        capsys, "evaluate", "--patients", str(tmp_path / "nope.json"), "--month", "2026-03"
    )
    assert code == 2
    assert "nope.json" in err and "Traceback" not in err


def test_bad_practice_zone(tmp_path, capsys):
    code, _, err = evaluate(capsys, tmp_path, extra=("--practice-tz", "Nowhere/Land"))
    assert code == 2
    assert "--practice-tz: unknown time zone 'Nowhere/Land'" in err


def test_bad_month_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate(capsys, tmp_path, month="2026-13")
    assert exc.value.code == 2


def test_through_the_vitalgate_entry_point(tmp_path, capsys):
    from gateway.cli import main

    pf, _, _ = write(tmp_path)
    code = main(["billing", "evaluate", "--patients", str(pf), "--month", "2026-03"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)[0]["patient_id"] == "p1"
