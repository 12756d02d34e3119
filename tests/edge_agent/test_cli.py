"""Tests of ``vitalgate gatt decode|list`` (exit codes, output shape, no tracebacks)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import register
from edge_agent.gatt import JSON_KEYS

ACCEPTANCE_HEX = "167d0050006600e10701100c273640000000"
REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vitalgate")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_acceptance_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["gatt", "decode", "0x2A35", ACCEPTANCE_HEX]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == list(JSON_KEYS)
    assert out["values"] == {"systolic": 125, "diastolic": 80, "mean_arterial": 102, "pulse": 64}
    assert out["timestamp"] == "2017-01-16T12:39:54"
    assert out["characteristic"] == "2a35" and out["unit"] == "mmHg"


@pytest.mark.parametrize("spec", ["2a35", "0x2A35", "blood_pressure_measurement"])
def test_characteristic_spellings(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["gatt", "decode", spec, ACCEPTANCE_HEX]) == 0
    assert json.loads(capsys.readouterr().out)["characteristic"] == "2a35"


def test_hex_with_spaces_and_pretty(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["gatt", "decode", "2a19", "--pretty", "5A"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("{\n") and json.loads(out)["values"] == {"battery": 90}
    assert run(["gatt", "decode", "2a9d", "02", "ac:08", "e1 07 01 10 0c 27 36"]) == 0
    assert json.loads(capsys.readouterr().out)["timestamp"] == "2017-01-16T12:39:54"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gatt", "decode", "2a35", "167d00"], "cannot decode blood_pressure_measurement"),
        (["gatt", "decode", "2a35", "zz"], "not hex"),
        (["gatt", "decode", "nope", "00"], "unknown characteristic"),
        (["gatt", "decode", "2a19", "65"], "outside 0..100"),
    ],
)
def test_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err
    assert "Traceback" not in captured.err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["gatt", "list"]) == 0
    text = capsys.readouterr().out
    assert "0x2A35  blood_pressure_measurement" in text and "0x2A18  glucose_measurement" in text
    assert run(["gatt", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"characteristic": "2a52", "name": "record_access_control_point"} in rows


def test_bare_gatt_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["gatt"]) == 2
    assert "decode" in capsys.readouterr().out


SCRIPT = """
import argparse, sys
from edge_agent.cli import register
p = argparse.ArgumentParser(prog="vitalgate")
register(p.add_subparsers(dest="command"))
a = p.parse_args(sys.argv[1:])
sys.exit(a.func(a))
"""


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["gatt", "decode", "0x2A35", ACCEPTANCE_HEX], 0),
        (["gatt", "decode", "0x2A35", "16"], 2),
        (["gatt", "decode", "0x2A5E", "ff"], 2),
    ],
)
def test_process_exit_codes(args: list[str], code: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if code == 0:
        assert json.loads(proc.stdout)["values"]["pulse"] == 64
