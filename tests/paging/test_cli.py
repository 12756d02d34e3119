"""``vitalgate paging`` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.escalations import Severity, Trigger
from gateway.model import Condition, Enrollment, Patient, Practice, Program
from gateway.store import open_store
from rules.paging.outbox import install_paging
from rules.paging.policy import load_policy_file
from tests.paging.conftest import Receiver


def write_policy(path: Path, receiver_url: str = "http://127.0.0.1:1") -> Path:
    path.write_text(f"""
timezone: America/New_York
contacts:
  a: {{name: Dr A, webhook: "{receiver_url}/hook"}}
  b: {{name: Dr B}}
oncall:
  rotation: [{{person: a, from: "mon 08:00"}}, {{person: b, from: "thu 08:00"}}]
severities:
  emergency: [{{who: supervising_physician, channels: [webhook], wait: 5m, repeat: 1}}]
channels:
  webhook: {{secret: s}}
""")
    return path


def test_oncall_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path / "p.yaml")
    assert main(["paging", "oncall", "--policy", str(policy),
                 "--at", "2026-03-09T08:00:00-04:00"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["person"] == "a" and out["name"] == "Dr A"
    assert main(["paging", "oncall", "--policy", str(policy),
                 "--at", "2026-03-09T07:59:00-04:00"]) == 0
    assert json.loads(capsys.readouterr().out)["person"] == "b"
    assert main(["paging", "oncall", "--policy", str(policy), "--at", "2026-03-09"]) == 2
    assert "UTC offset" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("severities: {urgent: [{who: ghost}]}")
    assert main(["paging", "oncall", "--policy", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_dispatch_once_and_trace(tmp_path: Path, receiver: Receiver,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'v.db'}"
    policy = write_policy(tmp_path / "p.yaml", receiver.url)
    with open_store(db) as store:
        store.migrate()
        store.upsert_practice(Practice("p1", "Clinic"))
        store.upsert_patient(Patient("pt1", "p1", "MRN9876", "Bob", "Quill", None, "UTC"))
        store.upsert_enrollment(Enrollment("pt1", "p1", frozenset({Program.RPM}),
                                           frozenset({Condition.HTN}), None,
                                           supervising_physician_id="a"))
        install_paging(store, load_policy_file(policy)[0])
        now = datetime.now(UTC)
        esc, _ = store.record_trigger(Trigger("p1", "pt1", "bp.severe", 1, Severity.EMERGENCY,
                                              now, "s", {}, {}), now)
    assert main(["paging", "dispatch", "--once", "--policy", str(policy),
                 "--database", db]) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 1
    assert receiver.paths() == ["/hook"]
    assert main(["paging", "trace", esc.id, "--database", db]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(r["what"] == "attempt" and r["recipient"] == "a" for r in rows)

